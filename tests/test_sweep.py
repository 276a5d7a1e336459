"""Load sweep against the real llama-cpp-python server and the Ollama-protocol server."""
import subprocess
import sys

import pytest

from engine.backends import BackendError
from engine.scenarios import load_scenario
from engine.sweep import SweepConfig, parse_levels, parse_slo, run_sweep, sweep_levels
from tests.conftest import ROOT
from tests.fakeservers import FakeServer, OllamaHandler, OpenAIHandler, one_at_a_time
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


SerialOllama = one_at_a_time(OllamaHandler)


def test_open_loop_rates_are_seeded_recorded_and_a_saturated_level_is_marked(store):
    from engine.sweep import parse_rates

    sc = load_scenario("standard")
    with FakeServer(OllamaHandler, delay_s=0.002) as srv:  # answers in a few ms: 4/s is easy
        calm = run_sweep(store, SweepConfig(f"ollama/llama3:8b-instruct@{srv.url}", sc, [], requests=12,
                                            max_tokens=5, rates=[4.0], warmup=1, seed=7))
    with FakeServer(SerialOllama, delay_s=0.02) as srv:  # one at a time, ~0.2 s each: 40/s cannot be kept up
        busy = run_sweep(store, SweepConfig(f"ollama/llama3:8b-instruct@{srv.url}", sc, [], requests=120,
                                            max_tokens=10, rates=[40.0], seed=7))
    c = sweep_levels(store, calm).iloc[0]
    assert c.rate_per_s == 4.0 and not c.saturated and c.ok_requests == 12 and c.arrival_seed == 7
    b = sweep_levels(store, busy).iloc[0]
    # arrivals over 3 s, a queue built within the first 1.5: it stopped sending well before the end
    assert b.saturated and b.ok_requests < 120 and b.concurrency > 3
    raw = store.query("SELECT error FROM sweep_requests WHERE sweep_id = ?", [busy])
    assert raw.error.fillna("").str.contains("saturated at this rate").sum() == 120 - len(raw[raw.error.isna()]) \
        - raw.error.fillna("").str.contains("cancelled").sum()
    # a short level, every arrival sent before six requests had finished: judged afterwards, in sending order
    with FakeServer(SerialOllama, delay_s=0.02) as srv:
        short = run_sweep(store, SweepConfig(f"ollama/llama3:8b-instruct@{srv.url}", sc, [], requests=12,
                                             max_tokens=10, rates=[40.0], seed=7))
    s = sweep_levels(store, short).iloc[0]
    assert s.saturated and s.ok_requests == 12
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


def _search(capacity: float, start: float, integer: bool, max_levels: int = 30):
    """The levels a search measures against a server that meets the SLOs up to `capacity`."""
    from engine.sweep import highest_met, next_probe

    measured: dict[float, bool] = {}
    while (x := next_probe(measured, start, integer, max_levels)) is not None:
        assert x not in measured  # never measures a level twice
        measured[x] = x <= capacity
    return list(measured), highest_met(measured)


def test_the_search_doubles_then_bisects_to_the_highest_level_meeting_the_slos():
    from engine.sweep import MIN_RATE, RATE_RESOLUTION

    assert _search(5.3, 1.0, False) == ([1, 2, 4, 8, 6, 5, 5.5], 5)
    assert _search(6, 1, True) == ([1, 2, 4, 8, 6, 7], 6)  # concurrency: to the next integer
    assert _search(7, 1, True) == ([1, 2, 4, 8, 6, 7], 7)
    for capacity in (0.05, 0.3, 0.9, 3.7, 40, 900, 9000):  # from above, from below: within the resolution
        levels, found = _search(capacity, 1.0, False)
        assert found <= capacity and found * (1 + RATE_RESOLUTION) > capacity, (capacity, levels)
    levels, found = _search(0.001, 1.0, False)  # nothing meets the SLOs: it halves down to the floor
    assert found is None and min(levels) >= MIN_RATE and min(levels) / 2 < MIN_RATE
    assert _search(1e9, 1.0, False, max_levels=3) == ([1, 2, 4], 4)  # at most max_levels levels


SerialOpenAI = one_at_a_time(OpenAIHandler)


