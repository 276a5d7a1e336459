"""Runs a plan of models x cases x repeats and commits each generation as it ends.

The runner owns the clock (time.perf_counter). Failures are data: a failed load or
generation becomes a row with ok=false and its error, and the run goes on.
"""
from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from .backends import (
    Backend,
    BackendError,
    ContextOverflow,
    EngineReport,
    GenParams,
    Reasoning,
    Retried,
    ServerFailure,
    parse_spec,
    resolve,
)
from .backends.base import DEFAULT_MAX_CONTEXT
from .cjk import estimate_tokens
from .environment import Environment
from .hostinfo import LoadMonitor, host_info
from .judging import make_judge
from .recorder import Progress, Recorder, Timed
from .retrieval import select
from .scenarios import Case, Scenario
from .schedule import plan
from .servermetrics import difference, scrape
from .store import Store, stale_reason, utcnow
from .telemetry import Sampler, model_pid
from .timing import StreamTiming
from .tools import CallAssembler, ToolCallDelta, assistant_message, call_ids, tool_message, tools_payload

WARMUP_MAX_TOKENS = 8
DOCUMENT_SHARE = 0.66  # of the context left after the answer and the question, what documents may take
log = logging.getLogger("modelpick")


def backend_options(gpu_layers: int = 0, n_ctx: int | None = None, max_context: int = DEFAULT_MAX_CONTEXT,
                    first_token_timeout_s: float | None = 120.0, connect_timeout_s: float = 10.0,
                    threads: int | None = None) -> dict:
    """The options every backend of a run is made with, as `engine run` spells them (its defaults
    here, for the command line and the cloud session alike)."""
    options = {"n_gpu_layers": gpu_layers, "n_ctx": n_ctx, "max_context": max_context,
               "timeout_s": first_token_timeout_s, "connect_timeout_s": connect_timeout_s}
    if threads:
        options["n_threads"] = threads
    return options


@dataclass
class RunConfig:
    scenario: Scenario
    models: list[str]
    repeats: int = 1
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    case_ids: list[str] | None = None
    backend_options: dict = field(default_factory=dict)
    warmup: bool = True
    judge: str | None = None  # model spec of the judge for llm_judge checks
    first_token_timeout_s: float | None = 120.0  # per request; None: no limit
    request_timeout_s: float | None = 600.0  # per request, the whole answer
    # "cold": every timed request starts with a unique marker, so no prompt cache of a server can
    # serve it; "warm": the same request is sent once untimed first, so its prefix is cached.
    cache_mode: str = "cold"

    def cases(self) -> list[Case]:
        if not self.case_ids:
            return list(self.scenario.cases)
        known = {c.id: c for c in self.scenario.cases}
        missing = [c for c in self.case_ids if c not in known]
        if missing:
            raise ValueError(f"scenario {self.scenario.id}: unknown case ids {missing}")
        return [known[c] for c in self.case_ids]

    def params(self, case: Case, repeat: int) -> GenParams:
        d = self.scenario.defaults
        seed = self.seed if self.seed is not None else d.seed
        return GenParams(
            max_tokens=self.max_tokens or case.max_tokens or d.max_tokens,
            temperature=self.temperature if self.temperature is not None else d.temperature,
            seed=None if seed is None else seed + repeat,
            mode=case.mode,
            cache_prompt=self.cache_mode == "warm",
        )

    def planned_generations(self) -> int:
        return len(self.models) * self.repeats * sum(len(c.turn_inputs()) for c in self.cases())

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """The config a run recorded (to resume it): its scenario file where it still is."""
        from .scenarios import load_scenario

        source = d.get("scenario_source")
        scenario = load_scenario(source if source and Path(source).is_file() else d["scenario_id"])
        keys = ("repeats", "max_tokens", "temperature", "seed", "case_ids", "backend_options", "warmup", "judge",
                "first_token_timeout_s", "request_timeout_s", "cache_mode")
        return cls(scenario=scenario, models=list(d["models"]), **{k: d[k] for k in keys if k in d})

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """A configuration file as `--print-config` writes it (or by hand); every field checked, the
        backend options not set keep the command line's defaults."""
        from . import configfile

        d = configfile.read(path, configfile.RunConfigFile)
        d["backend_options"] = {**backend_options(), **d.get("backend_options", {})}
        return cls.from_dict(d)

    def as_dict(self) -> dict:
        return {"scenario_id": self.scenario.id, "scenario_source": self.scenario.source_path,
                "models": self.models, "repeats": self.repeats, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "seed": self.seed, "case_ids": self.case_ids,
                "backend_options": self.backend_options, "warmup": self.warmup, "judge": self.judge,
                "first_token_timeout_s": self.first_token_timeout_s, "request_timeout_s": self.request_timeout_s,
                "cache_mode": self.cache_mode}


