"""The OpenAI-compatible backend against a real server (llama-cpp-python's own, on
loopback, serving the bundled SmolLM2), and against a loopback fake for the faults a
real server will not produce on demand."""

import json
import os

import psutil
import pytest

from engine.backends import BackendError, GenParams, Reasoning, resolve
from engine.runner import RunConfig, Runner
from engine.scenarios import load_scenario
from engine.telemetry import model_pid
from tests.conftest import collect as _collect
from tests.conftest import serve_gguf
from tests.fakeservers import FakeServer, OpenAIHandler


def collect(backend, messages=None, **params):
    return _collect(backend, messages or Q, **params)


Q = [{"role": "user", "content": "What are Newton's three laws of motion?"}]




@pytest.fixture(scope="module")
def llama_server(smollm2_path, tmp_path_factory):
    with serve_gguf(smollm2_path, "smollm2", tmp_path_factory.mktemp("llama-server")) as url:
        yield url


@pytest.fixture
def fake_openai():
    with FakeServer(OpenAIHandler) as srv:
        yield srv




@pytest.mark.slow
def test_real_server_stream_and_runner(llama_server, store):
    b = resolve(f"openai/smollm2@{llama_server}")
    b.load()
    text, _, report = collect(b, max_tokens=24)
    assert text and report.finish_reason in ("stop", "length")
    # llama-cpp-python's server sends no usage chunk: counted from the stream, and marked so
    assert report.tokens_from_engine is False and 1 <= report.output_tokens <= 24
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [f"openai/smollm2@{llama_server}"],
                                         case_ids=["knowledge-en", "multi-turn-en"], max_tokens=24))
    g = store.generations(run_id)
    assert g.ok.all() and len(g) == 3 and set(g.tokens_source) == {"stream"}
    assert g.load_ms.isna().all()  # a server keeps its model loaded: no load time is claimed
    assert (g.ttft_ms > 0).all() and (g.e2e_ms > g.ttft_ms).all()
    assert g.chunk_gaps_ms.map(len).sum() > 0
    # the memory sampled is the server's, the process that holds the model, found by its port
    pid = model_pid(b)
    assert pid != os.getpid() and "llama_cpp.server" in " ".join(psutil.Process(pid).cmdline())
    server_mb = psutil.Process(pid).memory_info().rss / 2**20
    assert g.peak_rss_mb.between(server_mb * 0.8, server_mb * 1.25).all()


def test_a_server_elsewhere_has_no_process_memory_here_and_one_in_process_is_this_one(fake_openai, store):
    assert model_pid(resolve("openai/m@http://10.255.255.1:8000/v1")) is None
    assert model_pid(resolve("fake/echo")) == os.getpid()
    assert model_pid(resolve(f"openai/echo@{fake_openai.url}/v1")) == os.getpid()  # served by a thread here


def test_real_server_raw_completion(llama_server):
    b = resolve(f"openai/smollm2@{llama_server}")
    text, _, report = collect(b, [{"role": "user", "content": "The capital of France is"}],
                              mode="completion", max_tokens=8)
    assert text.strip() and report.finish_reason in ("stop", "length")


def test_usage_is_used_when_sent_and_the_request_asks_for_it(fake_openai):
    b = resolve(f"openai/echo@{fake_openai.url}/v1")
    text, _, report = collect(b, max_tokens=6)
    assert report.tokens_from_engine and report.output_tokens == 6 and report.prompt_tokens == 7
    assert report.finish_reason == "length"
    path, body = fake_openai.httpd.requests[-1]
    assert path == "/v1/chat/completions" and body["stream_options"] == {"include_usage": True}


def test_reasoning_deltas_are_kept_apart(fake_openai, store):
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [f"openai/reasoner@{fake_openai.url}/v1"],
                                         case_ids=["knowledge-en"]))
    g = store.generations(run_id).iloc[0]
    assert g.reasoning_text == "Thinking about laws." and g.output_text.startswith("Newton")
    assert g.ttft_ms > g.first_token_ms


