"""Backend registry: resolves `backend/model[@host]` specs, importing SDKs lazily."""
from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from .base import (
    Backend,
    BackendError,
    Chunk,
    ContextOverflow,
    EngineReport,
    GenParams,
    Reasoning,
    Retried,
    ServerFailure,
)

# Built-in backends are imported only when a spec names them.
_BUILTIN = {
    "llamacpp": "engine.backends.llamacpp",
    "fake": "engine.backends.fake",
    "ollama": "engine.backends.ollama",
    "openai": "engine.backends.openai_compat",
}
_FACTORIES: dict[str, Callable[..., Backend]] = {}
# Backends of one's own: modules named in $MODELPICK_BACKENDS (comma-separated, e.g.
# `mycompany.modelpick_tgi`) or installed under the `modelpick.backends` entry-point group; each
# registers itself with register_backend when imported, like the built-in ones.
PLUGINS_ENV = "MODELPICK_BACKENDS"
_PLUGINS_LOADED: set[str] = set()


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


@functools.cache
def _entry_point_modules() -> tuple[str, ...]:
    """The modules of the installed `modelpick.backends` entry points, read once a process (reading them
    scans every installed package's metadata: about 17 ms here)."""
    from importlib.metadata import entry_points

    return tuple(ep.value.partition(":")[0] for ep in entry_points(group="modelpick.backends"))


def load_plugins() -> None:
    """Import the backend modules of $MODELPICK_BACKENDS and the `modelpick.backends` entry points
    (each once); a module that cannot be imported is a BackendError naming it."""
    import os

    names = [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    names += _entry_point_modules()
    for name in names:
        if name in _PLUGINS_LOADED:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of someone else's module, said with its name
            raise BackendError(f"backend module {name!r} ({PLUGINS_ENV} or an entry point) "
                               f"could not be imported: {type(exc).__name__}: {exc}") from None
        _PLUGINS_LOADED.add(name)


def known_backends() -> list[str]:
    load_plugins()
    return sorted(set(_BUILTIN) | set(_FACTORIES))


_USERINFO = re.compile(r"(?:(?<=//)|(?<=@))([^@/:\s]+):([^@/\s]+)@")


def mask_userinfo(text: str) -> str:
    """Text with the password of any `user:password@` in a URL or after a model's '@' masked."""
    return _USERINFO.sub(r"\1:***@", text)


def parse_spec(spec: str) -> ModelSpec:
    import unicodedata

    bad = next((ch for ch in spec if unicodedata.category(ch)[0] == "C"), None)
    if bad is not None:
        raise BackendError(f"model spec {mask_userinfo(spec)!r} contains a control character "
                           f"(U+{ord(bad):04X}); a model spec is one line of printable text")
    backend, sep, rest = spec.partition("/")
    if not sep or not backend or not rest:
        raise BackendError(
            f"model spec {mask_userinfo(spec)!r} is not of the form backend/model "
            f"(backends: {', '.join(known_backends())})"
        )
    model, host = rest, None
    # The host is the URL after the first '@http://' or '@https://' (model names may contain '@' rarely).
    found = re.search(r"@(?=https?://)", rest)
    if found:
        model, host = rest[:found.start()], rest[found.end():]
        from urllib.parse import urlsplit

        if urlsplit(host).password is not None or urlsplit(host).username is not None:
            raise BackendError(f"{backend}/{model}@{mask_userinfo(host)}: credentials in the server URL would be "
                               "stored with every result; remove them and give the key in an environment variable "
                               "named by ?api_key_env=NAME after the URL")
    return ModelSpec(backend=backend, model=model, host=host)


def bad_host_hint(spec: ModelSpec, default_port: int, path: str = "") -> str | None:
    """For `backend/model@something` whose host is not a URL: why, and a spec that works."""
    if "@" not in spec.model:
        return None
    model, _, bad = spec.model.rpartition("@")
    credentials = "@" in model and ":" in model.split("@", 1)[1]  # model@user:password@host: never said back
    if credentials:
        model = model.split("@", 1)[0]
    fixed = f"{spec.backend}/{model}@http://localhost:{default_port}{path}"
    hint = (f"{mask_userinfo(f'{spec.backend}/{spec.model}')}: {bad!r} is not a server URL (it must start with "
            f"http:// or https://); give the server as a URL, e.g. {fixed}")
    if re.fullmatch(r"[A-Za-z0-9.-]+:\d{2,5}", bad):  # host:port without the scheme
        hint += f" (for that host: {spec.backend}/{model}@http://{bad}{path})"
    if credentials:
        hint += "; credentials never go in the spec (give the key with ?api_key_env=NAME)"
    return hint


def _factory(name: str) -> Callable[..., Backend]:
    if name not in _FACTORIES and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])  # registers itself
    if name not in _FACTORIES:
        load_plugins()
    if name not in _FACTORIES:
        raise BackendError(f"unknown backend {name!r} (known: {', '.join(known_backends())})")
    return _FACTORIES[name]


def internal_host_problem(url: str) -> str | None:
    """Why a model URL must not be contacted (engine.backends.http has the policy), else None."""
    from .http import internal_host_problem as problem

    return problem(url)


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
    "Retried", "ServerFailure",
    "parse_spec", "register_backend", "resolve", "known_backends", "backend_class", "is_served", "load_plugins",
]