def cache_marker(key: str | None = None) -> str:
    """A short marker put at the very start of a conversation's prompt in cold mode: same
    meaning for the model, no prefix a server cached before (docs/schema.md). With `key` (run,
    case and repeat) every model of a run gets the same prompt, and each repeat its own."""
    import hashlib

    return f"[{hashlib.sha256(key.encode()).hexdigest()[:8] if key else secrets.token_hex(4)}]"


def context_limit(spec: str, backend: Backend, cap: int | None = None) -> int | None:
    """The context the model runs with: the backend's (llama.cpp's n_ctx, Ollama's num_ctx,
    vLLM's max_model_len), else the catalog's for the model a server names; at most `cap`
    (the user's --max-context), which long-context probes are then sized to."""
    from .catalog import find_served

    limit = backend.context_tokens
    if not limit:
        entry = find_served(parse_spec(spec).model)
        limit = entry.context_tokens if entry else None
    return min(limit, cap) if limit and cap else limit


def _exceeds(backend: Backend, messages: list[dict]) -> str | None:
    """Why a prompt clearly cannot fit the model's context (with a 10% margin), else None."""
    limit = backend.context_tokens
    if not limit:
        return None
    need = estimate_tokens("".join(m.get("content") or "" for m in messages))
    if need > limit * 1.1:
        return f"exceeds context: prompt of about {need} tokens, context {limit} tokens"
    return None


def merge_steps(steps: list[Timed]) -> Timed:
    """A turn of several model steps as one generation: the answer is the last step's, the first token the
    first step's; durations, tokens and engine times add up over the steps (the time in tools is apart;
    telemetry is sampled over the whole turn by the caller);
    decode time is each step's first to last chunk, so the prompt of a later step is not counted as
    decoding. The first failed step fails the turn."""
    if len(steps) == 1:
        return steps[0]
    first, last = steps[0], steps[-1]
    out = replace(last, started_at=first.started_at, ttft_s=first.ttft_s, first_token_s=first.first_token_s)
    out.e2e_s = sum(t.e2e_s or 0.0 for t in steps)
    out.gaps_ms = [g for t in steps for g in t.gaps_ms]
    out.chunks = sum(t.chunks or 0 for t in steps)
    out.reasoning = "".join(t.reasoning for t in steps)
    failing = next((t for t in steps if t.error), None)
    out.error = failing.error if failing else None
    out.failed_by = failing.failed_by if failing else None
    out.retries = sum(t.retries for t in steps)
    out.retry_wait_s = sum(t.retry_wait_s for t in steps)
    out.exceeds_context = any(t.exceeds_context for t in steps)
    windows = [t.last_chunk_s - t.first_token_s for t in steps
               if t.first_token_s is not None and t.last_chunk_s is not None]
    out.decode_window_s = sum(windows) if windows else None
    reports = [t.report for t in steps if t.report is not None]
    if reports:
        def total(name: str):
            values = [getattr(r, name) for r in reports]
            return None if any(v is None for v in values) or len(reports) < len(steps) else sum(values)

        out.report = EngineReport(prompt_tokens=total("prompt_tokens"), output_tokens=total("output_tokens"),
                                  engine_prompt_ms=total("engine_prompt_ms"),
                                  engine_decode_ms=total("engine_decode_ms"),
                                  engine_decode_tokens=total("engine_decode_tokens"),
                                  finish_reason=reports[-1].finish_reason,
                                  tokens_from_engine=all(r.tokens_from_engine for r in reports),
                                  extra={**reports[0].extra, **{k: v for k, v in reports[-1].extra.items()
                                                                if k == "request_id"}})
    return out


class _Stop(Exception):
    """A generation or load stopped by cancel or a timeout; the message says which."""


@dataclass
class _Failure:
    exc: BaseException


_END = object()


def _fit_together(backends: list[Backend]) -> bool:
    """Whether these models can be held at once without swapping: served models always
    can unless their backend loads them exclusively; in-process ones when their files fit
    in the memory that is free now."""
    if any(not b.shares_host for b in backends):
        return False
    need_mb = sum(b.footprint_mb() or 0.0 for b in backends)
    if need_mb == 0:
        return True
    import psutil

    return need_mb < 0.8 * psutil.virtual_memory().available / 2**20


