"""Load sweep against the real llama-cpp-python server and the Ollama-protocol server."""
import subprocess
import sys

import pytest

from engine.backends import BackendError
from engine.scenarios import load_scenario
from engine.sweep import SweepConfig, parse_levels, parse_slo, run_sweep, sweep_levels
from tests.conftest import ROOT
from tests.fakeservers import FakeServer, OllamaHandler, OpenAIHandler
from tests.test_openai_compat import llama_server  # noqa: F401  (module fixture)


def test_sweep_against_a_real_openai_compatible_server(llama_server, store):  # noqa: F811
    sid = run_sweep(store, SweepConfig(f"openai/smollm2@{llama_server}", load_scenario("standard"),
                                       concurrency=[1, 2], requests=3, max_tokens=8))
    levels = sweep_levels(store, sid)
    assert levels.concurrency.tolist() == [1, 2]
    raw = store.query("SELECT * FROM sweep_requests WHERE sweep_id = ?", [sid])
    assert (levels.ok_requests == 3).all() and (levels.errors == 0).all(), raw.error.tolist()
    assert (levels.output_tok_per_s > 0).all() and (levels.ttft_ms_p99 >= levels.ttft_ms_p50).all()
    raw = store.query("SELECT * FROM sweep_requests WHERE sweep_id = ?", [sid])
    assert len(raw) == 6 and raw.ok.all()
    assert store.query("SELECT status FROM sweeps").status[0] == "done"


def test_goodput_counts_only_requests_within_the_slo(store):
    with FakeServer(OllamaHandler, delay_s=0.005) as srv:
        spec = f"ollama/llama3:8b-instruct@{srv.url}"
        sc = load_scenario("standard")
        loose = run_sweep(store, SweepConfig(spec, sc, [1, 4], requests=8, max_tokens=10,
                                             slo={"ttft_ms": 10_000, "e2e_ms": 10_000}))
        strict = run_sweep(store, SweepConfig(spec, sc, [4], requests=8, max_tokens=10, slo={"e2e_ms": 1}))
    lv = sweep_levels(store, loose)
    assert lv.goodput_req_per_s.tolist() == pytest.approx(lv.req_per_s.tolist())
    assert (lv.itl_ms_p50 > 0).all() and lv.itl_ms_p95.notna().all()
    assert sweep_levels(store, strict).goodput_req_per_s[0] == 0


def test_errors_are_counted_and_the_sweep_goes_on(store):
    with FakeServer(OpenAIHandler) as srv:
        sid = run_sweep(store, SweepConfig(f"openai/fault-error-mid@{srv.url}/v1", load_scenario("standard"),
                                           [1, 2], requests=2, max_tokens=10))
    lv = sweep_levels(store, sid)
    assert (lv.errors == 2).all() and (lv.ok_requests == 0).all()
    raw = store.query("SELECT error FROM sweep_requests WHERE sweep_id = ?", [sid])
    assert raw.error.str.contains("the engine died").all()


def test_bad_sweep_input():
    with pytest.raises(ValueError, match="--slo: 'latency=3'"):
        parse_slo("latency=3")
    with pytest.raises(ValueError, match="not a number"):
        parse_slo("ttft_ms=fast")
    with pytest.raises(ValueError, match="--concurrency"):
        parse_levels("1,two")
    assert parse_slo("ttft_ms=500, e2e_ms=5000") == {"ttft_ms": 500, "e2e_ms": 5000}


def test_in_process_models_cannot_be_swept(store):
    with pytest.raises(BackendError, match="needs an HTTP backend"):
        run_sweep(store, SweepConfig("fake/echo", load_scenario("standard"), [1]))


