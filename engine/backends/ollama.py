"""Ollama through its official client: `ollama/<tag>` or `ollama/<tag>@http://host:11434`.

TTFT is measured by the harness; Ollama's own figures (nanoseconds in the final chunk)
are reported beside it. Load time is measured cold: the model is unloaded first.
"""
from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from ..tools import ToolCallDelta
from . import ModelSpec, register_backend
from .base import DEFAULT_MAX_CONTEXT, Backend, BackendError, Chunk, EngineReport, GenParams, Reasoning, ServerFailure

_NS_PER_MS = 1e6


DEFAULT_HOST = "http://127.0.0.1:11434"


def default_host() -> str:
    """Where Ollama answers: $OLLAMA_HOST (with or without its scheme), else its default port here."""
    host = os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


class OllamaBackend(Backend):
    served, default_place, streams_async = True, "ollama-default", True
    shares_host = False  # a cold load unloads the model; Ollama swaps models that do not fit

    @classmethod
    def default_host(cls) -> str:
        return default_host()

    def __init__(self, spec: ModelSpec, timeout_s: float = 120.0, keep_alive: str = "10m",
                 max_context: int | None = None, **_ignored):
        from . import bad_host_hint

        hint = bad_host_hint(spec, 11434)
        if hint:
            raise BackendError(hint)
        self.tag = spec.model
        self.host = spec.host or default_host()
        from . import internal_host_problem

        why = internal_host_problem(self.host)
        if why:
            raise BackendError(f"ollama/{spec.model}: refused: {why}")
        self.timeout_s = timeout_s
        self.keep_alive = keep_alive
        # Ollama runs a model in a short default context (num_ctx) unless asked: ask for the
        # model's own context (from /api/show), capped at max_context.
        self.max_context = max_context or DEFAULT_MAX_CONTEXT
        self.num_ctx: int | None = None
        self._client = None

    @property
    def name(self) -> str:
        return f"ollama/{self.tag}@{self.host}"

    def server_url(self) -> str:
        return self.host if "://" in self.host else f"http://{self.host}"

    def client(self):
        if self._client is None:
            import ollama

            from . import http

            self._client = ollama.Client(host=self.host, **http.client_options(self.server_url(),
                                                                               timeout=self.timeout_s))
        return self._client

    @contextmanager
    def _errors(self):
        try:
            yield
        except Exception as exc:
            raise _translate(exc, self.tag, self.host, self.timeout_s) from exc

    def load(self) -> None:
        c = self.client()
        with self._errors():
            info = c.show(self.tag).modelinfo or {}
            trained = info.get(f"{info.get('general.architecture')}.context_length")
            self.num_ctx = min(int(trained), self.max_context) if trained else None
            self.context_tokens = self.num_ctx or self.context_tokens
            options = {"num_ctx": self.num_ctx} if self.num_ctx else None
            c.generate(model=self.tag, keep_alive=0)  # unload, so the next load is cold
            loaded = c.generate(model=self.tag, keep_alive=self.keep_alive, options=options)  # load only
        self.engine_load_ms = (loaded.load_duration or 0) / _NS_PER_MS or None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def memory_mb(self) -> dict:
        with self._errors():
            running = self.client().ps().models
        for m in running:
            if self.tag in (m.model, m.name):
                self.context_tokens = getattr(m, "context_length", None) or self.context_tokens
                return {"vram_mb": (m.size_vram or 0) / 2**20,
                        "rss_mb": ((m.size or 0) - (m.size_vram or 0)) / 2**20}
        return {}

    def host_facts(self) -> dict:
        """Ollama's version, and what it says of the model (`model_facts`: where the catalog lacks a
        figure, the decision reads it from here), from its API."""
        import httpx

        from . import http

        facts: dict = {}
        try:
            with http.client(self.server_url(), timeout=5) as c:
                r = c.get(f"{self.server_url()}/api/version")
            if r.status_code == 200:
                facts["ollama_version"] = r.json().get("version")
        except (httpx.HTTPError, ValueError):
            pass
        if model := model_facts(self.tag, self.host):
            facts["model_facts"] = model
        return facts

    def _request(self, messages: list[dict], params: GenParams) -> dict:
        options = {"num_predict": params.max_tokens, "temperature": params.temperature}
        if self.num_ctx:
            options["num_ctx"] = self.num_ctx  # the same context as at load, or Ollama reloads
        if params.seed is not None:
            options["seed"] = params.seed
        if params.mode == "completion":
            return {"kind": "generate", "model": self.tag, "prompt": messages[-1]["content"], "raw": True,
                    "stream": True, "options": options, "keep_alive": self.keep_alive}
        req = {"kind": "chat", "model": self.tag, "messages": [_ollama_message(m) for m in messages],
               "stream": True, "options": options, "keep_alive": self.keep_alive}
        if params.tools:
            req["tools"] = list(params.tools)
        return req

    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        req = self._request(messages, params)
        call = getattr(self.client(), req.pop("kind"))
        final = None
        seen = [0]  # calls so far: each gets its own index, whichever chunk carries it
        with self._errors():
            for part in call(**req):
                yield from _pieces(part, seen)
                if part.done:
                    final = part
        yield _report(final, self.tag)

    def async_client(self, max_connections: int):
        """One ollama.AsyncClient for many concurrent requests (the load sweep)."""
        import httpx
        import ollama

        from . import http

        return ollama.AsyncClient(host=self.host, **http.client_options(
            self.server_url(), asynchronous=True, timeout=self.timeout_s,
            limits=httpx.Limits(max_connections=max_connections)))

    async def astream(self, messages: list[dict], params: GenParams, client=None) -> AsyncIterator[Chunk]:
        """The same generation through ollama.AsyncClient, for the load sweep."""
        req = self._request(messages, params)
        kind = req.pop("kind")
        own = client is None
        client = client or self.async_client(1)
        final = None
        seen = [0]
        try:
            async for part in await getattr(client, kind)(**req):
                for piece in _pieces(part, seen):
                    yield piece
                if part.done:
                    final = part
        except Exception as exc:
            raise _translate(exc, self.tag, self.host, self.timeout_s) from exc
        finally:
            if own:
                await client._client.aclose()
        yield _report(final, self.tag)