def test_api_key_is_sent_but_never_stored(fake_openai, store, monkeypatch):
    monkeypatch.setenv("MY_VLLM_KEY", "sk-secret-123")
    spec = f"openai/echo@{fake_openai.url}/v1?api_key_env=MY_VLLM_KEY"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [spec], case_ids=["knowledge-en"]))
    assert "Bearer sk-secret-123" in fake_openai.httpd.auth
    with open(store.path, "rb") as fh:
        assert b"sk-secret-123" not in fh.read()
    for table in ("runs", "generations", "check_results"):
        assert "sk-secret" not in store.query(f"SELECT * FROM {table}").to_csv()
    assert store.generations(run_id).ok.all()


@pytest.mark.parametrize("model,message", [
    ("missing", "model not found: The model `missing` does not exist"),
    ("fault-500", "HTTP 500: CUDA out of memory"),
    ("fault-error-mid", "error in the stream: the engine died"),
    ("fault-malformed", "malformed JSON in the stream"),
    ("fault-stall", "sent nothing for 1 s \\(timeout\\)"),
    ("fault-no-final", "ended without a final chunk"),
    ("fault-drop", "connection broke mid-stream"),
])
def test_faults_are_clear_errors(fake_openai, model, message):
    b = resolve(f"openai/{model}@{fake_openai.url}/v1", timeout_s=1)
    with pytest.raises(BackendError, match=message):
        collect(b)


def test_connection_refused_and_missing_url():
    with pytest.raises(BackendError, match="cannot connect"):
        resolve("openai/x@http://127.0.0.1:9/v1").load()
    with pytest.raises(BackendError, match="give the server URL"):
        resolve("openai/gpt-oss-20b")


def test_load_checks_the_model_is_served(fake_openai):
    with pytest.raises(BackendError, match="model not served .*echo"):
        resolve(f"openai/not-here@{fake_openai.url}/v1").load()


def test_faults_mid_run_keep_what_was_measured(fake_openai, store):
    url = f"{fake_openai.url}/v1"
    specs = [f"openai/echo@{url}", f"openai/fault-drop@{url}", f"openai/fault-stall@{url}"]
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), specs, case_ids=["knowledge-en"],
                                         backend_options={"timeout_s": 1}, warmup=False))
    g = store.generations(run_id).set_index("model_spec")
    assert g.loc[specs[0]].ok
    for spec in specs[1:]:
        row = g.loc[spec]
        assert not row.ok and row.output_text == "Newton's first" and row.ttft_ms > 0
    assert store.get_run(run_id)["status"] == "done"


def test_the_servers_max_model_len_is_the_context_recorded(fake_openai, store):
    from engine import RunConfig, Runner, load_scenario

    b = resolve(f"openai/echo@{fake_openai.url}/v1")
    b.load()
    assert b.context_tokens == 16384  # vLLM's max_model_len from /v1/models
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [f"openai/echo@{fake_openai.url}/v1"],
                                         case_ids=["knowledge-en"], backend_options={"max_context": 4096}))
    used = store.query("SELECT context_tokens FROM generations WHERE run_id = ?", [run_id]).context_tokens
    assert used[0] == 4096  # the server's 16384 under the user's cap


def test_cold_timings_cannot_be_flattered_by_a_prompt_cache_and_warm_ones_show_it(store):
    """A server with a prefix cache (as vLLM keeps one): in cold mode every repeat pays the full
    prefill (a unique marker starts each prompt); in warm mode the timed request finds it cached."""
    import statistics

    with FakeServer(OpenAIHandler, delay_s=0.001) as srv:
        spec = f"openai/cacher@{srv.url}/v1"
        sc = load_scenario("customer-service")  # a long shared policy prompt before each question
        cases = ["shipping-en", "express-en"]
        cold = Runner(store).run(RunConfig(sc, [spec], case_ids=cases, repeats=3, max_tokens=4, warmup=False))
        warm = Runner(store).run(RunConfig(sc, [spec], case_ids=cases, repeats=3, max_tokens=4, warmup=False,
                                           cache_mode="warm"))
        cold_bodies = [b for p, b in srv.httpd.requests if b.get("max_tokens") == 4][:6]
    g = store.query("SELECT run_id, case_id, ttft_ms, cache_mode, cache_marker, cached_prompt_tokens, prompt_tokens "
                    "FROM generations")
    c, w = g[g.run_id == cold], g[g.run_id == warm]
    assert set(c.cache_mode) == {"cold"} and set(w.cache_mode) == {"warm"}
    assert c.cache_marker.str.fullmatch(r"\[[0-9a-f]{8}\]").all() and c.cache_marker.nunique() == 6
    assert w.cache_marker.isna().all()
    assert (c.cached_prompt_tokens == 0).all()  # nothing served from the cache, as the server says
    assert (w.cached_prompt_tokens >= w.prompt_tokens - 1).all()  # the whole prompt, from the untimed send
    # equal TTFT across repeats when cold, a clear drop when warm
    for case in cases:
        per = c[c.case_id == case].ttft_ms
        assert per.max() / per.min() < 1.6, per.tolist()
    assert statistics.median(w.ttft_ms) < 0.5 * statistics.median(c.ttft_ms)
    assert all(b["messages"][0]["content"].startswith("[") and b.get("cache_prompt") is False
               for b in cold_bodies)


