"""Backend registry: resolves `backend/model[@host]` specs, importing SDKs lazily."""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from .base import Backend, BackendError, Chunk, ContextOverflow, EngineReport, GenParams, Reasoning

# Built-in backends are imported only when a spec names them.
_BUILTIN = {
    "llamacpp": "engine.backends.llamacpp",
    "fake": "engine.backends.fake",
    "ollama": "engine.backends.ollama",
    "openai": "engine.backends.openai_compat",
}
_FACTORIES: dict[str, Callable[..., Backend]] = {}


@dataclass(frozen=True)
class ModelSpec:
    backend: str
    model: str
    host: str | None = None

    @property
    def place(self) -> str:
        """Where the model runs: its host, or 'local' for in-process backends."""
        return self.host or str(getattr(backend_class(self.backend), "default_place", "local"))

    def __str__(self) -> str:
        return f"{self.backend}/{self.model}" + (f"@{self.host}" if self.host else "")


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Register `factory(spec: ModelSpec, **options) -> Backend` under `name`."""
    _FACTORIES[name] = factory


def backend_class(name: str) -> Callable[..., Backend]:
    """The registered class (or factory) of a backend: what it declares about itself
    (`served`, `default_place`, `streams_async`) is read from here."""
    return _factory(name)


def is_served(spec: str) -> bool:
    """Whether a spec's model is reached over HTTP (BackendError for an unknown backend)."""
    return bool(getattr(backend_class(parse_spec(spec).backend), "served", False))


def known_backends() -> list[str]:
    return sorted(set(_BUILTIN) | set(_FACTORIES))


def parse_spec(spec: str) -> ModelSpec:
    backend, sep, rest = spec.partition("/")
    if not sep or not backend or not rest:
        raise BackendError(
            f"model spec {spec!r} is not of the form backend/model "
            f"(backends: {', '.join(known_backends())})"
        )
    model, host = rest, None
    # A host follows the last '@' when it looks like a URL (model names may contain '@' rarely).
    if "@" in rest:
        head, _, tail = rest.rpartition("@")
        if tail.startswith(("http://", "https://")):
            model, host = head, tail
    return ModelSpec(backend=backend, model=model, host=host)


def bad_host_hint(spec: ModelSpec, default_port: int, path: str = "") -> str | None:
    """For `backend/model@something` whose host is not a URL: why, and a spec that works."""
    import re

    if "@" not in spec.model:
        return None
    model, _, bad = spec.model.rpartition("@")
    fixed = f"{spec.backend}/{model}@http://localhost:{default_port}{path}"
    hint = (f"{spec.backend}/{spec.model}: {bad!r} is not a server URL (it must start with http:// or https://); "
            f"give the server as a URL, e.g. {fixed}")
    if re.fullmatch(r"[A-Za-z0-9.-]+:\d{2,5}", bad):  # host:port without the scheme
        hint += f" (for that host: {spec.backend}/{model}@http://{bad}{path})"
    return hint


def _factory(name: str) -> Callable[..., Backend]:
    if name not in _FACTORIES and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])  # registers itself
    if name not in _FACTORIES:
        raise BackendError(f"unknown backend {name!r} (known: {', '.join(known_backends())})")
    return _FACTORIES[name]


ALLOW_INTERNAL_ENV = "MODELPICK_ALLOW_INTERNAL_HOSTS"
# Cloud instance-metadata services, where a VM's credentials live (AWS, GCP, Azure, Alibaba,
# Oracle, OpenStack all use one of these), and names that point to them.
_METADATA_IPS = {"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16", "169.254.170.2"}
_METADATA_NAMES = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                   "instance-data.ec2.internal", "metadata.azure.com"}


def internal_host_problem(url: str) -> str | None:
    """Why a model URL must not be contacted (a link-local or cloud-metadata address), else None.
    Allowed anyway with MODELPICK_ALLOW_INTERNAL_HOSTS=1 (or `run --allow-internal-hosts`)."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    if os.environ.get(ALLOW_INTERNAL_ENV) == "1":
        return None
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host:
        return None
    if host in _METADATA_NAMES:
        return f"{url}: {host} is a cloud metadata service"
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0])
                         for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
        except (OSError, UnicodeError, ValueError):
            return None  # unresolvable here: the request fails on its own
    for ip in addresses:
        mapped = getattr(ip, "ipv4_mapped", None) or ip
        if str(mapped) in _METADATA_IPS or mapped.is_link_local:
            return (f"{url}: {host} is a link-local or cloud-metadata address ({mapped}); model servers are never "
                    f"there. Set {ALLOW_INTERNAL_ENV}=1 (or run --allow-internal-hosts) if you mean it")
    return None


def resolve(spec: str, **options) -> Backend:
    """Build (but do not load) the backend for `spec`; raises BackendError with the spec named."""
    parsed = parse_spec(spec)
    if parsed.host:
        why = internal_host_problem(parsed.host)
        if why:
            raise BackendError(f"{spec}: refused: {why}")
    try:
        factory = _factory(parsed.backend)
    except BackendError as exc:
        raise BackendError(f"{spec}: {exc}") from None
    backend = factory(parsed, **options)
    backend.spec = spec
    return backend


__all__ = [
    "Backend", "BackendError", "ContextOverflow", "Chunk", "EngineReport", "GenParams", "ModelSpec", "Reasoning",
    "parse_spec", "register_backend", "resolve", "known_backends", "backend_class", "is_served",
]