@dataclass
class _RunState:
    """What the runner keeps for the run it executes."""

    run_id: str
    rec: Recorder  # scores and writes each generation durably
    todo: dict | None  # resuming: per model, the (case id, repeat) cells still to run; None: all
    loaded_before: set  # models whose load a resumed run measured already
    schedules: dict[str, dict] = field(default_factory=dict)  # per host
    engines: dict[str, dict] = field(default_factory=dict)  # per model: its engine's facts
    backends: dict = field(default_factory=dict)  # per model spec
    passages: dict[str, Any] = field(default_factory=dict)  # per case: what retrieval gave it (once per run)
    retrieval: dict[str, dict] = field(default_factory=dict)  # per case: that choice as the run records it
    server_before: dict[str, dict] = field(default_factory=dict)  # per model: its server's /metrics at the start
    server: dict[str, dict] = field(default_factory=dict)  # per model: what its server counted meanwhile


class Runner:
    """The cell executor: loads each model (timed), warms it up, streams every turn of a cell and
    times it; the schedule (engine.schedule) says in which order, the recorder (engine.recorder)
    scores and keeps what it measured."""

    def __init__(self, store: Store, on_progress: Callable[[Progress], None] | None = None,
                 on_chunk: Callable[[str, str, str], None] | None = None,
                 cancel: threading.Event | None = None, abandon: threading.Event | None = None):
        self.store = store
        # set by a second Ctrl-C: stop waiting for a busy database, keep the journal
        self._abandon = abandon or threading.Event()
        self.on_progress = on_progress
        self.on_chunk = on_chunk
        self.cancel = cancel or threading.Event()
        self._pids: dict[str, int | None] = {}  # per model: the process holding it (telemetry)

    # -- public --------------------------------------------------------------------
    def run(self, config: RunConfig, run_id: str | None = None) -> str:
        """Run the plan; return the run id. Invalid input raises before anything is written."""
        if config.repeats < 1:
            raise ValueError("repeats must be at least 1")
        cases = config.cases()
        backends = {spec: resolve(spec, **config.backend_options) for spec in config.models}
        judge = make_judge(config.judge) if config.judge else (None, None)
        run_id = self.store.create_run(config.scenario.id, config.as_dict(), host_info(),
                                       config.planned_generations(), run_id=run_id)
        return self._execute(config, run_id, cases, backends, judge)

    def resume(self, run_id: str) -> str:
        """Run the cells (model x case x repeat, all turns) of a run that are missing or were
        cancelled, in the same run with the same config; the rest is kept as measured."""
        run = self.store.get_run(run_id)
        if run is None:
            raise ValueError(f"no run {run_id!r} in {self.store.path}")
        if run["status"] == "running" and not stale_reason(run):
            raise ValueError(f"run {run_id} is still running (pid {run.get('owner_pid')} on "
                             f"{run.get('owner_host')}); cancel it first")
        config = RunConfig.from_dict(json.loads(run["config_json"]))
        cases = config.cases()
        gens = self.store.query("SELECT model_spec, case_id, repeat, turn, error, load_ms, failed_by FROM generations "
                                "WHERE run_id = ?", [run_id])
        turns = {c.id: len(c.turn_inputs()) for c in cases}
        todo: dict[str, set] = {}
        redo, removed = [], 0
        for spec in config.models:
            for case in cases:
                for repeat in range(config.repeats):
                    rows = gens[(gens.model_spec == spec) & (gens.case_id == case.id) & (gens.repeat == repeat)]
                    # cancelled, or failed by the server or the network (not the model's doing): run again
                    cancelled = rows.error.fillna("").str.startswith("cancelled").any() or \
                        (rows.failed_by == "server").any()
                    if len(rows) < turns[case.id] or cancelled:
                        todo.setdefault(spec, set()).add((case.id, repeat))
                        if len(rows):
                            redo.append((spec, case.id, repeat))
                            removed += len(rows)
        loaded = set(gens.loc[gens.load_ms.notna(), "model_spec"])
        backends = {spec: resolve(spec, **config.backend_options) for spec in todo}
        judge = make_judge(config.judge) if config.judge else (None, None)
        self.store.delete_cells(run_id, redo)
        self.store.reopen_run(run_id)
        return self._execute(config, run_id, cases, backends, judge, todo=todo, done=len(gens) - removed,
                             loaded=loaded, retrieval=json.loads(run["config_json"]).get("retrieval") or {})

    def _execute(self, config: RunConfig, run_id: str, cases: list[Case], backends: dict, judge,
                 todo: dict | None = None, done: int = 0, loaded: set | None = None,
                 retrieval: dict | None = None) -> str:
        judge_fn, judge_backend = judge
        source = config.scenario.source_path
        rec = Recorder(self.store, run_id, config.planned_generations(), done=done, judge=judge_fn,
                       base_dir=str(Path(source).parent) if source else None, on_progress=self.on_progress,
                       abandon=self._abandon)
        self._run = _RunState(run_id, rec, todo, loaded or set(), backends=backends, retrieval=dict(retrieval or {}))
        rec.start()
        monitor = LoadMonitor().start()
        # One worker per host, sequential within a host so timings stay clean: a fleet
        # run takes the time of its slowest host, not the sum.
        by_place: dict[str, list[str]] = {}
        for spec in backends:
            by_place.setdefault(parse_spec(spec).place, []).append(spec)

        def run_place(specs: list[str]) -> None:
            self._run_place(config, specs, backends, cases)

        try:
            if len(by_place) == 1:
                run_place(next(iter(by_place.values())))
            elif by_place:
                with ThreadPoolExecutor(max_workers=len(by_place), thread_name_prefix="host") as pool:
                    futures = [pool.submit(run_place, specs) for specs in by_place.values()]
                    try:
                        for f in futures:
                            f.result()
                    except BaseException:
                        self.cancel.set()  # stop the other hosts too
                        raise
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            rec.settle(status, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            rec.stop_heartbeat()
            self._note_load(monitor.stop())
            if judge_backend is not None:
                judge_backend.close()
        rec.settle("interrupted" if self.cancel.is_set() else "done", "cancelled" if self.cancel.is_set() else None)
        return run_id

    def _note_engine(self, spec: str, backend) -> None:
        """What the backend knows of its engine and machine, in the run's host information."""
        try:
            facts = self._in_thread(backend.host_facts, 10.0, f"engine facts of {spec}")
        except Exception as exc:  # a note on the run; never fail a model for it
            log.warning("%s: engine facts not recorded: %s", spec, exc)
            return
        if not facts:
            return  # nothing to add: no write
        with self._run.rec.lock:
            self._run.engines[spec] = facts
            update = {"engines": dict(self._run.engines)}
            if "llama_gpu_offload" in facts:
                update["llama_gpu_offload"] = facts["llama_gpu_offload"]
            try:
                self._run.rec.note(update, column="host_json")
            except Exception as exc:
                log.warning("engine facts not recorded: %s", exc)

    def _note_server(self, spec: str, backend) -> None:
        """What the model's server counted while it ran (its /metrics before and after), in the run's
        host information; a missing or reset /metrics is noted as such."""
        before = self._run.server_before.pop(spec, None)
        if before is None:
            return
        try:
            counted = difference(before, scrape(str(backend.server_url()), backend.auth_headers()))
            with self._run.rec.lock:
                self._run.server[spec] = counted
                self._run.rec.note({"server_metrics": dict(self._run.server)}, column="host_json")
        except Exception as exc:  # a note on the run; never fail a model for it
            log.warning("%s: server counters not recorded: %s", spec, exc)

    def _note_load(self, load: dict) -> None:
        """The host's load during the run, in its host information (a busy host is flagged)."""
        if load["busy"]:
            log.warning("other processes kept the CPU %.0f%% busy during this run: its timings are not "
                        "trustworthy", load["others_cpu_pct_median"])
        try:
            self._run.rec.note({"load": load}, column="host_json")
        except Exception as exc:  # the figures are a note on the run; never lose the run for them
            log.warning("host load not recorded: %s", exc)

    # -- scheduling ----------------------------------------------------------------
    def _run_place(self, config: RunConfig, specs: list[str], backends: dict, cases: list[Case]) -> None:
        """Models sharing a host run so that none is favoured by when it ran: interleaved
        (a shuffled model order per case and repeat) when they fit in memory together,
        else in ABBA blocks (first half of the cells A then B, second half B then A)."""
        cells = [(case, repeat) for case in cases for repeat in range(config.repeats)]
        todo, loaded_before = self._run.todo, self._run.loaded_before
        if todo is not None:
            cells = [c for c in cells if any((c[0].id, c[1]) in todo[s] for s in specs)]
        schedule = plan(specs, cells, len(specs) > 1 and _fit_together([backends[s] for s in specs]), config.seed)
        self._note_schedule(parse_spec(specs[0]).place, schedule.record())
        if schedule.mode == "sequential":
            self._run_segment(config, specs[0], backends[specs[0]], cells, first=specs[0] not in loaded_before)
        elif schedule.mode == "abba":
            seen: set[str] = set()
            for models, part in schedule.blocks:
                for spec in models:
                    if self.cancel.is_set() or not part:
                        break
                    self._run_segment(config, spec, backends[spec], self._mine(spec, part),
                                      first=spec not in seen and spec not in loaded_before)
                    seen.add(spec)
        else:
            self._run_interleaved(config, specs, backends, cells, schedule.orders)

    def _mine(self, spec: str, cells: list) -> list:
        """The cells this model still has to run (all of them unless resuming)."""
        if self._run.todo is None:
            return cells
        return [c for c in cells if (c[0].id, c[1]) in self._run.todo.get(spec, ())]

    def _note_schedule(self, place: str, record: dict) -> None:
        key = "schedule" if self._run.todo is None else "resume_schedule"
        schedules = self._run.schedules
        with self._run.rec.lock:
            schedules[place] = record
            self._run.rec.note({key: record if len(schedules) == 1 else dict(schedules)})

    def _open(self, config, spec, backend, cells, first: bool) -> dict | None:
        """Load (timed) and warm up; None after recording the failure for these cells. A
        model that cannot load or answer the warm-up fails its cells at once with that
        reason, said once on the console, instead of spending a timeout on every cell."""
        try:
            self._in_thread(backend.prepare, config.request_timeout_s, f"starting {spec}")
            t0 = time.perf_counter()
            self._in_thread(backend.load, config.request_timeout_s, f"loading {spec}")
        except Exception as exc:  # a _Stop (cancel, timeout) or the backend's own error
            if str(exc) == "cancelled":
                self._fail_cells(spec, cells, "cancelled")
            else:
                log.warning("%s could not be loaded: %s", spec, exc)
                self._fail_cells(spec, cells, f"load failed: {exc}",
                                 "server" if isinstance(exc, ServerFailure) else None)
            return None
        load_ms = (time.perf_counter() - t0) * 1000 if backend.load_is_model_load and first else None
        self._note_engine(spec, backend)
        if config.warmup:
            # the first case's first turn as the timed requests send it: the passages retrieval chose (never a
            # whole document past the context), a needle sized to this model's context
            case = cells[0][0]
            limit = context_limit(spec, backend, config.backend_options.get("max_context"))
            try:
                msgs, _ = case.turn_inputs(limit, self._passages(config, case))[0]
            except Exception as exc:  # retrieval failed: the case says so when it runs; warm up on its question
                log.warning("%s: warm-up without the case's passages: %s", spec, exc)
                msgs = [{"role": "user", "content": case.questions()[0][0]}]
            warm = self._generate(backend, msgs, GenParams(WARMUP_MAX_TOKENS, 0.0, 0), spec, "", watch=False,
                                  config=config)
            if warm.error and not warm.exceeds_context:
                if warm.error != "cancelled":
                    log.warning("%s failed its warm-up, its cases are not run: %s", spec, warm.error)
                self._fail_cells(spec, cells, "cancelled" if warm.error == "cancelled"
                                 else f"warm-up failed: {warm.error}", warm.failed_by)
                return None
        try:
            memory = self._in_thread(backend.memory_mb, 30.0, f"memory of {spec}")
        except Exception as exc:
            log.warning("%s: memory not measured: %s", spec, exc)
            memory = {}
        if backend.has_metrics and backend.server_url():  # after the warm-up: the server's count of the cells
            self._run.server_before[spec] = scrape(str(backend.server_url()), backend.auth_headers())
        return {"load_ms": load_ms, "memory": memory or {}, "first": first}

    def _run_segment(self, config, spec, backend, cells, first: bool) -> None:
        if not cells:
            return
        state = self._open(config, spec, backend, cells, first)
        if state is None:
            backend.close()  # what a failed load started (an engine process) ends here
            return
        try:
            for case, repeat in cells:
                if self.cancel.is_set():
                    return
                self._run_cell(config, spec, backend, case, repeat, state)
        finally:
            self._note_server(spec, backend)
            backend.close()

    def _run_interleaved(self, config, specs, backends, cells, orders) -> None:
        states: dict[str, Any] = {}
        try:
            for spec in specs:
                mine = self._mine(spec, cells)
                states[spec] = self._open(config, spec, backends[spec], mine,
                                          first=spec not in self._run.loaded_before) if mine else None
            for (case, repeat), order in zip(cells, orders):
                for spec in order:
                    if self.cancel.is_set():
                        return
                    if states[spec] is not None and self._mine(spec, [(case, repeat)]):
                        self._run_cell(config, spec, backends[spec], case, repeat, states[spec])
        finally:
            for spec in specs:
                self._note_server(spec, backends[spec])
                backends[spec].close()

    def _fail_cells(self, spec, cells, error: str, failed_by: str | None = None) -> None:
        for case, repeat in cells:
            for turn, (_, checks) in enumerate(case.turn_inputs()):
                self._run.rec.record(spec, case, repeat, turn, Timed(error=error, failed_by=failed_by), None, {},
                                     checks)

    def _run_cell(self, config, spec, backend, case, repeat, state: dict) -> None:
        state["load_ms"] = self._run_case(config, spec, backend, case, repeat, state["load_ms"], state["memory"])

    def _run_case(self, config, spec, backend, case: Case, repeat: int, load_ms, memory) -> float | None:
        params = config.params(case, repeat)
        limit = context_limit(spec, backend, config.backend_options.get("max_context"))
        # Cold mode without changing what is asked where the engine can: llama.cpp's engine process clears
        # its cache before every generation; vLLM takes a per-request cache_salt. Elsewhere a marker at the
        # very start of the conversation (no cached prefix fits it), taken out of the answer before scoring.
        key = f"{self._run.run_id}/{case.id}/{repeat}"
        switch = backend.cold_switch if config.cache_mode == "cold" else None
        marker = cache_marker(key) if config.cache_mode == "cold" and switch is None else None
        if switch == "cache_salt":
            params = replace(params, cache_salt=cache_marker(key).strip("[]"))
        noted = marker or (f"{switch}:{params.cache_salt}" if switch == "cache_salt" else None)
        if case.offered:
            params = replace(params, tools=tuple(tools_payload(case.offered)), tool_choice=case.tool_choice)
        env = Environment(case.environment_code, case.state, {t.name for t in case.offered}) \
            if case.environment_code is not None else None
        try:
            return self._turns(config, spec, backend, case, repeat, load_ms, memory, params, limit, marker,
                               switch, noted, env)
        finally:
            if env is not None:
                env.close()

    def _turns(self, config, spec, backend, case: Case, repeat: int, load_ms, memory, params, limit, marker,
               switch, noted, env) -> float | None:
        history: list[dict] = []
        failed_before = None
        failed_by = None
        for turn, (new_msgs, checks) in enumerate(case.turn_inputs(limit, self._passages(config, case))):
            if marker and turn == 0:
                new_msgs = [{**new_msgs[0], "content": f"{marker} {new_msgs[0]['content']}"}, *new_msgs[1:]]
            history += new_msgs
            # what the model was given (its own earlier answers too), which its answer is scored against;
            # not the tools' results, which a good answer relays
            parts = tuple(m.get("content") or "" for m in history if m.get("role") != "tool")
            too_long = _exceeds(backend, history)
            if case.sized_by_context and not limit:
                too_long = "exceeds context: the model's context limit is unknown, so the probe cannot be sized"
            if failed_before:
                timed = Timed(error=f"not run: turn {failed_before} failed", failed_by=failed_by)
            elif too_long:
                timed = Timed(error=too_long, exceeds_context=True)
            else:
                if config.cache_mode == "warm":  # the same prefix once, untimed: the timed one finds it cached
                    self._generate(backend, history, replace(params, max_tokens=1), spec, case.id, watch=False,
                                   config=config, tools=case.offered)
                if case.offered:
                    timed = self._act(config, spec, backend, case, history, params, env)
                else:
                    timed = self._generate(backend, history, params, spec, case.id, watch=True, config=config)
                history.append({"role": "assistant", "content": timed.text})
                if timed.error:
                    failed_before, failed_by = turn + 1, timed.failed_by
            self._run.rec.record(spec, case, repeat, turn, timed, load_ms, memory, checks,
                         backend.engine_load_ms if load_ms is not None else None,
                         question=new_msgs[-1]["content"], context_tokens=limit,
                         cache=(config.cache_mode, noted), prompt_parts=parts, marker=marker)
            load_ms = None  # load time belongs to the first generation only
        return load_ms

    def _passages(self, config: RunConfig, case: Case) -> str | None:
        """The documents a case is given: whole where they fit the smallest context of the run's
        models, else the passages retrieval chose; chosen once per case for the run (every model gets
        the same) and recorded in the run's configuration. None: the case has no documents."""
        if not case.sources or case.needle:
            return None
        with self._run.rec.lock:
            chosen = self._run.passages.get(case.id)
            if chosen is None:
                question = " ".join(q for q, _ in case.questions()) + " " + (case.system or "")
                recorded = self._run.retrieval.get(case.id)  # resuming: the budget the run chose with
                budget = recorded["budget"] if recorded else self._document_budget(config, case, question)
                chosen = select(case.sources, question, budget, Path(case.sources_dir) if case.sources_dir else None)
                self._run.passages[case.id] = chosen
                self._run.retrieval[case.id] = chosen.record(case.source)
                try:
                    self._run.rec.note({"retrieval": dict(self._run.retrieval)})
                except Exception as exc:  # a note on the run; the case still runs with its passages
                    log.warning("retrieval not recorded: %s", exc)
        return chosen.context

    def _document_budget(self, config: RunConfig, case: Case, question: str) -> int:
        """Tokens the documents may take: the smallest context among the run's models (known from the
        backend, else the catalog, else the --max-context cap), less the answer, the question and a margin."""
        from .catalog import find_served

        cap = config.backend_options.get("max_context") or DEFAULT_MAX_CONTEXT
        limits = []
        for spec in config.models:
            backend = self._run.backends.get(spec)
            known = context_limit(spec, backend, cap) if backend is not None else None
            if not known:
                entry = find_served(parse_spec(spec).model)
                known = min(entry.context_tokens, cap) if entry and entry.context_tokens else cap
            limits.append(known)
        answer = config.params(case, 0).max_tokens
        # the estimate (4 characters a token) runs short on tables, numbers and code: a third is kept spare
        return max(256, int((min(limits) - answer - estimate_tokens(question)) * DOCUMENT_SHARE) - 64)

    # -- one generation ------------------------------------------------------------
    def _in_thread(self, fn, timeout_s: float | None, what: str):
        """Run fn in a helper thread so a signal or a timeout stops the wait at once, even
        while a backend blocks on a server that accepted the connection and never answers."""
        box: dict = {}
        done = threading.Event()

        def call():
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=call, daemon=True, name=what).start()
        deadline = None if not timeout_s else time.monotonic() + timeout_s
        while not done.wait(0.05):
            if self.cancel.is_set():
                raise _Stop("cancelled")
            if deadline and time.monotonic() > deadline:
                raise _Stop(f"timeout: {what} took longer than {timeout_s:g} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _stream(self, backend, messages, params, t0: float, config: RunConfig | None):
        """(item, arrival time) from the backend's stream. A served model's stream is read in
        a helper thread, so cancel and the first-token and total timeouts end the wait within
        0.05 s even while a server holds the connection silent. A model on this machine (llama.cpp's
        engine process) is read in this thread (handing each token across threads would cost the
        GIL's switch interval in latency); it yields every token, and an empty chunk when nothing
        came for 0.05 s, and cancel and the timeouts are checked between them."""
        if not backend.served:  # the backend class's own fact: a model in a process of ours
            yield from self._stream_here(backend, messages, params, t0, config)
            return
        q: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()
        clock = time.perf_counter

        def produce():
            try:
                for item in backend.stream(messages, params):
                    q.put((item, clock()))
                    if stop.is_set():
                        break
            except BaseException as exc:
                q.put((_Failure(exc), clock()))
            finally:
                q.put((_END, clock()))

        worker = threading.Thread(target=produce, daemon=True, name="stream")
        worker.start()
        got_first = False
        try:
            while True:
                try:
                    item, t = q.get(timeout=0.05)
                except queue.Empty:
                    item = None
                self._check_limits(clock() - t0, got_first, config)
                if item is None:
                    continue
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                if isinstance(item, Retried):  # the server's wait is in no limit: the clock starts again
                    t0 = t
                    yield item, t
                    continue
                got_first = got_first or not isinstance(item, EngineReport)
                yield item, t
        finally:
            stop.set()
            worker.join(timeout=0.2)

    def _stream_here(self, backend, messages, params, t0: float, config: RunConfig | None):
        got_first = False
        for item in backend.stream(messages, params):
            now = time.perf_counter()
            if isinstance(item, Retried):
                t0 = now
                yield item, now
                continue
            self._check_limits(now - t0, got_first, config)
            got_first = got_first or not isinstance(item, EngineReport)
            yield item, now

    def _check_limits(self, elapsed_s: float, got_first: bool, config: RunConfig | None) -> None:
        """_Stop on cancel, or past the request's total or first-token timeout."""
        if self.cancel.is_set():
            raise _Stop("cancelled")
        total_s = config.request_timeout_s if config else None
        first_s = config.first_token_timeout_s if config else None
        if total_s and elapsed_s > total_s:
            raise _Stop(f"timeout: the answer took longer than {total_s:g} s")
        if first_s and not got_first and elapsed_s > first_s:
            raise _Stop(f"timeout: no first token within {first_s:g} s")

    def _model_pid(self, spec: str, backend: Backend) -> int | None:
        """The process whose memory is the model's: found once per model (a server's by its
        port), again if that process has gone."""
        pid = self._pids.get(spec)
        if spec not in self._pids or (pid is not None and not psutil.pid_exists(pid)):
            pid = self._pids[spec] = model_pid(backend)
        return pid

    def _generate(self, backend, messages, params, spec, case_id, watch: bool,
                  config: RunConfig | None = None, tools: list | None = None, sample: bool = True) -> Timed:
        out = Timed(started_at=utcnow())
        calls = CallAssembler(tools or [])
        parts: list[str] = []
        thinking: list[str] = []
        clock = time.perf_counter
        # telemetry over the generation; a tool case's steps are sampled over the whole turn instead
        sampler = Sampler(self._model_pid(spec, backend)).__enter__() if sample else None
        t0 = clock()
        timing = StreamTiming(t0)
        try:
            for item, now in self._stream(backend, messages, params, t0, config):
                if isinstance(item, Retried):  # nothing came yet: every timing starts from the request that answered
                    out.retries += 1
                    out.retry_wait_s += item.wait_s
                    t0 = now
                    timing = StreamTiming(t0)
                    continue
                if isinstance(item, EngineReport):
                    why = item.problem()
                    if why:  # a malformed answer fails this generation; the run goes on
                        raise BackendError(f"{spec}: malformed report from the server: {why}")
                    out.report = item
                    break
                if isinstance(item, ToolCallDelta):
                    calls.add(item)  # pieces with no text (an index alone) still carry an id
                    timing.chunk(item, now)
                    continue
                if not isinstance(item.text if isinstance(item, Reasoning) else item, str):
                    raise BackendError(f"{spec}: malformed chunk from the server: {item!r:.80}")
                if not timing.chunk(item, now):
                    continue
                if isinstance(item, Reasoning):
                    thinking.append(item.text)
                else:
                    parts.append(item)
                    if watch and self.on_chunk:
                        self.on_chunk(spec, case_id, item)
            else:
                if out.error is None:
                    out.error = "stream ended without the engine's final report"
        except _Stop as exc:
            out.error = str(exc)
        except ContextOverflow as exc:
            out.error, out.exceeds_context = f"exceeds context: {exc}", True
        except ServerFailure as exc:  # the server's or the network's failure: missing, not a wrong answer
            out.error, out.failed_by = f"{type(exc).__name__}: {exc}", "server"
        except Exception as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        out.e2e_s = clock() - t0
        out.ttft_s, out.first_token_s, out.last_chunk_s = timing.ttft_s, timing.first_token_s, timing.last_chunk_s
        out.gaps_ms = timing.gaps_ms
        out.chunks = timing.chunks
        if sampler is not None:
            sampler.__exit__(None, None, None)
            out.telemetry = sampler.data.row()
        out.text = "".join(parts)
        out.reasoning = "".join(thinking)
        if tools:
            out.tool_calls = calls.calls()
            out.tools = list(tools)
            out.tools_note = (out.report.extra.get("tools_note") if out.report else None)
        return out

    # -- a case with tools ------------------------------------------------------------
    def _act(self, config: RunConfig, spec: str, backend, case: Case, history: list[dict], params: GenParams,
             env: Environment | None, watch: bool = True) -> Timed:
        """The model's turn in a case with tools: asked, its calls run in the environment and their results
        sent back, until it answers without a call or `max_steps` is reached. Without an environment its
        first answer is the turn (its calls are scored as they are, as BFCL scores them)."""
        offered = case.offered
        steps: list[Timed] = []
        log_steps: list[dict] = []
        all_calls: list = []
        tool_ms = 0.0
        ended = None
        limit = case.max_steps or 8
        sampler = Sampler(self._model_pid(spec, backend)).__enter__()
        for step in range(limit):
            timed = self._generate(backend, history, params, spec, case.id, watch=watch, config=config, tools=offered,
                                   sample=False)
            steps.append(timed)
            calls = call_ids(timed.tool_calls or [], f"{case.id}_{step}")
            for c in calls:
                c.step = step
            entry: dict[str, Any] = {"step": step, "text": timed.text, "calls": [c.as_row() for c in calls],
                     "model_ms": timed.e2e_s * 1000 if timed.e2e_s is not None else None,
                     "ttft_ms": timed.ttft_s * 1000 if timed.ttft_s is not None else None, "results": []}
            if timed.error:
                entry["error"] = timed.error
            log_steps.append(entry)
            all_calls += calls
            if timed.error or not calls:
                break
            history.append(assistant_message(timed.text, calls))
            if env is None:
                break
            for c in calls:
                res = env.call(c.name, c.parsed, c.error)
                tool_ms += res.tool_ms
                entry["results"].append({"id": c.id, "name": c.name, "result": res.content, "error": res.error,
                                         "tool_ms": res.tool_ms})
                history.append(tool_message(c, res.content))
        else:
            ended = f"max_steps ({limit}) reached: the model was still calling tools"
        sampler.__exit__(None, None, None)
        out = merge_steps(steps)
        out.telemetry = sampler.data.row()
        out.tool_calls, out.steps, out.tools = all_calls, log_steps, list(offered)
        out.tool_ms = tool_ms if env is not None else None
        out.state = env.state if env is not None else None
        out.has_environment = env is not None
        notes = list(dict.fromkeys(n for n in [*(t.tools_note for t in steps), ended] if n))
        out.tools_note = "; ".join(notes) or None
        return out



__all__ = ["Runner", "RunConfig", "Progress", "BackendError"]