def test_sweep_command_line(cli_env, tmp_path):
    with FakeServer(OpenAIHandler) as srv:
        res = subprocess.run([sys.executable, "-m", "engine", "sweep", "--model", f"openai/echo@{srv.url}/v1",
                              "--scenario", "standard", "--concurrency", "1,3", "--requests", "3",
                              "--slo", "ttft_ms=5000", "--db", str(tmp_path / "s.duckdb")],
                             cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "c=1: 3/3 ok" in res.stderr and "c=3: 3/3 ok" in res.stderr
    bad = subprocess.run([sys.executable, "-m", "engine", "sweep", "--model", "openai/echo@http://127.0.0.1:9/v1",
                          "--scenario", "standard", "--db", str(tmp_path / "s.duckdb")],
                         cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot connect" in bad.stderr


def test_a_cancelled_sweep_keeps_its_finished_levels_and_reports_progress(store):
    import threading

    cancel = threading.Event()
    seen = []

    def progress(level, done, total):
        seen.append((level, done, total))
        if level == 2 and done == 5:  # the second level's first request: stop there
            cancel.set()

    with FakeServer(OpenAIHandler, delay_s=0.002) as srv:
        sid = run_sweep(store, SweepConfig(f"openai/echo@{srv.url}/v1", load_scenario("standard"), [1, 2, 4],
                                           requests=4, max_tokens=6), on_request=progress, cancel=cancel)
    assert [d for _, d, _ in seen[:5]] == [1, 2, 3, 4, 5] and {t for _, _, t in seen} == {12}
    assert sweep_levels(store, sid).concurrency.tolist() == [1]  # the level cut short is not a measurement
    row = store.query("SELECT status, config_json FROM sweeps").iloc[0]
    assert row.status == "interrupted" and '"planned_requests": 12' in row.config_json


def test_sweep_requests_are_unique_unless_warm(store):
    with FakeServer(OpenAIHandler) as srv:
        spec = f"openai/cacher@{srv.url}/v1"
        run_sweep(store, SweepConfig(spec, load_scenario("standard"), [2], requests=4, max_tokens=4))
        cold = [b["messages"][0]["content"] for _, b in srv.httpd.requests]
        run_sweep(store, SweepConfig(spec, load_scenario("standard"), [2], requests=4, max_tokens=4, cache_mode="warm"))
        warm = [b["messages"][0]["content"] for _, b in srv.httpd.requests][len(cold):]
    assert len(set(cold)) == 4 and all(c.startswith("[") for c in cold)  # each with its own marker
    assert sorted(c.split("] ", 1)[1] for c in cold) == sorted(warm)  # else the same prompts
    assert not any(w.startswith("[") for w in warm)


class SerialOllama(OllamaHandler):
    """A server that answers one request at a time: past its capacity a queue builds and TTFT climbs."""
    import threading

    lock = threading.Lock()

    def do_POST(self):
        with self.lock:
            super().do_POST()


def test_open_loop_rates_are_seeded_recorded_and_a_saturated_level_is_marked(store):
    from engine.sweep import parse_rates

    sc = load_scenario("standard")
    with FakeServer(OllamaHandler, delay_s=0.002) as srv:  # answers in a few ms: 4/s is easy
        calm = run_sweep(store, SweepConfig(f"ollama/llama3:8b-instruct@{srv.url}", sc, [], requests=12,
                                            max_tokens=5, rates=[4.0], warmup=1, seed=7))
    with FakeServer(SerialOllama, delay_s=0.02) as srv:  # one at a time, ~0.2 s each: 40/s cannot be kept up
        busy = run_sweep(store, SweepConfig(f"ollama/llama3:8b-instruct@{srv.url}", sc, [], requests=60,
                                            max_tokens=10, rates=[40.0], seed=7))
    c = sweep_levels(store, calm).iloc[0]
    assert c.rate_per_s == 4.0 and not c.saturated and c.ok_requests == 12 and c.arrival_seed == 7
    b = sweep_levels(store, busy).iloc[0]
    assert b.saturated and b.ok_requests < 60 and b.concurrency > 3  # a queue had built when it stopped
    raw = store.query("SELECT error FROM sweep_requests WHERE sweep_id = ?", [busy])
    assert raw.error.fillna("").str.contains("saturated at this rate").sum() == 60 - len(raw[raw.error.isna()]) \
        - raw.error.fillna("").str.contains("cancelled").sum()
    with pytest.raises(ValueError, match="--rate: 0 must be above 0"):
        parse_rates("0")
    with pytest.raises(ValueError, match="--rate: 'fast' is not a number"):
        parse_rates("1,fast")
    with pytest.raises(ValueError, match="must be above 0"):
        parse_rates("-2")


def test_a_bad_rate_exits_2_before_anything_runs(cli_env, tmp_path):
    db = tmp_path / "s.duckdb"
    res = subprocess.run([sys.executable, "-m", "engine", "sweep", "--model", "openai/m@http://127.0.0.1:9/v1",
                          "--scenario", "standard", "--rate", "0,1", "--db", str(db)],
                         cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--rate: 0 must be above 0" in res.stderr and not db.exists()