def test_find_max_measures_its_search_marks_the_rate_found_and_the_cost_table_uses_it(store):
    from engine import RunConfig, Runner
    from engine.recommend import CostInputs, recommend
    from engine.sweep import next_probe

    sc = load_scenario("standard")
    # one request at a time, each at least 0.2 s (10 chunks 20 ms apart, slept, however fast the machine):
    # 8 requests arriving faster than 5/s queue, and at 64/s the last waits over a second
    with FakeServer(SerialOpenAI, delay_s=0.02) as srv:
        spec = f"openai/echo@{srv.url}/v1"
        sid = run_sweep(store, SweepConfig(spec, sc, [], requests=8, max_tokens=10, rates=[2.0], seed=3,
                                           slo={"ttft_ms": 1000.0}, find_max=True, max_levels=7))
        Runner(store).run(RunConfig(sc, [spec], case_ids=["knowledge-en", "coding-en"], max_tokens=5))
    levels = store.query("SELECT * FROM sweep_levels WHERE sweep_id = ? ORDER BY search_step", [sid])
    measured: dict[float, bool] = {}
    for level in levels.itertuples():  # each level is the one the search asked for, given what came before
        assert level.rate_per_s == next_probe(measured, 2.0, False, 7)
        measured[level.rate_per_s] = bool(level.meets_slo)
    assert next_probe(measured, 2.0, False, 7) is None  # it stopped where it should
    assert not all(measured.values())  # one slot cannot keep 8 requests within a second at every rate
    found = levels[levels.is_max.fillna(False).astype(bool)]
    assert len(found) == 1 and found.rate_per_s.iloc[0] == max(x for x, ok in measured.items() if ok)
    best = float(found.rate_per_s.iloc[0])
    assert store.query("SELECT max_rate_per_s FROM sweeps WHERE sweep_id = ?", [sid]).max_rate_per_s[0] == best
    # the capacity holds on the machine the sweep ran on: as if that was an A10G
    with store.connect() as con:
        con.execute("UPDATE sweeps SET host_json = ? WHERE sweep_id = ?",
                    ['{"gpus": [{"name": "NVIDIA A10G", "memory_total_mb": 23028}]}', sid])
    row = recommend(store, "standard", cost_inputs=CostInputs(gpu="A10G")).cost.set_index("model_spec").loc[spec]
    assert row.capacity_source == f"sweep max rate={best:g}" and row.capacity_req_per_s == best
    assert f"{best:g} requests/s, the highest arrival rate" in row.notes and "ttft_ms ≤ 1000" in row.notes
    on_l4 = recommend(store, "standard", cost_inputs=CostInputs(gpu="L4")).cost.set_index("model_spec").loc[spec]
    assert on_l4.capacity_source == "estimated"  # not measured there


