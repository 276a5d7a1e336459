import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A label the code asks for and engine/i18n.py lacks is an error under the tests (and in the dashboard
# servers and command lines they start), not its key shown to the user.
os.environ["MODELPICK_STRICT_LABELS"] = "1"


@pytest.fixture
def shipped_scenarios(tmp_path, monkeypatch):
    """The app as a page test drives it: a copy of the shipped scenarios, run from the
    checkout, Streamlit's cached store cleared before and after."""
    import shutil

    import streamlit as st

    scen = tmp_path / "scenarios"
    shutil.copytree(ROOT / "scenarios", scen)
    monkeypatch.setenv("MODELPICK_SCENARIOS_DIR", str(scen))
    monkeypatch.chdir(ROOT)
    st.cache_resource.clear()
    yield scen
    st.cache_resource.clear()


def require(present: bool, what: str, command: str) -> None:
    """Skip, naming the command that enables the test, where a system part is missing; fail on CI,
    where `make test` installs it (CI must not skip what it claims to test)."""
    if present:
        return
    message = f"{what} is not installed: `{command}` enables this test (`make test` runs it when root)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must have it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def _bandwidth_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bandwidth") / "bandwidth.json"


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch, _bandwidth_cache):
    """No test writes to the user's results.duckdb, scenarios folder or bandwidth cache (the
    machine's bandwidth is measured once per test session)."""
    import engine.bound

    monkeypatch.setenv("MODELPICK_DB", str(tmp_path / "test.duckdb"))
    monkeypatch.setenv("MODELPICK_USER_SCENARIOS_DIR", str(tmp_path / "user-scenarios"))
    monkeypatch.setenv("MODELPICK_BANDWIDTH_CACHE", str(_bandwidth_cache))
    monkeypatch.setattr(engine.bound, "CACHE", _bandwidth_cache)
    from engine.backends import fake

    fake.clear()
    yield


def host_load(monkeypatch, others_pct: float) -> None:
    """The runner's load monitor fed with injected samples: other processes take others_pct of the
    CPU, whatever this machine is doing."""
    from engine import runner
    from engine.hostinfo import LoadMonitor

    monkeypatch.setattr(runner, "LoadMonitor", lambda: LoadMonitor(interval_s=0.01, probe=lambda: (others_pct, 1.5)))


@pytest.fixture(autouse=True)
def _quiet_host(request, monkeypatch):
    """Runs made in the test process see a quiet host, so no verdict a test asserts depends on how
    busy this machine is (a busy CI machine rightly flags its runs, and their timings then leave the
    verdict). Tests of the busy-host logic inject their own samples with host_load(); a test marked
    `real_host_load` measures this machine's load as a run does."""
    if not request.node.get_closest_marker("real_host_load"):
        host_load(monkeypatch, 3.0)


@pytest.fixture
def store(tmp_path):
    from engine.store import Store

    return Store(tmp_path / "test.duckdb")


@pytest.fixture(scope="session")
def smollm2_path():
    from engine.catalog import bundled_path

    return bundled_path("smollm2-135m")


@pytest.fixture
def cli_env(tmp_path):
    env = dict(os.environ)
    env["MODELPICK_DB"] = str(tmp_path / "cli.duckdb")
    env["PYTHONPATH"] = str(ROOT)
    return env


def collect(backend, messages, **params):
    """(answer text, reasoning text, the final EngineReport) of one streamed generation."""
    from engine.backends import EngineReport, GenParams, Reasoning

    chunks, reasoning, reports = [], [], []
    for item in backend.stream(messages, GenParams(**params)):
        if isinstance(item, EngineReport):
            reports.append(item)
        elif isinstance(item, Reasoning):
            reasoning.append(item.text)
        else:
            chunks.append(item)
    assert len(reports) == 1, "a stream ends with exactly one EngineReport"
    return "".join(chunks), "".join(reasoning), reports[0]