def _ollama_message(m: dict) -> dict:
    """A message of the conversation as Ollama's /api/chat takes it: a call's arguments as an object,
    a tool's answer with the tool's name (Ollama has no call ids)."""
    if m.get("tool_calls"):
        calls = []
        for c in m["tool_calls"]:
            fn = c.get("function", {})
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except ValueError:
                args = {}
            calls.append({"function": {"name": fn.get("name"), "arguments": args if isinstance(args, dict) else {}}})
        return {"role": "assistant", "content": m.get("content") or "", "tool_calls": calls}
    if m.get("role") == "tool":
        return {"role": "tool", "content": m.get("content") or "", "tool_name": m.get("name")}
    return m


def _pieces(part, seen: list | None = None) -> list[Chunk]:
    out: list[Chunk] = []
    msg = getattr(part, "message", None)
    thinking = msg.thinking if msg is not None else getattr(part, "thinking", None)
    content = msg.content if msg is not None else getattr(part, "response", None)
    if thinking:
        out.append(Reasoning(thinking))
    if content:
        out.append(content)
    for call in (getattr(msg, "tool_calls", None) or []) if msg is not None else []:
        fn = call.function
        args = fn.arguments
        text = json.dumps(dict(args), ensure_ascii=False) if args is not None and not isinstance(args, str) else args
        index = seen[0] if seen is not None else 0
        if seen is not None:
            seen[0] += 1
        out.append(ToolCallDelta(index, None, fn.name, text or ""))
    return out


def _report(final, tag: str) -> EngineReport:
    if final is None:
        raise BackendError(f"ollama/{tag}: the stream ended without its final chunk (done: true)")

    def ms(ns):
        return ns / _NS_PER_MS if ns is not None else None

    return EngineReport(
        prompt_tokens=final.prompt_eval_count, output_tokens=final.eval_count,
        engine_prompt_ms=ms(final.prompt_eval_duration), engine_decode_ms=ms(final.eval_duration),
        engine_decode_tokens=final.eval_count, finish_reason=final.done_reason,
        extra={"load_ms": ms(final.load_duration), "total_ms": ms(final.total_duration)},
    )


