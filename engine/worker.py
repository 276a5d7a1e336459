"""Runs execute in a separate worker process (the command line), so a run goes on when
the dashboard tab closes and a crash in a model runtime cannot take the dashboard down.

The worker commits each generation to the database (progress is read from there) and
keeps a small live file beside the database with its pid and the answer being
generated, for the dashboard to stream.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import configfile
from .redact import mask_held
from .store import STALE_AFTER_S, Store, new_run_id, stale_reason, utcnow  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parent.parent
_LIVE_INTERVAL_S = 0.25
# Children started by this process, so their exit status can be collected (no zombies).
_PROCS: dict[str, subprocess.Popen] = {}


def runs_dir(db_path: str) -> Path:
    return Path(f"{db_path}.runs")


def live_path(db_path: str, run_id: str) -> Path:
    return runs_dir(db_path) / f"{run_id}.json"


def log_path(db_path: str, run_id: str) -> Path:
    return runs_dir(db_path) / f"{run_id}.log"


class LiveWriter:
    """Called by the worker: the answer being generated, written at most every 0.25 s."""

    def __init__(self, path: Path, run_id: str):
        self.path, self.run_id = Path(path), run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.state: dict[str, Any] = {"run_id": run_id, "pid": os.getpid(), "model_spec": None, "case_id": None,
                                      "text": ""}
        self._last = 0.0
        self._write()

    def on_chunk(self, model_spec: str, case_id: str, chunk: str) -> None:
        if (self.state["model_spec"], self.state["case_id"]) != (model_spec, case_id):
            self.state.update(model_spec=model_spec, case_id=case_id, text="")
        self.state["text"] += chunk
        if time.monotonic() - self._last >= _LIVE_INTERVAL_S:
            self._write()

    def on_progress(self, _progress) -> None:
        self._write()

    def update(self, force: bool = False, **state) -> None:
        """Other progress (a load sweep's requests), written at most every 0.25 s."""
        self.state.update(state)
        if force or time.monotonic() - self._last >= _LIVE_INTERVAL_S:
            self._write()

    def _write(self) -> None:
        self._last = time.monotonic()
        tmp = self.path.with_suffix(".tmp")
        state = dict(self.state, text=mask_held(self.state.get("text")))
        tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)