@pytest.mark.parametrize("args, message", [
    (["--find-max", "--rate", "1"], "--find-max: needs SLOs to meet"),
    (["--find-max", "--slo", "ttft_ms=800", "--rate", "1,2"], "--find-max: starts from one rate or level"),
    (["--find-max", "--slo", "ttft_ms=800", "--rate", "1", "--concurrency", "2"],
     "--find-max: searches rates or concurrency levels, not both"),
    (["--find-max", "--slo", "ttft_ms=800", "--slo-share", "0.2"], "argument --slo-share: must be at least 0.5"),
])
def test_a_search_it_cannot_do_exits_2_before_anything_runs(cli_env, tmp_path, args, message):
    db = tmp_path / "s.duckdb"
    res = subprocess.run([sys.executable, "-m", "engine", "sweep", "--model", "openai/m@http://127.0.0.1:9/v1",
                          "--scenario", "standard", "--db", str(db), *args],
                         cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and message in res.stderr and not db.exists(), res.stderr


def test_a_level_sent_from_several_client_processes_reads_as_one(store):
    """Closed and open levels from 2 client processes: every request once, the level's concurrency, its
    progress counted in this process, the prompts as one process would send them, the server seeing
    up to the level's concurrency at once."""
    import threading

    seen = []
    with FakeServer(OpenAIHandler, delay_s=0.01) as srv:
        spec = f"openai/echo@{srv.url}/v1"
        sid = run_sweep(store, SweepConfig(spec, load_scenario("standard"), [4], requests=12, max_tokens=6,
                                           rates=[20.0], clients=2), on_request=lambda *a: seen.append(a))
        two = [b["messages"][0]["content"].split("] ", 1)[1] for _, b in srv.httpd.requests]
        run_sweep(store, SweepConfig(spec, load_scenario("standard"), [4], requests=12, max_tokens=6,
                                     rates=[20.0], clients=1))
        one = [b["messages"][0]["content"].split("] ", 1)[1] for _, b in srv.httpd.requests][len(two):]
    lv = sweep_levels(store, sid)
    assert lv.concurrency.tolist()[0] == 4 and lv.requests.tolist() == [12, 12] and (lv.ok_requests == 12).all()
    assert sorted(two) == sorted(one)  # the same requests, whichever process sent each
    assert [d for _, d, _ in seen] == list(range(1, 25)) and {t for _, _, t in seen} == {24}
    raw = store.query("SELECT started_at, ok, request_id FROM sweep_requests WHERE sweep_id = ? AND rate_per_s "
                      "IS NULL ORDER BY request_index", [sid])
    assert raw.ok.all() and raw.started_at.is_monotonic_increasing and raw.request_id.notna().all()
    assert '"clients": 2' in store.query("SELECT config_json FROM sweeps WHERE sweep_id = ?", [sid]).config_json[0]
    assert threading.active_count() < 20  # the client processes' readers are gone with the sweep


def test_a_saturated_server_stops_every_client_process(store):
    sc = load_scenario("standard")
    with FakeServer(SerialOllama, delay_s=0.02) as srv:  # one at a time, ~0.2 s each: 40/s cannot be kept up
        busy = run_sweep(store, SweepConfig(f"ollama/llama3:8b-instruct@{srv.url}", sc, [], requests=120,
                                            max_tokens=10, rates=[40.0], seed=7, clients=2))
    b = sweep_levels(store, busy).iloc[0]
    raw = store.query("SELECT error FROM sweep_requests WHERE sweep_id = ?", [busy])
    stopped = raw.error.fillna("").str.contains("saturated at this rate")
    # the requests each process did not send are counted as not sent, in both processes' shares
    assert b.saturated and b.concurrency > 3 and stopped.sum() > 20 and len(raw) == 120


def test_a_sweep_cancelled_while_client_processes_send_stops_them(store):
    import threading

    cancel = threading.Event()

    def progress(level, done, total):
        if done == 3:
            cancel.set()

    with FakeServer(OpenAIHandler, delay_s=0.01) as srv:
        sid = run_sweep(store, SweepConfig(f"openai/echo@{srv.url}/v1", load_scenario("standard"), [2, 4],
                                           requests=40, max_tokens=20, clients=2), on_request=progress, cancel=cancel)
        sent = len(srv.httpd.requests)
    assert sweep_levels(store, sid).empty and sent < 40  # nothing stored, and the rest never sent
    assert store.query("SELECT status FROM sweeps").status[0] == "interrupted"


def test_clients_default_to_one_per_32_streams_and_a_bad_count_is_refused(cli_env, tmp_path):
    from engine.loadgen import clients_for

    assert [clients_for(s, cpus=8) for s in (1, 31, 32, 64, 100, 10_000)] == [1, 1, 1, 2, 3, 8]
    assert clients_for(64, cpus=1) == 1
    res = subprocess.run([sys.executable, "-m", "engine", "sweep", "--model", "openai/m@http://127.0.0.1:9/v1",
                          "--scenario", "standard", "--clients", "0", "--db", str(tmp_path / "s.duckdb")],
                         cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--clients" in res.stderr and not (tmp_path / "s.duckdb").exists()


def test_a_server_s_inflated_token_count_is_not_taken_in_a_sweep_either(store):
    """As in a run: a usage of 2,147,483,646 tokens for a few chunks is not used; the stream's count is."""
    with FakeServer(OpenAIHandler, delay_s=0.0) as srv:
        sc = load_scenario("standard")
        liar = run_sweep(store, SweepConfig(f"openai/inflated@{srv.url}/v1", sc, [2], requests=4, max_tokens=10))
        honest = run_sweep(store, SweepConfig(f"openai/echo@{srv.url}/v1", sc, [2], requests=4, max_tokens=10))
    rows = {sid: store.query("SELECT * FROM sweep_requests WHERE sweep_id = ?", [sid]) for sid in (liar, honest)}
    assert (rows[liar].output_tokens == rows[honest].output_tokens).all() and (rows[liar].output_tokens < 20).all()
    assert (rows[liar].tokens_source == "stream").all() and (rows[honest].tokens_source == "engine").all()
    lv = sweep_levels(store, liar)
    assert lv.output_tok_per_s.iloc[0] < 10 * sweep_levels(store, honest).output_tok_per_s.iloc[0]


def test_a_level_slower_than_a_lower_concurrency_is_said_to_be_the_host_saturating():
    import pandas as pd

    from engine.sweep import saturated_from

    levels = pd.DataFrame({"concurrency": [1, 2, 4], "rate_per_s": [None, None, None],
                           "output_tok_per_s": [60.0, 48.0, 70.0]})
    assert saturated_from(levels) == (2, 1)  # a llama-server sweep on a loaded machine: c=2 below c=1
    rising = levels.assign(output_tok_per_s=[60.0, 110.0, 180.0])
    assert saturated_from(rising) is None
    assert saturated_from(levels.assign(output_tok_per_s=[60.0, 58.0, 59.0])) is None  # within 5%: noise
