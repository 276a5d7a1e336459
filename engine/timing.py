"""The one timing loop of a streamed generation, used by the runner and the load sweep alike:
time to the first answer token (what a chat user waits for), time to the first chunk of any
kind (reasoning included), the gaps between chunks (inter-token latency) and the last chunk."""
from __future__ import annotations

from dataclasses import dataclass, field

from .backends import Reasoning
from .tools import ToolCallDelta


@dataclass
class StreamTiming:
    t0: float  # when the request was sent (time.perf_counter)
    ttft_s: float | None = None  # first answer chunk
    first_token_s: float | None = None  # first chunk of any kind
    last_chunk_s: float | None = None
    gaps_ms: list = field(default_factory=list)
    chunks: int = 0

    def chunk(self, item, now: float) -> bool:
        """Account for one streamed item (answer text, Reasoning or a piece of a tool call) that arrived at
        `now`; False for an empty one, which is not a token. A tool call is the answer of its step: its
        first piece is the first token a user of the product waits for."""
        if isinstance(item, Reasoning):
            if not item.text:
                return False
        elif isinstance(item, ToolCallDelta):
            if not item.text:
                return False
            if self.ttft_s is None:
                self.ttft_s = now - self.t0
        elif not item:
            return False
        elif self.ttft_s is None:
            self.ttft_s = now - self.t0
        elapsed = now - self.t0
        if self.first_token_s is None:
            self.first_token_s = elapsed
        elif self.last_chunk_s is not None:
            self.gaps_ms.append((elapsed - self.last_chunk_s) * 1000)
        self.last_chunk_s = elapsed
        self.chunks += 1
        return True
