"""The recorder of a run: scores each finished generation and writes it durably.

A generation's row (timings, counters, memory) and its check rows are committed as it ends; while
another process holds the database they wait in the run's journal beside it and are written once it
frees. A little disk space is kept aside so a run that fills the disk can still say it failed, and a
heartbeat tells other processes the run lives. It knows nothing of backends or of the schedule: the
cell executor (engine.runner) hands it a timed generation, and it can be driven alone.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .backends import EngineReport
from .checks import CheckResult, run_check
from .checks.judge import CheckSkipped
from .sandbox import SandboxUnavailable
from .scenarios import Case
from .store import Store, StoreBusy, StoreError, utcnow

HEARTBEAT_S = 5.0
WRITE_WAIT_S = 2.0  # per write; past it a finished generation goes to the journal
log = logging.getLogger("modelpick")


@dataclass
class Progress:
    run_id: str
    done: int
    total: int
    model_spec: str
    case_id: str
    ok: bool
    elapsed_s: float


@dataclass
class Timed:
    """One generation as the executor timed it (seconds from the request being sent)."""

    text: str = ""
    reasoning: str = ""
    first_token_s: float | None = None  # first chunk of any kind, reasoning included
    ttft_s: float | None = None  # first answer chunk: what a user of a chat feature waits for
    last_chunk_s: float | None = None
    gaps_ms: list = field(default_factory=list)
    e2e_s: float | None = None
    report: EngineReport | None = None
    error: str | None = None
    exceeds_context: bool = False
    started_at: object = field(default_factory=utcnow)
    telemetry: dict = field(default_factory=dict)  # peaks and means while it ran (engine.telemetry)
    # streamed chunks (answer, reasoning, pieces of calls); None: one per gap plus one
    chunks: int | None = None
    # A case with tools: the calls (engine.tools.ToolCall) of all its steps, the steps as the conversation
    # went, the time spent in tools, the environment's state at the end and how the tools reached the model.
    tool_calls: list | None = None
    steps: list | None = None
    tool_ms: float | None = None
    state: dict | None = None
    tools_note: str | None = None
    # the model's streaming time over several steps (each step's first to last chunk), for the decode rate
    decode_window_s: float | None = None
    tools: list = field(default_factory=list)
    has_environment: bool = False
    # "server" where the server or the network failed (a 429 or 5xx, a refused or broken connection): the
    # generation is missing rather than wrong; and the requests a 429 or 503 had sent again, with the wait
    failed_by: str | None = None
    retries: int = 0
    retry_wait_s: float = 0.0


RESERVE_BYTES = 1024 * 1024  # disk space set aside so a run that fills the disk can still say it failed


# A token carries at least one byte of the text it decodes to, but for a few special ones (an end
# of turn, a channel marker); and a stream coalesces few tokens into one chunk (a server under load
# sends a handful at once, never dozens).
_SPECIAL_TOKENS_SLACK = 8
_TOKENS_PER_CHUNK_MAX = 64


def implausible_token_count(output_tokens: int | None, text: str | int, n_chunks: int) -> str | None:
    """Why a server's output-token count cannot be what it streamed, else None: more tokens than
    bytes of text (answer and reasoning; `text` may be its size in bytes), or more than a plausible
    multiple of the chunks that came."""
    if output_tokens is None:
        return None
    size = text if isinstance(text, int) else len(text.encode("utf-8"))
    if output_tokens > size + _SPECIAL_TOKENS_SLACK:
        return (f"the server reported {output_tokens:,} output tokens for {size:,} bytes of text: "
                f"counted from the stream ({n_chunks} chunks) instead")
    if output_tokens > _TOKENS_PER_CHUNK_MAX * n_chunks + _SPECIAL_TOKENS_SLACK:
        return (f"the server reported {output_tokens:,} output tokens in {n_chunks} streamed chunks: "
                "counted from the stream instead")
    return None


def _json(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _ratio(num, den_s):
    return num / den_s if num is not None and den_s else None


class Recorder:
    """Scores and writes the generations of one run (`record`), then its final status (`settle`)."""

    def __init__(self, store: Store, run_id: str, total: int, done: int = 0, judge=None,
                 base_dir: str | None = None, on_progress: Callable[[Progress], None] | None = None,
                 abandon: threading.Event | None = None):
        self.store, self.run_id, self.total, self.done = store, run_id, total, done
        self.judge, self.base_dir, self.on_progress = judge, base_dir, on_progress
        # set by a second Ctrl-C: stop waiting for a busy database, keep the journal
        self._abandon = abandon or threading.Event()
        self.lock = threading.RLock()  # one writer at a time (hosts run in threads)
        self._journaled = 0
        self._skipped: set[str] = set()
        self._reserve: Path | None = None
        self._t_start = time.perf_counter()
        self._beat = threading.Event()
        self._beating: threading.Thread | None = None

    def start(self) -> Recorder:
        """Keep the disk reserve and start the heartbeat."""
        self._keep_reserve()
        self._beating = threading.Thread(target=self._heartbeat, args=(self._beat,), daemon=True, name="heartbeat")
        self._beating.start()
        return self

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat and wait for a beat in progress: a process that exits while a thread is
        inside the database's native code is aborted by the interpreter's shutdown."""
        self._beat.set()
        if self._beating is not None and self._beating is not threading.current_thread():
            self._beating.join(timeout=2 * HEARTBEAT_S)

    def note(self, patch: dict, column: str = "config_json") -> None:
        """Merge facts into the run's configuration or host information (under the write lock)."""
        with self.lock:
            self.store.update_run_config(self.run_id, patch, column=column)

    def _heartbeat(self, stop: threading.Event) -> None:
        """Tell other processes this run lives (its owner pid is checked on this host)."""
        while not stop.wait(HEARTBEAT_S):
            try:
                self.store.heartbeat(self.run_id)
            except Exception:  # a busy or failing database must not stop the run
                pass

    def write(self, row: dict, checks: list[dict]) -> None:
        """Commit a finished generation; while another process holds the database, keep it
        in the run's journal beside the file and write it once the lock frees."""
        try:
            if self._journaled:
                self._journaled -= self.store.flush_journal(self.run_id, lock_timeout_s=WRITE_WAIT_S)
            if not self._journaled:
                self.store.add_generation(row, checks, lock_timeout_s=WRITE_WAIT_S)
                return
        except StoreBusy as exc:
            if not self._journaled:
                log.warning("database busy (%s): results are kept in %s until it frees", exc,
                            self.store.journal_path(self.run_id))
        self.store.journal(self.run_id, row, checks)
        self._journaled += 1

    def settle(self, status: str, error: str | None = None) -> None:
        """Write what the journal holds and the run's final status, waiting for the lock
        with a visible message; a second signal leaves the journal for the next open. A settled run
        beats no more."""
        self.stop_heartbeat()
        waited = 0.0
        while True:
            try:
                if self._journaled:
                    self.store.flush_journal(self.run_id, lock_timeout_s=5.0)
                    self._journaled = 0
                self.store.finish_run(self.run_id, status, error, lock_timeout_s=5.0)
                self._release_reserve()
                return
            except StoreBusy:
                waited += 5.0
                log.warning("database %s is still busy after %.0f s: waiting to write %d kept results "
                            "(they stay in %s if this is stopped)", self.store.path, waited, self._journaled,
                            self.store.journal_path(self.run_id))
                if self._abandon.is_set():
                    return
            except StoreError as exc:
                # A full disk: the space kept aside at the start makes room for the final status.
                if "disk is full" in str(exc) and self._release_reserve():
                    continue
                raise

    def _keep_reserve(self) -> None:
        """Set a little disk space aside beside the database, so that a run that fills the disk
        can still write that it failed (the reserve is released then, or at the end)."""
        path = self.store.journal_path(self.run_id).with_suffix(".reserve")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\0" * RESERVE_BYTES)
            self._reserve = path
        except OSError:  # no room even for that: nothing kept, and no half-written file left
            self._reserve = None
            path.unlink(missing_ok=True)

    def _release_reserve(self) -> bool:
        path, self._reserve = self._reserve, None
        if path is None:
            return False
        try:
            path.unlink()
        except OSError:
            return False
        return True

    def record(self, spec, case: Case, repeat, turn, t: Timed, load_ms, memory, checks,
               engine_load_ms: float | None = None, question: str = "", context_tokens: int | None = None,
               cache: tuple[str | None, str | None] = (None, None), prompt_parts: tuple[str, ...] = (),
               marker: str | None = None) -> None:
        r = t.report or EngineReport(tokens_from_engine=False)
        # Without the engine's count, one streamed chunk (answer or reasoning) is one token.
        n_chunks = t.chunks if t.chunks is not None else len(t.gaps_ms) + 1 if t.first_token_s is not None else 0
        said = t.text + (t.reasoning or "") + "".join(c.name + c.arguments for c in t.tool_calls or [])
        doubt = implausible_token_count(r.output_tokens, said, n_chunks)
        if doubt:  # the server's word is not taken: the harness's own count is, and said why
            r = dataclasses.replace(r, output_tokens=None, engine_decode_tokens=None, tokens_from_engine=False)
        out_tokens = r.output_tokens if r.output_tokens is not None else (n_chunks or None)
        # Stream decode rate: tokens after the first over the time after the first chunk.
        stream_window = (t.last_chunk_s - t.first_token_s) \
            if t.first_token_s is not None and t.last_chunk_s is not None else None
        steps = len(t.steps) if t.steps else 1
        if t.decode_window_s is not None:  # several steps: each one's first token is not decode time
            stream_window = t.decode_window_s
        stream_rate = _ratio(out_tokens - steps, stream_window) if out_tokens and out_tokens > steps else None
        engine_rate = _ratio(r.engine_decode_tokens if r.engine_decode_tokens is not None else out_tokens,
                             r.engine_decode_ms / 1000 if r.engine_decode_ms else None)
        prompt_rate = _ratio(r.prompt_tokens, r.engine_prompt_ms / 1000 if r.engine_prompt_ms
                             else t.first_token_s)
        row = {
            "run_id": self.run_id, "model_spec": spec, "case_id": case.id,
            "category": case.category, "repeat": repeat, "turn": turn,
            "ok": t.error is None, "error": t.error, "output_text": t.text,
            "finish_reason": r.finish_reason, "load_ms": load_ms,
            "ttft_ms": t.ttft_s * 1000 if t.ttft_s is not None else None,
            "e2e_ms": t.e2e_s * 1000 if t.e2e_s is not None else None,
            "prompt_tokens": r.prompt_tokens, "output_tokens": out_tokens,
            "output_chars": len(t.text),
            "prompt_tok_per_s": prompt_rate,
            "decode_tok_per_s": engine_rate if engine_rate is not None else stream_rate,
            "stream_decode_tok_per_s": stream_rate,
            "chars_per_s": _ratio(len(t.text), t.e2e_s - t.ttft_s if t.ttft_s is not None and t.e2e_s else None),
            "engine_prompt_ms": r.engine_prompt_ms, "engine_decode_ms": r.engine_decode_ms,
            "tokens_source": ("engine" if r.tokens_from_engine else "stream") if t.report else None,
            "rss_mb": memory.get("rss_mb"), "vram_mb": memory.get("vram_mb"),
            "started_at": t.started_at,
            "first_token_ms": t.first_token_s * 1000 if t.first_token_s is not None else None,
            "reasoning_text": t.reasoning or None,
            "chunk_gaps_ms": t.gaps_ms,
            # the engine's own load figure: from load() on the first generation, else per request
            "engine_load_ms": engine_load_ms if engine_load_ms is not None else r.extra.get("load_ms"),
            "engine_total_ms": r.extra.get("total_ms"),
            "exceeds_context": t.exceeds_context,
            "context_tokens": context_tokens,
            **t.telemetry,
            "cache_mode": cache[0], "cache_marker": cache[1],
            "cached_prompt_tokens": r.extra.get("cached_prompt_tokens"),
            "request_id": r.extra.get("request_id"),  # the server's id of the request, to find it in its logs
            "tokens_note": doubt,
            "tool_calls_json": _json([c.as_row() for c in t.tool_calls])
            if t.tool_calls is not None else None,
            "tool_steps_json": _json(t.steps) if t.steps is not None else None,
            "tool_steps": len(t.steps) if t.steps is not None else None,
            "tool_ms": t.tool_ms, "tools_note": t.tools_note,
            "failed_by": t.failed_by, "retries": t.retries or None,
            "retry_wait_ms": t.retry_wait_s * 1000 if t.retries else None,
        }
        if row.get("peak_vram_mb") is None and memory.get("vram_mb"):
            row["peak_vram_mb"] = memory["vram_mb"]  # a server's own figure (Ollama's /api/ps size_vram)
        check_rows = []
        # A prompt beyond the model's context is not a wrong answer, nor is a generation the server failed:
        # their checks are not scored (the case is missing for that model; resume runs the second again).
        for c in checks if not t.exceeds_context and t.failed_by is None else []:
            raw = None
            if t.error:
                passed, score, detail = False, 0.0, "generation failed"
            else:
                opts = {"ignore_case": c.ignore_case, "ttft_ms": row["ttft_ms"], "e2e_ms": row["e2e_ms"],
                        "base_dir": self.base_dir, "question": question, "judge": self.judge,
                        "prompt_parts": prompt_parts, "marker": marker, "negate": c.negate,
                        "tool_calls": t.tool_calls or [], "tools": t.tools, "state": t.state,
                        "has_environment": t.has_environment}
                try:
                    res = run_check(c.type, t.text, c.value, opts)
                except (CheckSkipped, SandboxUnavailable) as exc:
                    # Not the model's fault: not scored, and said once per run.
                    if str(exc) not in self._skipped:
                        self._skipped.add(str(exc))
                        log.warning("%s checks not scored: %s", c.type, exc)
                    continue
                except Exception as exc:  # a check that breaks scores 0 and says why
                    res = CheckResult(False, 0.0, f"check error: {type(exc).__name__}: {exc}")
                passed, score, detail, raw = res.passed, res.score, res.detail, res.raw
            check_rows.append({"run_id": self.run_id, "model_spec": spec, "case_id": case.id,
                               "repeat": repeat, "turn": turn, "check_type": c.type,
                               "passed": passed, "score": score, "weight": c.weight, "detail": detail,
                               "raw_verdict": raw, "critical": c.critical})
        with self.lock:
            self.write(row, check_rows)
            self.done += 1
            if self.on_progress:
                self.on_progress(Progress(self.run_id, self.done, self.total, spec, case.id,
                                          t.error is None, time.perf_counter() - self._t_start))