def _launch(db_path: str, run_id: str, cmd: list[str]) -> str:
    runs_dir(db_path).mkdir(parents=True, exist_ok=True)
    with open(log_path(db_path, run_id), "a", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _PROCS[run_id] = proc
    return run_id


def start_resume(db_path: str, run_id: str) -> str:
    """Launch `python -m engine resume RUN_ID` for the dashboard; the same run id."""
    return _launch(db_path, run_id, [sys.executable, "-m", "engine", "resume", run_id, "--db", db_path,
                                     "--live", str(live_path(db_path, run_id)), "--quiet"])


def config_path(db_path: str, job_id: str) -> Path:
    """The configuration file a run or sweep of the dashboard is started with."""
    return runs_dir(db_path) / f"{job_id}.config.json"


def start_run(db_path: str, scenario: str, models: list[str], repeats: int = 1,
              max_tokens: int | None = None, temperature: float | None = None,
              gpu_layers: int = 0, case_ids: list[str] | None = None, judge: str | None = None,
              max_context: int | None = None, cache_mode: str = "cold") -> str:
    """Launch `python -m engine run --config FILE` in its own session; return the run id it will use.
    The configuration is built (and checked) here and passed as a file, never as option strings."""
    from .backends.base import DEFAULT_MAX_CONTEXT
    from .runner import RunConfig, backend_options
    from .scenarios import load_scenario

    options = backend_options(gpu_layers, max_context=max_context or DEFAULT_MAX_CONTEXT)
    config = RunConfig(scenario=load_scenario(scenario), models=list(models), repeats=repeats,
                       max_tokens=max_tokens or None, temperature=temperature, case_ids=case_ids or None,
                       backend_options=options, judge=judge or None, cache_mode=cache_mode)
    config.cases()
    run_id = new_run_id()
    runs_dir(db_path).mkdir(parents=True, exist_ok=True)
    configfile.write(config_path(db_path, run_id), config.as_dict())
    return _launch(db_path, run_id, [
        sys.executable, "-m", "engine", "run", "--config", str(config_path(db_path, run_id)), "--db", db_path,
        "--run-id", run_id, "--live", str(live_path(db_path, run_id)), "--quiet"])


def start_sweep(db_path: str, scenario: str, model: str, levels: list[int], requests: int | None = None,
                max_tokens: int | None = None, slo: dict[str, float] | None = None,
                rates: list[float] | None = None, warmup: int = 0, find_max: bool = False) -> str:
    """Launch `python -m engine sweep --config FILE` in its own session; return the sweep id it will use.
    `levels` (closed loop) and `rates` (open loop, Poisson arrivals per second) as `engine sweep` takes
    them; `find_max` searches from the first rate (or, without rates, the first level)."""
    from .scenarios import load_scenario
    from .sweep import SweepConfig, check_search

    levels, rates = list(levels), list(rates or [])
    if find_max:
        levels, rates = (levels[:1], []) if not rates else ([], rates[:1])
        check_search(dict(slo or {}), levels, rates)
    config = SweepConfig(model=model, scenario=load_scenario(scenario), concurrency=levels, rates=rates,
                         requests=requests or None, max_tokens=max_tokens or None, slo=dict(slo or {}),
                         warmup=warmup, find_max=find_max)
    sweep_id = new_run_id()
    runs_dir(db_path).mkdir(parents=True, exist_ok=True)
    configfile.write(config_path(db_path, sweep_id), config.as_dict())
    return _launch(db_path, sweep_id, [
        sys.executable, "-m", "engine", "sweep", "--config", str(config_path(db_path, sweep_id)), "--db", db_path,
        "--sweep-id", sweep_id, "--live", str(live_path(db_path, sweep_id))])


def start_cloud_launch(db_path: str, task_file: str | Path) -> str:
    """Launch `python -m engine cloud launch TASK` in its own session; an id for its log."""
    launch_id = "launch-" + new_run_id()
    return _launch(db_path, launch_id, [sys.executable, "-m", "engine", "cloud", "launch", str(task_file)])


def log_tail(db_path: str, job_id: str, lines: int = 40) -> str:
    """The end of a worker's log (a cloud launch shows SkyPilot's own progress there)."""
    return _log_tail(db_path, job_id, lines)


@dataclass
class RunStatus:
    run_id: str
    status: str  # starting, running, done, interrupted, failed
    done: int = 0
    total: int | None = None
    elapsed_s: float = 0.0
    remaining_s: float | None = None
    model_spec: str | None = None
    case_id: str | None = None
    partial_text: str = ""
    error: str | None = None
    # Models with failed generations once the run has finished: model_spec, failed, total, the most
    # common error, and the signal where its engine process died of one (SIGILL, SIGSEGV, ...).
    failures: list[dict] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "interrupted", "failed")