@pytest.mark.slow
def test_the_real_llama_cpp_python_server_cold_and_warm(llama_server, store):
    """Cold requests to llama-cpp-python's server start with a marker of their case and repeat (it keeps
    no per-request switch that ModelPick can trust), warm ones are the prompts as written, each sent once
    untimed first. The server does not report cached tokens, so none are recorded (never guessed). How
    much the warm prefix saves is a timing, measured in bench/cold_warm.py, not asserted here."""
    spec = f"openai/smollm2@{llama_server}"
    cases = ["leave-en", "sick-note-en", "helpdesk-en"]  # a handbook of about 500 tokens before each question
    sc = load_scenario("kb-qa")
    cold = Runner(store).run(RunConfig(sc, [spec], case_ids=cases, repeats=2, max_tokens=4))
    warm = Runner(store).run(RunConfig(sc, [spec], case_ids=cases, repeats=2, max_tokens=4, cache_mode="warm"))
    g = store.query("SELECT run_id, case_id, repeat, cache_mode, cache_marker, cached_prompt_tokens, prompt_tokens "
                    "FROM generations WHERE ok")
    c, w = g[g.run_id == cold], g[g.run_id == warm]
    assert len(c) == len(w) == 6 and (c.prompt_tokens > 300).all()
    assert set(c.cache_mode) == {"cold"} and set(w.cache_mode) == {"warm"} and w.cache_marker.isna().all()
    assert c.cache_marker.str.fullmatch(r"\[[0-9a-f]{8}\]").all() and c.cache_marker.nunique() == 6  # per case x repeat
    # the marker is part of what the server evaluated: every cold prompt is a few tokens longer than its warm twin
    both = c.merge(w, on=["case_id", "repeat"], suffixes=("_cold", "_warm"))
    assert (both.prompt_tokens_cold > both.prompt_tokens_warm).all()
    assert g.cached_prompt_tokens.isna().all()


def _sse(*events) -> list[str]:
    return [f"data: {json.dumps(e)}" for e in events] + ["data: [DONE]"]


def test_llama_servers_own_timings_are_the_engine_figures():
    from engine.backends.openai_compat import StreamParser

    # the last chunk of llama.cpp's llama-server: its timings object (as its /v1/chat/completions sends it)
    events = [{"choices": [{"delta": {"content": "Hello"}}]},
              {"choices": [{"delta": {"content": " there"}, "finish_reason": "stop"}],
               "timings": {"prompt_n": 12, "prompt_ms": 30.5, "prompt_per_second": 393.4, "predicted_n": 2,
                           "predicted_ms": 40.0, "predicted_per_second": 50.0, "cache_n": 20}}]
    p = StreamParser("openai/x")
    texts = [c for line in _sse(*events) for c in p.feed(line)]
    r = p.report()
    assert texts == ["Hello", " there"] and r.problem() is None
    assert (r.engine_prompt_ms, r.engine_decode_ms, r.engine_decode_tokens) == (30.5, 40.0, 2)
    assert r.output_tokens == 2 and r.prompt_tokens == 32 and r.tokens_from_engine  # evaluated plus cached
    assert r.extra == {"cached_prompt_tokens": 20}
    # with a usage chunk its counts stand, and the timings still give the engine's times
    p = StreamParser("openai/x")
    for line in _sse(*events, {"choices": [], "usage": {"prompt_tokens": 32, "completion_tokens": 2}}):
        p.feed(line)
    r = p.report()
    assert r.prompt_tokens == 32 and r.engine_decode_ms == 40.0 and r.extra == {"cached_prompt_tokens": 20}
    # nonsense in the timings is not taken as measured: text and booleans are dropped, the stream counted
    p = StreamParser("openai/x")
    for line in _sse({"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}],
                      "timings": {"predicted_n": "two", "prompt_ms": True}}):
        p.feed(line)
    r = p.report()
    assert r.engine_prompt_ms is None and r.engine_decode_tokens is None and not r.tokens_from_engine
    # and an impossible time fails the generation with the reason (the runner's check of every report)
    p = StreamParser("openai/x")
    for line in _sse({"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}],
                      "timings": {"predicted_n": 1, "predicted_ms": -5.0}}):
        p.feed(line)
    assert p.report().problem() == "engine_decode_ms is -5.0, not a duration"


