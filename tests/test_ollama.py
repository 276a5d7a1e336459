"""The Ollama backend against a loopback server speaking Ollama's protocol, and live
against OLLAMA_HOST when one answers."""
import os

import pytest

from engine.backends import BackendError, resolve
from engine.backends.ollama import installed_models
from engine.runner import RunConfig, Runner
from engine.scenarios import load_scenario
from engine.worker import check_reachable
from tests.conftest import collect as _collect
from tests.fakeservers import FakeServer, OllamaHandler


def collect(backend, messages=None, **params):
    return _collect(backend, messages or Q, **params)


Q = [{"role": "user", "content": "What are Newton's three laws?"}]


@pytest.fixture
def ollama_server():
    with FakeServer(OllamaHandler) as srv:
        yield srv




def test_stream_reports_ollamas_own_nanosecond_figures_in_ms(ollama_server):
    b = resolve(f"ollama/llama3:8b-instruct@{ollama_server.url}")
    b.load()
    text, reasoning, report = collect(b, max_tokens=100)
    assert text.startswith("Newton's first law") and reasoning == ""
    assert report.output_tokens == report.engine_decode_tokens == len(text.split())
    assert 0 < report.engine_decode_ms < 10_000  # ns converted to ms, not left in ns
    assert report.prompt_tokens == 5 and report.finish_reason == "stop"
    assert report.extra["total_ms"] >= report.engine_decode_ms
    # options reach the server under Ollama's names
    path, body = ollama_server.httpd.requests[-1]
    assert path == "/api/chat" and body["options"]["num_predict"] == 100 and body["stream"] is True


def test_cold_load_unloads_first_then_times_the_load(ollama_server):
    b = resolve(f"ollama/llama3:8b-instruct@{ollama_server.url}")
    b.load()
    b.load()  # a second load is cold again: the model was unloaded first
    gens = [body for path, body in ollama_server.httpd.requests if path == "/api/generate"]
    assert [g.get("keep_alive") for g in gens] == [0, "10m", 0, "10m"]
    assert b.engine_load_ms == pytest.approx(50, abs=5)  # the server's load_duration, in ms


def test_gpu_memory_comes_from_api_ps(ollama_server):
    b = resolve(f"ollama/llama3:8b-instruct@{ollama_server.url}")
    b.load()
    mem = b.memory_mb()
    assert mem["vram_mb"] == pytest.approx(5e9 / 2**20)
    assert mem["rss_mb"] == pytest.approx(1e9 / 2**20)


def test_installed_models_for_the_run_page(ollama_server):
    assert installed_models(ollama_server.url) == ["caller", "gpt-oss:20b", "llama3:8b-instruct"]
    with pytest.raises(BackendError, match="cannot connect"):
        installed_models("http://127.0.0.1:9")


def test_thinking_is_kept_apart_and_first_answer_time_recorded(ollama_server, store):
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [f"ollama/gpt-oss:20b@{ollama_server.url}"],
                                         case_ids=["knowledge-en"]))
    g = store.generations(run_id).iloc[0]
    assert g.ok and g.reasoning_text == "The user asks about Newton."
    assert "user asks" not in g.output_text
    assert g.ttft_ms > g.first_token_ms > 0  # TTFT waits for the answer, not the thinking
    assert g.load_ms > 0 and g.engine_load_ms == pytest.approx(50, abs=5)
    assert g.vram_mb > 0 and g.tokens_source == "engine"
    assert len(g.chunk_gaps_ms) > 3


def test_raw_completion_uses_api_generate(ollama_server):
    b = resolve(f"ollama/llama3:8b-instruct@{ollama_server.url}")
    text, _, report = collect(b, mode="completion", max_tokens=4)
    path, body = ollama_server.httpd.requests[-1]
    assert path == "/api/generate" and body["raw"] is True and body["prompt"] == Q[0]["content"]
    assert report.output_tokens == 4 and report.finish_reason == "length"


@pytest.mark.parametrize("tag,message", [
    ("missing:1b", "model not found on .* \\(ollama pull missing:1b\\)"),
    ("fault:500", "HTTP 500 .*llama runner process has terminated"),
    ("fault:error-mid", "error in stream .*out of memory"),
    ("fault:malformed", "malformed JSON line"),
    ("fault:stall", "sent nothing for 1 s \\(timeout\\)"),
    ("fault:no-final", "ended without its final chunk"),
])
def test_faults_are_clear_errors(ollama_server, tag, message):
    b = resolve(f"ollama/{tag}@{ollama_server.url}", timeout_s=1)
    with pytest.raises(BackendError, match=message):
        collect(b)


def test_connection_refused_is_a_clear_error():
    with pytest.raises(BackendError, match="cannot connect to http://127.0.0.1:9"):
        resolve("ollama/llama3:8b@http://127.0.0.1:9").load()