def _read_live(db_path: str, run_id: str) -> dict:
    try:
        return json.loads(live_path(db_path, run_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _alive(pid: int | None, run_id: str) -> bool:
    proc = _PROCS.get(run_id)
    if proc is not None:
        return proc.poll() is None
    if not pid:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie is dead, not yet reaped
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _log_tail(db_path: str, run_id: str, lines: int = 5) -> str:
    try:
        text = log_path(db_path, run_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def reap_stale(store: Store) -> list[str]:
    """Mark dead runs interrupted, with the reason; the ids marked."""
    marked = []
    for run in store.query("SELECT * FROM runs WHERE status = 'running'").to_dict("records"):
        why = stale_reason(run)
        if why:
            tail = _log_tail(store.path, run["run_id"], 3)
            store.finish_run(run["run_id"], "interrupted", why + (f": {tail}" if tail else ""))
            marked.append(run["run_id"])
    return marked


def run_status(store: Store, run_id: str) -> RunStatus:
    """Progress from the database; the answer being generated from the live file. A run
    whose owner process is gone (a crash, kill -9, a closed terminal) is marked interrupted."""
    live = _read_live(store.path, run_id)
    run = store.get_run(run_id)
    pid = live.get("pid") or (_PROCS[run_id].pid if run_id in _PROCS else None)
    if run_id in _PROCS and _PROCS[run_id].poll() is not None:
        _PROCS.pop(run_id)  # reaped: no zombie left under the dashboard
    if run is None:
        if _alive(pid, run_id):
            return RunStatus(run_id, "starting")
        return RunStatus(run_id, "failed", error=_log_tail(store.path, run_id) or "the worker did not start")
    if stale_reason(run):
        reap_stale(store)
        run = store.get_run(run_id)
    if run is None:
        return RunStatus(run_id, "failed", error=f"run {run_id} is no longer in {store.path}")
    done = store.query("SELECT count(*) AS n FROM generations WHERE run_id = ?", [run_id]).n[0]
    status = run["status"]
    total = run["planned_generations"]
    # a missing finish time reads back as NaT, which is not None
    end = run["finished_at"] if isinstance(run["finished_at"], datetime) and run["finished_at"] == run["finished_at"] \
        else None
    elapsed = ((end or utcnow()) - run["started_at"]).total_seconds()
    remaining = _remaining_s(store, run_id, total - done) if done and total and status == "running" else None
    return RunStatus(run_id, status, int(done), total, elapsed, remaining,
                     live.get("model_spec"), live.get("case_id"), live.get("text", ""),
                     run["error"] if isinstance(run["error"], str) else None,
                     model_failures(store, run_id) if status in ("done", "interrupted", "failed") else [])


_SIGNAL = re.compile(r"engine process died of (SIG[A-Z]+)")


def model_failures(store: Store, run_id: str) -> list[dict]:
    """Per model with failed generations: how many of its generations failed, the most common
    reason (cancelled ones left out), and the signal where its engine process died of one."""
    rows = store.query(
        "SELECT model_spec, count(*) FILTER (WHERE NOT ok AND coalesce(error, '') <> 'cancelled') AS failed, "
        "count(*) AS total, mode(error) FILTER (WHERE NOT ok AND coalesce(error, '') <> 'cancelled') AS error "
        "FROM generations WHERE run_id = ? GROUP BY model_spec ORDER BY model_spec", [run_id])
    out = []
    for r in rows.to_dict("records"):
        if not r["failed"]:
            continue
        error = r["error"] if isinstance(r["error"], str) else ""
        m = _SIGNAL.search(error)
        out.append({"model_spec": r["model_spec"], "failed": int(r["failed"]), "total": int(r["total"]),
                    "error": error, "signal": m.group(1) if m else None})
    return out


@dataclass
class SweepStatus(RunStatus):
    level: int | None = None  # the concurrency being measured


def sweep_status(store: Store, sweep_id: str) -> SweepStatus:
    """A load sweep's progress: requests done over the whole sweep (live file), the level
    being measured, the time left at the pace so far. A sweep whose process is gone while
    it reads as running is marked failed with the end of its log."""
    live = _read_live(store.path, sweep_id)
    pid = live.get("pid") or (_PROCS[sweep_id].pid if sweep_id in _PROCS else None)
    alive = _alive(pid, sweep_id)
    if sweep_id in _PROCS and _PROCS[sweep_id].poll() is not None:
        _PROCS.pop(sweep_id)
    row = store.query("SELECT * FROM sweeps WHERE sweep_id = ?", [sweep_id])
    if row.empty:
        if alive:
            return SweepStatus(sweep_id, "starting")
        return SweepStatus(sweep_id, "failed", error=_log_tail(store.path, sweep_id) or "the sweep did not start")
    sw = row.iloc[0]
    if sw.status == "running" and not alive:
        store.finish_sweep(sweep_id, "failed", "the sweep process is gone: " + _log_tail(store.path, sweep_id, 3))
        sw = store.query("SELECT * FROM sweeps WHERE sweep_id = ?", [sweep_id]).iloc[0]
    total = live.get("total") or json.loads(sw.config_json or "{}").get("planned_requests")
    done = int(live.get("done") or 0)
    end = sw.finished_at if isinstance(sw.finished_at, datetime) and sw.finished_at == sw.finished_at else None
    elapsed = ((end or utcnow()) - sw.started_at).total_seconds()
    remaining = elapsed / done * (total - done) if done and total and sw.status == "running" else None
    return SweepStatus(sweep_id, sw.status, done, total, elapsed, remaining, sw.model_spec,
                       error=sw.error if isinstance(sw.error, str) else None, level=live.get("level"))


def _remaining_s(store: Store, run_id: str, left: int) -> float | None:
    """Time still to go: each model's mean generation time so far (load, a one-off, left
    out) times its generations still to run, summed; the run's plan tells how many."""
    g = store.query("SELECT model_spec, count(*) AS n, avg(e2e_ms) AS e2e_ms FROM generations "
                    "WHERE run_id = ? GROUP BY model_spec", [run_id])
    if g.empty or left <= 0:
        return None
    per_gen_s = float((g.e2e_ms.fillna(0) * g.n).sum() / g.n.sum()) / 1000
    return per_gen_s * left


def cancel_run(store: Store, run_id: str) -> bool:
    """Ask the worker to stop after the current chunk; the run ends as interrupted."""
    pid = _read_live(store.path, run_id).get("pid")
    if not pid or not _alive(pid, run_id):
        return False
    os.kill(pid, signal.SIGTERM)
    return True


def reap_children() -> None:
    """Collect the exit status of finished workers started here, so none is left defunct."""
    for run_id, proc in list(_PROCS.items()):
        if proc.poll() is not None:
            _PROCS.pop(run_id, None)


def running_runs(store: Store) -> list[str]:
    """Runs in progress; dead ones are marked interrupted first (the same test everywhere)."""
    reap_children()
    reap_stale(store)
    df = store.query("SELECT run_id FROM runs WHERE status = 'running' ORDER BY started_at DESC")
    return df.run_id.tolist()


# --- before a run starts -------------------------------------------------------------

def default_ollama_host() -> str:
    """Where Ollama answers unless a spec says: the backend's own fact (engine.backends.ollama)."""
    from .backends.ollama import default_host

    return default_host()


def collect_specs(bundled: list[str], gguf_path: str = "", ollama_host: str = "",
                  ollama_tags: str = "", openai_url: str = "", openai_models: str = "",
                  extra: str = "") -> list[str]:
    """Model specs from the Run page's fields, in order, without duplicates."""
    specs = list(bundled)
    if gguf_path.strip():
        specs.append(f"llamacpp/{gguf_path.strip()}")
    host = ollama_host.strip().rstrip("/")
    for tag in filter(None, (x.strip() for x in ollama_tags.split(","))):
        specs.append(f"ollama/{tag}" + (f"@{host}" if host and host != default_ollama_host() else ""))
    url = openai_url.strip().rstrip("/")
    for model in filter(None, (x.strip() for x in openai_models.split(","))):
        specs.append(f"openai/{model}@{url}" if url else f"openai/{model}")
    specs += [line.strip() for line in extra.splitlines() if line.strip()]
    return list(dict.fromkeys(specs))


def check_reachable(url: str, timeout_s: float = 2.0) -> str | None:
    """None when something answers HTTP at url (any status, a redirect included, which is
    not followed), else why not; connections under the same address policy as a run's."""
    import httpx

    from .backends import http

    try:
        with http.client(url, timeout=timeout_s, follow_redirects=False) as c:
            c.get(url)
    except http.Refused as exc:
        return f"refused: {exc}"
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return f"{url} is unreachable: {exc}"
    return None


def preflight(specs: list[str], case_ids: list[str] | None = None) -> list[str]:
    """Problems to fix before starting: no models or cases, unknown or missing models,
    servers that do not answer. Empty when the run can start."""
    from .backends import BackendError, backend_class, is_served, parse_spec, resolve

    problems = []
    if not specs:
        problems.append("choose at least one model")
    if case_ids is not None and not case_ids:
        problems.append("choose at least one case")
    for spec in specs:
        try:
            resolve(spec)
        except BackendError as exc:
            problems.append(str(exc))
            continue
        parsed = parse_spec(spec)
        if is_served(spec):
            cls = backend_class(parsed.backend)
            url = parsed.host or getattr(cls, "default_host", lambda: None)()
            why = check_reachable(url) if url else f"{spec}: give the server URL as {spec}@http://host:port/v1"
            if why:
                problems.append(f"{spec}: {why}")
    return problems


def preflight_sweep(spec: str) -> list[str]:
    """Problems before a load sweep: it needs one model served over HTTP, reachable."""
    from .backends import BackendError, is_served, parse_spec

    if not spec:
        return ["give the served model to sweep, e.g. openai/<model>@http://host:port/v1 or ollama/<tag>"]
    try:
        backend = parse_spec(spec).backend
        served = is_served(spec)
    except BackendError as exc:
        return [str(exc)]
    if not served:
        return [f"{spec}: a load sweep needs a model served over HTTP (ollama/ or openai/), "
                f"not an in-process {backend}/ model"]
    return preflight([spec])
