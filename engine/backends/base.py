"""The one interface every inference backend implements.

A backend streams text chunks and ends with an EngineReport: what the engine itself
said about the generation. The harness, not the backend, owns the clock.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from ..tools import ToolCallDelta

# Each model runs in its own context length (its file's or its server's), capped at this
# by default so a 128k-token model does not reserve a 128k KV cache unasked (--max-context).
DEFAULT_MAX_CONTEXT = 32768
# When nothing tells a model's context.
FALLBACK_CONTEXT = 4096


class BackendError(Exception):
    """A model could not be resolved, loaded or run; the message names the model."""


class ServerFailure(BackendError):
    """The server or the network failed, not the model (a 429 or 5xx, a refused or broken connection): the
    generation is missing, not a wrong answer, and `resume` runs it again."""


class ContextOverflow(BackendError):
    """The prompt does not fit the model's context: reported as such, not as a wrong answer."""


@dataclass(frozen=True)
class GenParams:
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int | None = 42
    # "chat": messages through the model's chat template; "completion": the last user
    # message as a raw prompt (the OpenAI /v1/completions shape).
    mode: str = "chat"
    # Whether a server may serve the prompt from its cache (llama.cpp's server takes
    # `cache_prompt`; the others are kept cold by a unique marker at the prompt's start).
    cache_prompt: bool = True
    # A per-request salt that keeps a server's prefix cache from matching (vLLM's `cache_salt`).
    cache_salt: str | None = None
    # The tools the model may call, in OpenAI's form (engine.tools), and whether it must ("auto",
    # "required", "none"); empty: a plain chat request.
    tools: tuple = ()
    tool_choice: str | None = None


@dataclass(frozen=True)
class Reasoning:
    """A chunk of a reasoning model's thinking, kept apart from the answer."""

    text: str


@dataclass
class EngineReport:
    """Counters as the engine reported them; None where the engine does not say."""

    prompt_tokens: int | None = None
    output_tokens: int | None = None
    engine_prompt_ms: float | None = None
    engine_decode_ms: float | None = None
    # Tokens that engine_decode_ms covers (llama.cpp does not time the last sampled token).
    engine_decode_tokens: int | None = None
    finish_reason: str | None = None
    # True when token counts are the engine's own, False when counted from the stream.
    tokens_from_engine: bool = True
    extra: dict = field(default_factory=dict)

    def problem(self) -> str | None:
        """What is wrong with the figures a server sent (a count that is text, negative or
        absurd; a finish reason that is not text), else None: a malformed report makes the
        generation fail with that reason rather than be stored as measured."""
        for name in ("prompt_tokens", "output_tokens", "engine_decode_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value <= MAX_TOKEN_COUNT):
                return f"{name} is {value!r}, not a token count (0 to {MAX_TOKEN_COUNT:,})"
        for name in ("engine_prompt_ms", "engine_decode_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value < 1e12):
                return f"{name} is {value!r}, not a duration"
        if self.finish_reason is not None and not isinstance(self.finish_reason, str):
            return f"finish_reason is {self.finish_reason!r}, not text"
        return None


MAX_TOKEN_COUNT = 2**31 - 1  # the store's INTEGER; no context holds more


@dataclass(frozen=True)
class Retried:
    """The server asked to wait (429 or 503 with Retry-After) and the request was sent again after `wait_s`:
    the harness restarts its clock (the wait is in no timing) and records the retry."""

    status: int
    wait_s: float


Chunk = str | Reasoning | ToolCallDelta | Retried | EngineReport


class Backend(ABC):
    """A loaded (or loadable) model. `stream` is the only required method."""

    spec: str = ""
    # What the backend is, declared once here and read by the registry, the runner, the sweep
    # and the dashboard (a new backend is one module and one register_backend call):
    # reached over HTTP (a server holds the model) rather than run in this process;
    served: bool = False
    # where its models run when a spec names no host (models in one place run one after the
    # other, different places in parallel);
    default_place: str = "local"
    # whether it has `astream` for many concurrent requests (the load sweep).
    streams_async: bool = False
    # False where load() only checks the model is there (a server that keeps it loaded):
    # then no load time is recorded, rather than a misleading one.
    load_is_model_load: bool = True
    # The engine's own figure for the last load(), where it reports one (Ollama's load_duration).
    engine_load_ms: float | None = None
    # The context the model runs with, in tokens, where known (checked before long prompts).
    context_tokens: int | None = None
    # How a cold (uncached) prompt is had without changing the prompt: "reset" where the engine clears
    # its cache before every generation, "cache_salt" where the server takes a per-request salt; None
    # where only a marker at the prompt's start keeps a cached prefix from matching.
    cold_switch: str | None = None
    # False where loading this model may evict another from the same host (Ollama swaps
    # models), so models on that host are not interleaved but run in ABBA blocks.
    shares_host: bool = True
    # whether its server may have a Prometheus /metrics of its own counters (vLLM, llama-server, SGLang)
    has_metrics: bool = False

    @classmethod
    def default_host(cls) -> str | None:
        """Where a served model is reached when its spec names no host; None where the spec must
        name one (or the model runs in this process)."""
        return None

    @classmethod
    def identity(cls, spec) -> dict:
        """What pins the model of `spec` (a ModelSpec) down for reproducibility: a served model's id
        and where it was asked for; a model file's path, size and hash where the backend runs a file."""
        return {"server_model_id": spec.model, "host": spec.host or spec.place}

    def async_client(self, max_connections: int):
        """An async context manager: the client `astream` sends through, pooled for a load sweep's
        concurrent requests. Backends with `streams_async` define it and `astream`."""
        raise BackendError(f"{self.spec}: this backend cannot stream requests concurrently (a load sweep needs it)")

    def astream(self, messages: list[dict], params: GenParams, client=None) -> AsyncIterator[Chunk]:
        """`stream` for asyncio, through `client` (from `async_client`)."""
        raise BackendError(f"{self.spec}: this backend cannot stream requests concurrently (a load sweep needs it)")

    def auth_headers(self) -> dict:
        """Headers its server wants on every request (an API key), also for its /metrics."""
        return {}

    def prepare(self) -> None:  # noqa: B027 (optional: most backends need nothing started)
        """Start what the backend needs before its load is timed (llama.cpp's engine process)."""

    def process_pid(self) -> int | None:
        """The process on this machine that the backend started to hold its model (llama.cpp's
        engine process); None where there is none (a model in this process, or a server)."""
        return None

    def load(self) -> None:  # noqa: B027 (optional: a served model is already loaded)
        """Bring the model into memory. The harness times this call."""

    def close(self) -> None:  # noqa: B027 (optional: nothing to release for a served model)
        """Release the model."""

    def server_url(self) -> str | None:
        """Where a served model's server listens (its process's memory is sampled when that is
        this machine); None for a model in this process."""
        return None

    def footprint_mb(self) -> float | None:
        """Memory this process needs to hold the model (None: a server holds it)."""
        return None

    def memory_mb(self) -> dict:
        """Memory the model holds, e.g. {"rss_mb": ..., "vram_mb": ...}; empty if unknown."""
        return {}

    def host_facts(self) -> dict:
        """What only this backend knows about the machine or server it runs on (llama.cpp's GPU
        offload support, a server's version); merged into the run's host information."""
        return {}

    @abstractmethod
    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        """Yield answer text (str), Reasoning and ToolCallDelta chunks (pieces of the calls the model
        made, when `params.tools` offered any), then exactly one EngineReport last."""
