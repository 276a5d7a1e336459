"""Any OpenAI-compatible server (vLLM, llama-server, llama-cpp-python, ...):
`openai/<model>@<base_url>`, e.g. `openai/gpt-oss-20b@http://localhost:8000/v1`.

The API key is read from an environment variable, never from the spec: the variable is
named by `?api_key_env=NAME` after the URL (default OPENAI_API_KEY), so neither the
database nor an export ever holds the key itself.
"""
from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson

from ..redact import hold_env
from ..tools import ToolCallDelta
from . import ModelSpec, register_backend
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

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# A 429 or 503 is sent again after the server's Retry-After (1 s where it gives none), at most this many
# times and never after a wait beyond MAX_RETRY_WAIT_S: past either the cell fails, the rate limit named.
MAX_RETRIES = 5
MAX_RETRY_WAIT_S = 60.0
RETRIED = (429, 503)


def retry_after_s(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (a number, or an HTTP date); None where it says nothing usable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        import datetime as _dt

        seconds = (when - _dt.datetime.now(when.tzinfo or _dt.UTC)).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None


def split_base_url(url: str) -> tuple[str, str]:
    """(base URL without query, name of the API-key variable)."""
    parts = urlsplit(url)
    key_env = parse_qs(parts.query).get("api_key_env", [DEFAULT_KEY_ENV])[0]
    hold_env(key_env)  # whatever it is called, its value is masked wherever text leaves the process
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")), key_env


class OpenAIBackend(Backend):
    served, streams_async = True, True
    has_metrics = True  # vLLM, llama-server --metrics, SGLang
    load_is_model_load = False  # the server keeps the model loaded; load() only checks it is served

    def __init__(self, spec: ModelSpec, timeout_s: float = 120.0, api_key_env: str | None = None,
                 connect_timeout_s: float = 10.0, **_ignored):
        if not spec.host:
            from . import bad_host_hint

            raise BackendError(bad_host_hint(spec, 8000, "/v1") or f"openai/{spec.model}: give the server URL, "
                               f"e.g. openai/{spec.model}@http://localhost:8000/v1")
        self.model = spec.model
        self.base_url, key_env = split_base_url(spec.host)
        self.key_env = api_key_env or key_env
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._client = None

    @property
    def name(self) -> str:
        return f"openai/{self.model}@{self.base_url}"

    def server_url(self) -> str | None:
        return self.base_url

    def auth_headers(self) -> dict:
        return self._headers()

    def _headers(self) -> dict:
        key = os.environ.get(self.key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _timeout(self):
        import httpx

        # Connecting should be quick; a stream may pause while the server is busy.
        return httpx.Timeout(self.timeout_s, connect=min(self.connect_timeout_s, self.timeout_s))

    def client(self):
        if self._client is None:
            from . import http

            self._client = http.client(self.base_url, timeout=self._timeout(), headers=self._headers())
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def load(self) -> None:
        """Check the server answers and serves this model (a clear error before any case runs)."""
        import httpx

        try:
            r = self.client().get(f"{self.base_url}/models")
        except httpx.HTTPError as exc:
            raise self._error(exc) from exc
        if r.status_code >= 400:
            raise BackendError(f"{self.name}: HTTP {r.status_code} from /models: {_error_text(r.text)}")
        try:
            listed = {m.get("id"): m for m in r.json().get("data", [])}
        except (ValueError, AttributeError):
            return  # a server without a proper model list: the first request will tell
        if listed and self.model not in listed:
            raise BackendError(f"{self.name}: model not served (the server has: {', '.join(map(str, listed))})")
        # the context the server runs the model with, where it says: vLLM's max_model_len
        served_len = (listed.get(self.model) or {}).get("max_model_len")
        if isinstance(served_len, int) and served_len > 0:
            self.context_tokens = served_len

    def host_facts(self) -> dict:
        """The server's name and version where it tells: vLLM answers /version beside /v1."""
        import httpx

        root = self.base_url.rsplit("/v1", 1)[0]
        try:
            r = self.client().get(f"{root}/version", timeout=5)
            version = r.json().get("version") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            version = None
        if version:
            self.cold_switch = "cache_salt"  # vLLM: a per-request salt keeps its prefix cache from matching
        return {"server_version": version} if version else {}

    def request(self, messages: list[dict], params: GenParams) -> tuple[str, dict]:
        body = {"model": self.model, "max_tokens": params.max_tokens, "temperature": params.temperature,
                "stream": True, "stream_options": {"include_usage": True}}
        if params.seed is not None:
            body["seed"] = params.seed
        if not params.cache_prompt:
            body["cache_prompt"] = False  # llama.cpp's server: do not reuse the previous prompt
        if params.cache_salt:
            body["cache_salt"] = params.cache_salt
        if params.mode == "completion":
            body["prompt"] = messages[-1]["content"]
            return f"{self.base_url}/completions", body
        body["messages"] = messages
        if params.tools:
            body["tools"] = list(params.tools)
            body["tool_choice"] = params.tool_choice or "auto"
            if len(params.tools) > 1:
                body["parallel_tool_calls"] = True  # several calls in one answer (llama-server needs it said)
        return f"{self.base_url}/chat/completions", body

    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        import time

        import httpx

        url, body = self.request(messages, params)
        parser = StreamParser(self.name)
        reconnected = retries = 0
        while True:
            answered = False
            wait = None
            try:
                with self.client().stream("POST", url, json=body) as r:
                    answered = True
                    if r.status_code >= 400:
                        r.read()
                        wait = self._retry_wait(r, retries)
                        if wait is None:
                            raise self._status_error(r.status_code, r.text)
                    else:
                        parser.request_id = r.headers.get("x-request-id")
                        for data in r.iter_bytes():
                            for line in parser.lines(data):
                                yield from parser.feed(line)
                        for line in parser.lines(b"", end=True):
                            yield from parser.feed(line)
                if wait is None:
                    break
                retries += 1
                time.sleep(wait)
                yield Retried(r.status_code, wait)
            except httpx.HTTPError as exc:
                if _unanswered(exc, answered) and not reconnected:
                    reconnected += 1
                    continue
                raise self._error(exc) from exc
        yield parser.report()

    def _retry_wait(self, r, retries: int) -> float | None:
        """How long to wait before sending a 429 or 503 again; None for another status; ServerFailure where
        the server asks for too long a wait or has refused too many times."""
        if r.status_code not in RETRIED:
            return None
        wait = retry_after_s(r.headers.get("retry-after"))
        wait = 1.0 if wait is None else wait
        said = _error_text(r.text)
        if wait > MAX_RETRY_WAIT_S:
            raise ServerFailure(f"{self.name}: the server rate-limited it: HTTP {r.status_code}, Retry-After "
                                f"{wait:g} s is over the {MAX_RETRY_WAIT_S:g} s ModelPick waits: {said}")
        if retries >= MAX_RETRIES:
            raise ServerFailure(f"{self.name}: the server rate-limited it: HTTP {r.status_code} {retries + 1} times "
                                f"(retried {MAX_RETRIES} times, honouring Retry-After): {said}")
        return wait

    def async_client(self, max_connections: int):
        """One client for many concurrent requests (the load sweep)."""
        import httpx

        from . import http

        return http.async_client(self.base_url, timeout=self._timeout(), headers=self._headers(),
                                 limits=httpx.Limits(max_connections=max_connections))

    async def astream(self, messages: list[dict], params: GenParams, client=None) -> AsyncIterator[Chunk]:
        """The same generation with httpx.AsyncClient, for the load sweep."""
        import httpx

        url, body = self.request(messages, params)
        parser = StreamParser(self.name)
        own = client is None
        client = client or self.async_client(1)
        import asyncio

        try:
            reconnected = retries = 0
            while True:
                answered = False
                wait = None
                try:
                    async with client.stream("POST", url, json=body) as r:
                        answered = True
                        if r.status_code >= 400:
                            await r.aread()
                            wait = self._retry_wait(r, retries)
                            if wait is None:
                                raise self._status_error(r.status_code, r.text)
                        else:
                            parser.request_id = r.headers.get("x-request-id")
                            async for data in r.aiter_bytes():
                                for line in parser.lines(data):
                                    for piece in parser.feed(line):
                                        yield piece
                            for line in parser.lines(b"", end=True):
                                for piece in parser.feed(line):
                                    yield piece
                    if wait is None:
                        break
                    retries += 1
                    await asyncio.sleep(wait)
                    yield Retried(r.status_code, wait)
                except httpx.HTTPError as exc:
                    if _unanswered(exc, answered) and not reconnected:
                        reconnected += 1
                        continue
                    raise self._error(exc) from exc
        finally:
            if own:
                await client.aclose()
        yield parser.report()

    def _status_error(self, status: int, text: str) -> BackendError:
        message = _error_text(text)
        if status == 400 and "context" in message.lower():
            return ContextOverflow(f"{self.name}: {message}")
        what = "model not found" if status == 404 else f"HTTP {status}"
        kind = ServerFailure if status == 429 or status >= 500 else BackendError
        return kind(f"{self.name}: {what}: {message}")

    def _error(self, exc: Exception) -> BackendError:
        import httpx

        from .http import Refused

        if isinstance(exc, Refused):
            return BackendError(f"{self.name}: refused: {exc}")
        if isinstance(exc, httpx.ConnectError):
            return ServerFailure(f"{self.name}: cannot connect (connection refused or host down)")
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"{self.name}: the server sent nothing for {self.timeout_s:g} s (timeout)")
        if isinstance(exc, httpx.RemoteProtocolError):
            return ServerFailure(f"{self.name}: the connection broke mid-stream: {exc}")
        return BackendError(f"{self.name}: {type(exc).__name__}: {exc}")


class StreamParser:
    """Server-sent events of a chat/completions stream to chunks and a final report.

    Token counts come from the usage chunk (stream_options.include_usage); a server that
    sends none is counted from the stream, and the report says so.
    """

    def __init__(self, name: str):
        self.name = name
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self.chunks = 0
        self.done = False
        self.timings: dict = {}  # llama.cpp's server: its own counts and times of the request
        self.request_id: str | None = None  # the response's id (or x-request-id): the row in the server's logs
        self._rest = b""  # the body's bytes after its last complete line

    def lines(self, data: bytes, end: bool = False) -> list[str]:
        """The complete lines in the body's bytes so far (split on LF, so a character cut between two
        reads is decoded whole); at the end, what is left. Cheaper per event than httpx's line reader,
        which decodes text first: at 64 streams the client's per-chunk work is what keeps up or not."""
        self._rest += data
        if end:
            parts, self._rest = [self._rest] if self._rest else [], b""
        elif b"\n" in data:
            *parts, self._rest = self._rest.split(b"\n")
        else:
            return []
        return [p.decode("utf-8", "replace") for p in parts if p and p != b"\r"]  # not the blank separators

    def feed(self, line: str) -> Iterable[Chunk]:
        if not line.startswith("data:"):
            line = line.strip()
            if not line.startswith("data:"):
                return ()  # blank separators, comments, event/id fields
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return ()
        try:
            event = _loads(data)
        except ValueError:
            raise BackendError(f"{self.name}: malformed JSON in the stream: {data[:80]!r}") from None
        if not isinstance(event, dict):
            raise BackendError(f"{self.name}: unexpected event in the stream: {data[:80]!r}")
        if len(event) <= _PLAIN_KEYS and event.keys() <= _PLAIN:  # most events: one piece of text
            choices = event.get("choices")
            if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict \
                    and choices[0].keys() <= _PLAIN_CHOICE and not choices[0].get("finish_reason"):
                delta = choices[0].get("delta")
                if type(delta) is dict and delta.keys() <= _PLAIN_DELTA and type(delta.get("content")) is str:
                    if self.request_id is None and type(event.get("id")) is str:
                        self.request_id = event["id"][:200]
                    if not delta["content"]:
                        return ()
                    self.chunks += 1
                    return (delta["content"],)
        if event.get("error"):
            err = event["error"]
            raise BackendError(f"{self.name}: error in the stream: "
                               f"{err.get('message', err) if isinstance(err, dict) else err}")
        if self.request_id is None and isinstance(event.get("id"), str):
            self.request_id = event["id"][:200]
        if event.get("usage"):
            if not isinstance(event["usage"], dict):
                raise BackendError(f"{self.name}: malformed stream: usage is {_shown(event['usage'])}, not an object")
            self.usage = event["usage"]
        timings = event.get("timings")  # llama.cpp's server: prompt_n/ms, predicted_n/ms, cache_n
        if isinstance(timings, dict):
            self.timings.update({k: v for k, v in timings.items() if k in _TIMINGS
                                 and isinstance(v, (int, float)) and not isinstance(v, bool)})
        out: list[Chunk] = []
        choices = event.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise BackendError(f"{self.name}: malformed stream: choices is {_shown(choices)}, not a list of objects")
        for choice in choices:
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise BackendError(f"{self.name}: malformed stream: delta is {_shown(delta)}, not an object")
            thinking = self._text(delta.get("reasoning_content") or delta.get("reasoning"), "delta.reasoning_content")
            text = self._text(delta.get("content") if "delta" in choice else choice.get("text"), "delta.content")
            if thinking:
                out.append(Reasoning(thinking))
            if text:
                out.append(text)
            if delta.get("tool_calls"):
                out.extend(self._calls(delta["tool_calls"]))
            if choice.get("finish_reason"):
                self.finish_reason = self._text(choice["finish_reason"], "finish_reason")
        self.chunks += len(out)
        return out

    def _calls(self, pieces) -> list[ToolCallDelta]:
        """delta.tool_calls: pieces of calls keyed by index (the first with id and name; the arguments'
        text cut anywhere), as vLLM, llama-server and OpenAI stream them."""
        if not isinstance(pieces, list):
            raise BackendError(f"{self.name}: malformed stream: tool_calls is {_shown(pieces)}, not a list")
        out = []
        for n, piece in enumerate(pieces):
            if not isinstance(piece, dict):
                raise BackendError(f"{self.name}: malformed stream: a tool call is {_shown(piece)}, not an object")
            index = piece.get("index", n)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1024:
                raise BackendError(f"{self.name}: malformed stream: tool call index is {_shown(index)}")
            fn = piece.get("function") or {}
            if not isinstance(fn, dict):
                raise BackendError(f"{self.name}: malformed stream: tool call function is {_shown(fn)}")
            args = fn.get("arguments")
            if args is not None and not isinstance(args, str):
                args = json.dumps(args)  # an object where the API has text: kept as its JSON
            out.append(ToolCallDelta(index, self._text(piece.get("id"), "tool_calls.id"),
                                     self._text(fn.get("name"), "tool_calls.function.name"), args or ""))
        return out

    def _text(self, value, field: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise BackendError(f"{self.name}: malformed stream: {field} is {_shown(value)}, not text")

    def report(self) -> EngineReport:
        if not self.done and self.finish_reason is None:
            raise BackendError(f"{self.name}: the stream ended without a final chunk")
        t = self.timings
        # the server's own prompt and decode times, as the in-process engine reports them
        engine = {"engine_prompt_ms": t.get("prompt_ms"), "engine_decode_ms": t.get("predicted_ms"),
                  "engine_decode_tokens": _whole(t.get("predicted_n"))}
        if self.usage:
            details = self.usage.get("prompt_tokens_details") or {}
            cached = details.get("cached_tokens") if isinstance(details, dict) else None
            if cached is None:
                cached = _whole(t.get("cache_n"))
            return EngineReport(prompt_tokens=self.usage.get("prompt_tokens"),
                                output_tokens=self.usage.get("completion_tokens"),
                                finish_reason=self.finish_reason, **engine,
                                extra=self._extra(cached))
        if t.get("predicted_n") is not None:  # no usage chunk, but the server's own counts
            prompt = _whole(t.get("prompt_n"))
            cached = _whole(t.get("cache_n"))
            return EngineReport(prompt_tokens=None if prompt is None else prompt + (cached or 0),
                                output_tokens=_whole(t["predicted_n"]), finish_reason=self.finish_reason, **engine,
                                extra=self._extra(cached))
        return EngineReport(output_tokens=self.chunks, finish_reason=self.finish_reason,
                            tokens_from_engine=False, extra=self._extra(None))

    def _extra(self, cached) -> dict:
        out: dict = {} if cached is None else {"cached_prompt_tokens": cached}
        if self.request_id:
            out["request_id"] = self.request_id
        return out


# The shape of an event that carries text and nothing else; anything beyond it takes the full reading below.
_PLAIN = frozenset(("id", "object", "created", "model", "choices", "system_fingerprint"))
_PLAIN_KEYS = len(_PLAIN)
_PLAIN_CHOICE = frozenset(("index", "delta", "finish_reason", "logprobs"))
_PLAIN_DELTA = frozenset(("content", "role"))


def _loads(data: str):
    """An event's JSON: orjson (several times faster per chunk), and the standard library where orjson
    refuses what Python's JSON takes (an integer past 64 bits, NaN), so both read the same events."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


_TIMINGS = ("prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "cache_n")


def _whole(value):
    """A count as the server sent it: whole numbers as int (a float count fails the report's check)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _shown(value) -> str:
    return f"{json.dumps(value, default=str)[:60]} ({type(value).__name__})"


def _unanswered(exc: Exception, answered: bool) -> bool:
    """A request the server closed before answering at all: a kept-alive connection it had already
    shut (llama-server does so between requests). Sent once more, on a new connection, and the time
    of both counts; a stream that broke after its answer began is not sent again."""
    import httpx

    return not answered and isinstance(exc, httpx.RemoteProtocolError)


def _error_text(text: str) -> str:
    try:
        err = json.loads(text).get("error")
        if isinstance(err, dict):
            return err.get("message") or json.dumps(err)
        if err:
            return str(err)
    except (ValueError, AttributeError):
        pass
    return text.strip()[:200] or "(empty body)"


register_backend("openai", OpenAIBackend)
