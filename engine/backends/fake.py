"""A deterministic backend for tests and demos, registered like a real one.

Behaviour comes from the model name:
  fake/echo         answers "Echo: <last user message>" word by word
  fake/error-mid    streams two words, then raises (a runtime failing mid-answer)
  fake/flaky        every second generation raises
  fake/load-error   fails when loaded
  fake/slow         like echo, sleeping `delay_s` (option, default 0.05 s) per word
  fake/judge-first  a judge with pure position bias: always "WINNER: A", "SCORE: 5"
  fake/judge-keyword a fair judge: prefers the answer containing GOOD, in either position
  fake/<name>       answers queued with `enqueue(name, ...)`, then echoes; a queued answer may be
                    {"text": ..., "calls": [{"name": ..., "arguments": {...} or "raw text"}]}: the
                    calls streamed as a server streams them (the name, then the arguments in pieces)
"""
from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from collections.abc import Iterator

from ..tools import ToolCallDelta
from . import ModelSpec, register_backend
from .base import Backend, BackendError, Chunk, EngineReport, GenParams

_QUEUES: dict[str, deque] = defaultdict(deque)


def enqueue(model: str, *answers) -> None:
    """Queue answers for `fake/<model>`, returned in order before it falls back to echo."""
    _QUEUES[model].extend(answers)


def clear() -> None:
    _QUEUES.clear()


class FakeBackend(Backend):
    def __init__(self, spec: ModelSpec, delay_s: float | None = None, **_ignored):
        self.model = spec.model
        self.delay_s = delay_s if delay_s is not None else (0.05 if self.model == "slow" else 0.0)
        self.calls = 0
        self.loaded = False

    def load(self) -> None:
        if self.model == "load-error":
            raise BackendError("fake/load-error: model file is corrupt (simulated)")
        self.loaded = True

    def memory_mb(self) -> dict:
        return {"rss_mb": 1.0, "vram_mb": None}

    def footprint_mb(self) -> float | None:
        return 1.0

    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        self.calls += 1
        if self.model == "flaky" and self.calls % 2 == 0:
            raise RuntimeError("fake/flaky: simulated runtime failure")
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        queue = _QUEUES.get(self.model)
        calls: list = []
        if queue:
            answer = queue.popleft()
            if isinstance(answer, dict):
                calls = answer.get("calls") or [] if params.tools else []
                answer = answer.get("text") or ""
        elif self.model.startswith("judge-"):
            answer = _judge_answer(self.model, last_user)
        else:
            answer = f"Echo: {last_user}"
        words = [w for w in answer.split(" ")[: params.max_tokens] if w or not calls]
        for i, word in enumerate(words):
            if self.model == "error-mid" and i == 2:
                raise RuntimeError("fake/error-mid: connection lost mid-stream (simulated)")
            if self.delay_s:
                time.sleep(self.delay_s)
            yield word if i == 0 else " " + word
        pieces = 0
        for n, call in enumerate(calls):
            args = call.get("arguments", {})
            text = args if isinstance(args, str) else json.dumps(args)
            yield ToolCallDelta(n, f"fake_{self.calls}_{n}", call["name"], "")
            for j in range(0, len(text), 4):  # the arguments in pieces, as servers stream them
                yield ToolCallDelta(n, None, None, text[j:j + 4])
                pieces += 1
        prompt_tokens = sum(len((m.get("content") or "").split()) for m in messages)
        yield EngineReport(
            prompt_tokens=prompt_tokens, output_tokens=len(words) + pieces,
            finish_reason="tool_calls" if calls else "length" if len(words) == params.max_tokens else "stop",
            tokens_from_engine=False,
        )


def _judge_answer(model: str, prompt: str) -> str:
    if model == "judge-first":
        return "Both are fine. WINNER: A SCORE: 5"
    if "Answer A:" in prompt:
        a = prompt.split("Answer A:", 1)[1].split("Answer B:", 1)[0]
        b = prompt.split("Answer B:", 1)[1]
        winner = "A" if "GOOD" in a and "GOOD" not in b else "B" if "GOOD" in b and "GOOD" not in a else "TIE"
        return f"Compared both. WINNER: {winner}"
    answer = prompt.split("Answer:", 1)[-1]
    return "Checked. SCORE: " + ("5" if "GOOD" in answer else "1")


register_backend("fake", FakeBackend)
