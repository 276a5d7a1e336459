"""The one interface every inference backend implements.

A backend streams text chunks and ends with an EngineReport: what the engine itself
said about the generation. The harness, not the backend, owns the clock.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator, Union


class BackendError(Exception):
    """A model could not be resolved, loaded or run; the message names the model."""


@dataclass(frozen=True)
class GenParams:
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int | None = 42


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


Chunk = Union[str, EngineReport]


class Backend(ABC):
    """A loaded (or loadable) model. `stream` is the only required method."""

    spec: str = ""

    def load(self) -> None:
        """Bring the model into memory. The harness times this call."""

    def close(self) -> None:
        """Release the model."""

    def memory_mb(self) -> dict:
        """Memory the model holds, e.g. {"rss_mb": ..., "vram_mb": ...}; empty if unknown."""
        return {}

    @abstractmethod
    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        """Yield text chunks, then exactly one EngineReport as the last item."""