def hold_file(path, seconds: float):
    """Another program that opens the DuckDB file (retrying while this process still has it open, as
    a careful program does) and keeps it `seconds`; returns once it holds it. The process is returned."""
    import subprocess

    script = ("import duckdb, sys, time\n"
              "end = time.monotonic() + 30\n"
              "while True:\n"
              "    try:\n"
              "        c = duckdb.connect(sys.argv[1])\n"
              "        break\n"
              "    except duckdb.IOException:\n"
              "        if time.monotonic() > end:\n"
              "            raise\n"
              "        time.sleep(0.02)\n"
              "print('held', flush=True)\n"
              "time.sleep(float(sys.argv[2]))\n"
              "c.close()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> int:
    """The first of `n` neighbouring free loopback ports."""
    import socket

    while True:
        base, socks = free_port(), []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()


def make_run(store, scenario_id: str, figures: dict, *, load_ms=None, rss_mb=None, vram_mb=None,
             n_ctx: int = 4096, host: dict | None = None, category=lambda case: "knowledge",
             text=lambda model, case: f"{model} answer to {case}") -> str:
    """A run written straight into the store with known figures:
    figures = {model: {case_id: [(score, ttft_ms, e2e_ms, decode_tok_per_s), ...one per repeat]}}."""
    from datetime import datetime

    models = list(figures)
    run_id = store.create_run(scenario_id, {"models": models, "backend_options": {"n_ctx": n_ctx}},
                              host or {"gpus": []}, 0)
    with store.held():  # one connection for all its rows: opening the file costs about 30 ms
        for m in models:
            first = True
            for case_id, repeats in figures[m].items():
                for r, (score, ttft, e2e, decode) in enumerate(repeats):
                    store.add_generation({
                        "run_id": run_id, "model_spec": m, "case_id": case_id, "category": category(case_id),
                        "repeat": r, "turn": 0, "ok": True, "output_text": text(m, case_id),
                        "load_ms": (load_ms or {}).get(m) if first else None, "ttft_ms": ttft, "e2e_ms": e2e,
                        "decode_tok_per_s": decode, "output_tokens": 50, "rss_mb": (rss_mb or {}).get(m),
                        "vram_mb": (vram_mb or {}).get(m), "started_at": datetime(2026, 1, 1)},
                        [{"run_id": run_id, "model_spec": m, "case_id": case_id, "repeat": r, "turn": 0,
                          "check_type": "contains", "passed": score >= 0.5, "score": score, "weight": 1.0,
                          "detail": ""}])
                    first = False
    store.finish_run(run_id, "done")
    return run_id


def write_scenario(folder, scenario_id: str, n_cases: int, weights: dict, word: str = "yes") -> None:
    """A scenario of `n_cases` cases, each passed by an answer containing `word`."""
    import yaml

    data = {"id": scenario_id, "name": scenario_id, "description": "test scenario", "weights": weights,
            "defaults": {"max_tokens": 16, "temperature": 0.0, "seed": 1},
            "cases": [{"id": f"c{i:02d}", "category": "knowledge", "lang": "en", "prompt": f"Question {i}?",
                       "checks": [{"type": "contains", "value": [word]}]} for i in range(n_cases)]}
    (Path(folder) / f"{scenario_id}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


@contextmanager
def serve_process(cmd: list[str], ready_url: str, name: str, log_dir):
    """A server process started with `cmd` (its output to a log file: a pipe would fill and block it),
    ready once `ready_url` answers 200 (fails with the log's end if it exits or takes over 120 s);
    terminated afterwards."""
    import subprocess
    import time

    import httpx

    log = open(Path(log_dir) / "server.log", "w+")  # noqa: SIM115 (open while the server runs)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"{name} exited: " + log.read()[-2000:])
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail(f"{name} did not start in 120 s")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def serve_gguf(model_path, alias: str, log_dir, *extra: str):
    """llama-cpp-python's real OpenAI-compatible server on a free loopback port; yields its /v1 URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
           # by default it drops a running stream when a new request arrives; queue them instead
           "--interrupt_requests", "False", *extra]
    with serve_process(cmd, f"{url}/models", "llama_cpp.server", log_dir):
        yield url