def _read(body: bytes, cut: int):
    """(pieces, report) of a body read `cut` bytes at a time, as the backends read it."""
    from engine.backends.openai_compat import StreamParser

    p = StreamParser("openai/x")
    pieces = [c for i in range(0, len(body), cut) for line in p.lines(body[i:i + cut]) for c in p.feed(line)]
    pieces += [c for line in p.lines(b"", end=True) for c in p.feed(line)]
    return pieces, p.report()


def test_the_stream_is_read_whole_however_the_network_cuts_it():
    # a character of three bytes cut between two reads, CRLF endings, a comment, an event field, a
    # last line without its newline, an id, a role-only first chunk, reasoning, a usage chunk
    events = [{"id": "chatcmpl-7", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role":
              "assistant", "content": ""}}]},
              {"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {"content": "温度"}, "finish_reason": None}]},
              {"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {"reasoning_content": "hm"}}]},
              {"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {"content": " ok"}, "finish_reason": "stop"}]},
              {"id": "chatcmpl-7", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}]
    body = (": keep-alive\r\nevent: message\r\n" + "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n"
                                                          for e in events) + "data: [DONE]").encode()
    whole = _read(body, len(body))
    assert whole[0] == ["温度", Reasoning("hm"), " ok"]
    assert (whole[1].output_tokens, whole[1].finish_reason, whole[1].extra) == (3, "stop", {"request_id": "chatcmpl-7"})
    for cut in (1, 2, 3, 7, 64):
        pieces, report = _read(body, cut)
        assert pieces == whole[0] and report == whole[1], cut


@pytest.mark.parametrize("event, message", [
    ({"choices": [{"delta": {"content": 5}}]}, "delta.content is 5"),
    ({"choices": "x"}, "choices is"),
    ({"choices": [{"delta": {"content": "a"}}], "error": {"message": "overloaded"}}, "overloaded"),
    ([1, 2], "unexpected event"),
])
def test_an_event_of_another_shape_is_read_in_full_and_refused_with_the_reason(event, message):
    with pytest.raises(BackendError, match=message):
        _read(f"data: {json.dumps(event)}\n\n".encode(), 5)


def test_json_past_what_orjson_takes_is_read_as_pythons_json_reads_it():
    from engine.backends.openai_compat import StreamParser

    p = StreamParser("openai/x")  # an integer past 64 bits: the report's own check refuses it
    for line in _sse({"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 2**70, "completion_tokens": 1}}):
        p.feed(line)
    assert "prompt_tokens" in (p.report().problem() or "")


class ClosesFirst(OpenAIHandler):
    """Closes the first request's connection without a word, as a server does with a kept-alive
    connection it had already shut; answers the rest."""
    closed: list = []

    def do_POST(self):
        if not self.closed:
            self.closed.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.close_connection = True
            return
        super().do_POST()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_request_the_server_closed_unanswered_is_sent_once_more(path):
    import asyncio

    ClosesFirst.closed = []
    with FakeServer(ClosesFirst) as srv:
        b = resolve(f"openai/echo@{srv.url}/v1")
        messages = [{"role": "user", "content": "Say hello there"}]
        if path == "sync":
            text, _, report = collect(b, messages, max_tokens=3)
        else:
            async def run():
                return [c async for c in b.astream(messages, GenParams(max_tokens=3))]
            out = asyncio.run(run())
            text, report = "".join(c for c in out if isinstance(c, str)), out[-1]
        assert text and report.problem() is None and ClosesFirst.closed == ["/v1/chat/completions"]
        assert len(srv.httpd.requests) == 1  # the second attempt is the one answered
