"""Every HTTP request to a model server goes through one address policy, checked where it
counts: on each connection, against every address the host name resolves to (IPv4-mapped,
IPv4-compatible, NAT64, 6to4 and Teredo forms decoded to the IPv4 address inside), so no
spelling of a metadata address and no DNS answer that changes between check and connect
gets through; and on every redirect hop, which may not leave the host of the model's URL.

The OpenAI-compatible and Ollama backends, the Run page's reachability check and the judge
all build their httpx clients here."""
from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

import httpcore
import httpx

ALLOW_INTERNAL_ENV = "MODELPICK_ALLOW_INTERNAL_HOSTS"
# Cloud instance-metadata services, where a VM's credentials live (AWS, GCP, Azure, Alibaba,
# Oracle, OpenStack all use one of these), and names that point to them.
_METADATA_IPS = {"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16", "169.254.170.2"}
_METADATA_NAMES = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                   "instance-data.ec2.internal", "metadata.azure.com"}
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class Refused(httpx.TransportError):
    """A connection or redirect the address policy does not allow."""


def allowed_anyway() -> bool:
    return os.environ.get(ALLOW_INTERNAL_ENV) == "1"


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The address and any IPv4 address carried inside an IPv6 one."""
    out = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            out.append(ip.ipv4_mapped)
        if ip.sixtofour:
            out.append(ip.sixtofour)
        if ip.teredo:
            out.extend(ip.teredo)
        if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible, ::a.b.c.d
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(ip in net for net in _NAT64):
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def address_problem(address: str) -> str | None:
    """Why a connection to this IP address is refused (link-local or cloud metadata), else None."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None
    for inner in _embedded(ip):
        if str(inner) in _METADATA_IPS or inner.is_link_local:
            shown = f"{inner}" if inner == ip else f"{inner}, written as {ip}"
            return f"a link-local or cloud-metadata address ({shown})"
    return None


def _resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host.split("%")[0])
        return [host]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _vetted(host: str, port: int) -> tuple[list[str], str | None]:
    """(the addresses `host` resolves to, why one of them or its name is refused, else None);
    OSError where it does not resolve."""
    name = host.lower().rstrip(".").strip("[]")
    if name in _METADATA_NAMES:
        return [], f"{name} is a cloud metadata service"
    addresses = _resolve(name, port)
    for address in addresses:
        why = address_problem(address)
        if why:
            return addresses, f"{name} is {why}" if address != name else why
    return addresses, None


def host_problem(host: str, port: int = 80) -> str | None:
    """Why `host` must not be contacted: a metadata name, or any address it resolves to."""
    try:
        return _vetted(host, port)[1]
    except (OSError, UnicodeError):
        return None  # unresolvable here: the connection fails on its own


def internal_host_problem(url: str) -> str | None:
    """Why a model URL must not be contacted, else None; allowed anyway with
    MODELPICK_ALLOW_INTERNAL_HOSTS=1 (or `run --allow-internal-hosts`)."""
    if allowed_anyway():
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        return None
    why = host_problem(host, parts.port or 80)
    if why:
        return (f"{url}: {why}; model servers are never there. Set {ALLOW_INTERNAL_ENV}=1 "
                "(or run --allow-internal-hosts) if you mean it")
    return None


def _checked_addresses(host: str, port: int) -> list[str]:
    """The addresses to connect to, resolved now; Refused if the name or any of them is not allowed."""
    if allowed_anyway():
        return [host]
    try:
        addresses, why = _vetted(host, port)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    if why:
        raise Refused(f"{why}; model servers are never there (set {ALLOW_INTERNAL_ENV}=1 if you mean it)")
    return addresses


class _GuardedSync(httpcore.SyncBackend):
    """Connects only to addresses the policy allows, to the address it checked."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last: Exception | None = None
        for address in _checked_addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")


class _GuardedAsync(httpcore.AsyncNetworkBackend):
    def __init__(self):
        from httpcore._backends.auto import AutoBackend

        self._inner = AutoBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last: Exception | None = None
        for address in _checked_addresses(host, port):
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return await self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def _same_host(base_url: str):
    origin = _origin(httpx.URL(base_url))

    def check(request: httpx.Request) -> None:
        if _origin(request.url) != origin and not allowed_anyway():
            raise Refused(f"{base_url} redirected to {request.url.scheme}://{request.url.host}; redirects to "
                          "another host are not followed (give the final URL in the model spec)")
    return check


def _with_backend(transport, backend):
    pool = transport._pool  # httpx builds its pool with the default network backend; ours checks each connect
    pool._network_backend = backend
    return transport


def client_options(base_url: str, asynchronous: bool = False, **options) -> dict:
    """Keyword arguments for a client built elsewhere (ollama.Client passes them to httpx)."""
    limits = options.pop("limits", httpx.Limits())
    options.setdefault("follow_redirects", True)
    check = _same_host(base_url)
    if not asynchronous:
        transport = _with_backend(httpx.HTTPTransport(limits=limits), _GuardedSync())
        return dict(transport=transport, event_hooks={"request": [check]}, **options)

    async def acheck(request: httpx.Request) -> None:  # httpx awaits the hooks of an async client
        check(request)
    transport = _with_backend(httpx.AsyncHTTPTransport(limits=limits), _GuardedAsync())
    return dict(transport=transport, event_hooks={"request": [acheck]}, **options)


def client(base_url: str, **options) -> httpx.Client:
    """An httpx client for one server: same-host redirects only, every connection checked."""
    return httpx.Client(**client_options(base_url, **options))


def async_client(base_url: str, **options) -> httpx.AsyncClient:
    return httpx.AsyncClient(**client_options(base_url, asynchronous=True, **options))