def _translate(exc: Exception, tag: str, host: str, timeout_s: float) -> Exception:
    """A clear BackendError naming the model and host for what the client raised."""
    import json

    import httpx
    import ollama

    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code == 404:
            return BackendError(f"ollama/{tag}: model not found on {host} (ollama pull {tag}): {exc.error}")
        status = f"HTTP {exc.status_code}" if exc.status_code and exc.status_code > 0 else "error in stream"
        kind = ServerFailure if exc.status_code and (exc.status_code == 429 or exc.status_code >= 500) \
            else BackendError
        return kind(f"ollama/{tag}: {status} from {host}: {exc.error}")
    from .http import Refused

    if isinstance(exc, Refused):
        return BackendError(f"ollama/{tag}: refused: {exc}")
    if isinstance(exc, (ConnectionError, httpx.ConnectError)):
        return ServerFailure(f"ollama/{tag}: cannot connect to {host} (connection refused or host down)")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ServerFailure(f"ollama/{tag}: the connection to {host} broke mid-stream: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return BackendError(f"ollama/{tag}: {host} sent nothing for {timeout_s:g} s (timeout)")
    if isinstance(exc, json.JSONDecodeError):
        return BackendError(f"ollama/{tag}: malformed JSON line from {host}: {exc.doc[:80]!r}")
    if isinstance(exc, httpx.HTTPError):
        return BackendError(f"ollama/{tag}: {type(exc).__name__} talking to {host}: {exc}")
    return exc


def installed_models(host: str | None = None, timeout_s: float = 5.0) -> list[str]:
    """Tags installed on an Ollama host, for the Run page; BackendError if unreachable."""
    import ollama

    from . import internal_host_problem

    why = internal_host_problem(host or default_host())
    if why:
        raise BackendError(f"refused: {why}")
    host = host or default_host()
    try:
        from . import http

        url = host if "://" in host else f"http://{host}"
        client = ollama.Client(host=host, **http.client_options(url, timeout=timeout_s))
        return sorted(m.model for m in client.list().models if m.model)
    except Exception as exc:
        raise _translate(exc, "*", host, timeout_s) from exc


def model_facts(tag: str, host: str | None = None, timeout_s: float = 3.0) -> dict:
    """What an Ollama host says of a model it has (`/api/show`, and its size from `/api/tags`), in the
    catalog's fields: parameters, quantisation, context, layers, KV heads and head size, weights on
    disk. {} where the host cannot be reached or has no such model (a note, never an error)."""
    import httpx

    from . import http, internal_host_problem

    host = host or default_host()
    url = (host if "://" in host else f"http://{host}").rstrip("/")
    if internal_host_problem(host):
        return {}
    try:
        with http.client(url, timeout=timeout_s) as c:
            shown = c.post(f"{url}/api/show", json={"model": tag})
            tags = c.get(f"{url}/api/tags")
        if shown.status_code != 200:
            return {}
        show = shown.json()
        listed = tags.json().get("models", []) if tags.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return {}
    return _facts(show if isinstance(show, dict) else {}, listed if isinstance(listed, list) else [], tag)


def _facts(show: dict, listed: list, tag: str) -> dict:
    info: dict = show["model_info"] if isinstance(show.get("model_info"), dict) else {}
    details: dict = show["details"] if isinstance(show.get("details"), dict) else {}
    arch = info.get("general.architecture")

    def num(key: str) -> float | None:
        v = info.get(f"{arch}.{key}") if arch else None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None

    facts: dict = {"family": details["family"]} if isinstance(details.get("family"), str) else {}
    count = info.get("general.parameter_count")
    if isinstance(count, (int, float)) and not isinstance(count, bool) and count > 0:
        facts["params_total_b"] = round(count / 1e9, 2)
    if isinstance(details.get("quantization_level"), str):
        facts["quantization"] = details["quantization_level"]
    for field, key in (("context_tokens", "context_length"), ("layers", "block_count"),
                       ("kv_heads", "attention.head_count_kv")):
        if (v := num(key)) is not None:
            facts[field] = int(v)
    heads, width = num("attention.head_count"), num("embedding_length")
    head_dim = num("attention.key_length") or (width / heads if heads and width else None)
    if head_dim:
        facts["head_dim"] = int(head_dim)
    size = next((m.get("size") for m in listed if isinstance(m, dict) and tag in (m.get("model"), m.get("name"))),
                None)
    if isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0:
        facts["weights_gb"] = round(size / 1e9, 2)
    return facts


register_backend("ollama", OllamaBackend)