def test_faults_become_rows_and_the_run_goes_on_keeping_what_arrived(ollama_server, store):
    url = ollama_server.url
    specs = [f"ollama/{t}@{url}" for t in ("llama3:8b-instruct", "fault:error-mid", "fault:no-final", "missing:1b")]
    # without the warm-up every case meets the fault (with it, see the fail-fast test)
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), specs, case_ids=["knowledge-en", "coding-en"],
                                         backend_options={"timeout_s": 2}, warmup=False))
    g = store.generations(run_id).set_index(["model_spec", "case_id"])
    assert store.get_run(run_id)["status"] == "done"
    assert g.loc[(specs[0], "knowledge-en")].ok
    mid = g.loc[(specs[1], "knowledge-en")]
    assert not mid.ok and "out of memory" in mid.error and mid.output_text == "Newton's first"
    assert mid.ttft_ms > 0
    assert "final chunk" in g.loc[(specs[2], "coding-en")].error
    assert "load failed" in g.loc[(specs[3], "knowledge-en")].error


def test_a_model_failing_its_warm_up_fails_its_cases_at_once_with_the_reason(ollama_server, store):
    spec = f"ollama/fault:error-mid@{ollama_server.url}"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [spec], case_ids=["knowledge-en", "coding-en"],
                                         backend_options={"timeout_s": 2}))
    g = store.generations(run_id)
    assert len(g) == 2 and not g.ok.any()
    assert all(e.startswith("warm-up failed: ") and "out of memory" in e for e in g.error)
    assert store.get_run(run_id)["status"] == "done"


_LIVE = os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
_LIVE = _LIVE if _LIVE.startswith("http") else f"http://{_LIVE}"
_LIVE_DOWN = check_reachable(_LIVE, timeout_s=1)


@pytest.mark.skipif(bool(_LIVE_DOWN), reason=f"no live Ollama server: {_LIVE_DOWN}")
def test_live_ollama_server():
    tags = installed_models(_LIVE)
    if not tags:
        pytest.skip(f"the Ollama server at {_LIVE} has no models installed")
    b = resolve(f"ollama/{tags[0]}@{_LIVE}")
    b.load()
    text, _, report = collect(b, max_tokens=16)
    assert report.output_tokens and report.engine_decode_ms > 0
    assert "vram_mb" in b.memory_mb()


@pytest.mark.slow
def test_models_on_different_hosts_run_in_parallel_and_sequential_within_a_host(store):
    import pandas as pd

    with FakeServer(OllamaHandler, delay_s=0.02) as a, FakeServer(OllamaHandler, delay_s=0.02) as b:
        specs = [f"ollama/llama3:8b-instruct@{a.url}", f"ollama/gpt-oss:20b@{a.url}",
                 f"ollama/llama3:8b-instruct@{b.url}"]
        run_id = Runner(store).run(RunConfig(load_scenario("standard"), specs,
                                             case_ids=["knowledge-en", "coding-en"]))
    g = store.generations(run_id)
    assert g.ok.all() and len(g) == 6
    g["end"] = g.started_at + pd.to_timedelta(g.e2e_ms, unit="ms")
    host_a, host_b = g[g.model_spec.str.contains(a.url)], g[g.model_spec.str.contains(b.url)]
    # host B's generations ran while host A was busy ...
    assert host_b.started_at.min() < host_a.end.max() and host_a.started_at.min() < host_b.end.max()
    # ... but on one host, one generation at a time
    a_sorted = host_a.sort_values("started_at")
    assert (a_sorted.started_at.iloc[1:].values >= a_sorted.end.iloc[:-1].values).all()


def test_the_model_runs_in_its_own_context_under_the_cap(ollama_server, store):
    # Ollama's default num_ctx is short: the model's own context is asked for, at load and per request
    b = resolve(f"ollama/gpt-oss:20b@{ollama_server.url}", max_context=16384)
    b.load()
    assert b.num_ctx == b.context_tokens == 16384  # 131072 from /api/show, capped
    collect(b, max_tokens=4)
    sent = [body for path, body in ollama_server.httpd.requests if path in ("/api/generate", "/api/chat")]
    loads = [s for s in sent if s.get("keep_alive") not in (0, "0", "0s")]
    assert len(loads) >= 2 and all((s.get("options") or {}).get("num_ctx") == 16384 for s in loads)
    small = resolve(f"ollama/llama3:8b-instruct@{ollama_server.url}")
    small.load()
    assert small.context_tokens == 8192  # under the default cap: its own
    spec = f"ollama/llama3:8b-instruct@{ollama_server.url}"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [spec], case_ids=["knowledge-en"], max_tokens=4))
    assert store.query("SELECT context_tokens FROM generations WHERE run_id = ?", [run_id]).context_tokens[0] == 8192
