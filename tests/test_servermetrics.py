"""A server's own counters beside ours: Prometheus /metrics in vLLM's names and histogram format (from
vLLM's documentation), read before and after a run and each sweep level; absent, malformed or reset
metrics are recorded as such. Request ids are kept."""
import json
import threading

import pytest

from engine import RunConfig, Runner
from engine.scenarios import load_scenario
from engine.servermetrics import difference, metrics_url, parse, scrape
from engine.sweep import SweepConfig, run_sweep, sweep_levels
from tests.fakeservers import FakeServer, OpenAIHandler

BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def vllm_text(n: int, ttft_s: float = 0.03, prompt: int = 20, generated: int = 5) -> str:
    """vLLM's /metrics after `n` requests, each with this TTFT and these token counts."""
    lines = ["# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
             "# TYPE vllm:prompt_tokens_total counter",
             f'vllm:prompt_tokens_total{{model_name="m"}} {float(n * prompt)}',
             "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
             "# TYPE vllm:generation_tokens_total counter",
             f'vllm:generation_tokens_total{{model_name="m"}} {float(n * generated)}',
             "# HELP vllm:request_success_total Count of successfully processed requests.",
             "# TYPE vllm:request_success_total counter",
             f'vllm:request_success_total{{finished_reason="stop",model_name="m"}} {float(n)}',
             'vllm:request_success_total{finished_reason="length",model_name="m"} 0.0',
             "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.",
             "# TYPE vllm:time_to_first_token_seconds histogram"]
    for le in BUCKETS:
        lines.append(f'vllm:time_to_first_token_seconds_bucket{{le="{le}",model_name="m"}} '
                     f'{float(n if ttft_s <= le else 0)}')
    lines += [f'vllm:time_to_first_token_seconds_bucket{{le="+Inf",model_name="m"}} {float(n)}',
              f'vllm:time_to_first_token_seconds_count{{model_name="m"}} {float(n)}',
              f'vllm:time_to_first_token_seconds_sum{{model_name="m"}} {n * ttft_s}',
              "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.",
              "# TYPE vllm:gpu_cache_usage_perc gauge", 'vllm:gpu_cache_usage_perc{model_name="m"} 0.1']
    return "\n".join(lines) + "\n"


def test_the_difference_of_two_scrapes_in_vllms_format():
    d = difference(parse(vllm_text(3)), parse(vllm_text(8)))
    assert d["requests"] == 5 and d["prompt_tokens"] == 100 and d["generation_tokens"] == 25
    assert d["ttft_ms_mean"] == pytest.approx(30.0) and d["ttft_count"] == 5
    assert 20 < d["ttft_ms_p50"] <= 40 and 20 < d["ttft_ms_p95"] <= 40  # within the bucket that holds them
    reset = difference(parse(vllm_text(8)), parse(vllm_text(2)))
    assert "the server restarted" in reset["error"]
    with pytest.raises(ValueError, match="not Prometheus text"):
        parse("vllm:thing{{{ 3\n")
    assert metrics_url("http://h:8000/v1") == "http://h:8000/metrics"


class VllmLike(OpenAIHandler):
    """The loopback fake of an OpenAI-compatible server, with vLLM's /metrics counting what it served
    (and an x-request-id header); `mode`: "ok", "absent" or "garbage"."""
    served = 0
    mode = "ok"
    lock = threading.Lock()

    def do_GET(self):
        if self.path == "/metrics":
            if self.mode == "absent":
                return self._json(404, {"error": {"message": "not found"}})
            body = (vllm_text(VllmLike.served) if self.mode == "ok" else "<html>not metrics{{{").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        return super().do_GET()

    def do_POST(self):
        with self.lock:
            VllmLike.served += 1
        super().do_POST()

    def send_response(self, code, message=None):
        super().send_response(code, message)
        if self.command == "POST":
            self.send_header("x-request-id", f"req-{VllmLike.served}")


@pytest.fixture
def vllm_like():
    VllmLike.served, VllmLike.mode = 0, "ok"
    with FakeServer(VllmLike) as srv:
        yield srv


def test_a_run_records_what_the_server_counted_and_each_request_id(vllm_like, store):
    spec = f"openai/echo@{vllm_like.url}/v1"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [spec], case_ids=["knowledge-en", "coding-en"]))
    host = json.loads(store.get_run(run_id)["host_json"])
    counted = host["server_metrics"][spec]
    assert counted["requests"] == 2  # the two cases (the warm-up came before the first scrape)
    assert counted["ttft_ms_mean"] == pytest.approx(30.0)
    ids = store.generations(run_id).request_id
    assert ids.notna().all() and ids.str.startswith("req-").all() and ids.nunique() == 2


def test_a_sweep_level_keeps_the_servers_count_and_bad_metrics_are_recorded_not_fatal(vllm_like, store):
    spec = f"openai/echo@{vllm_like.url}/v1"
    sid = run_sweep(store, SweepConfig(spec, load_scenario("standard"), [1, 2], requests=4, max_tokens=5))
    levels = sweep_levels(store, sid)
    server = [json.loads(s) for s in levels.server_json]
    assert [s["requests"] for s in server] == [4, 4] and levels.ok_requests.tolist() == [4, 4]
    assert store.query("SELECT request_id FROM sweep_requests WHERE sweep_id = ?", [sid]).request_id.notna().all()
    for mode, said in (("absent", "HTTP 404"), ("garbage", "not Prometheus text")):
        VllmLike.mode = mode
        sid = run_sweep(store, SweepConfig(spec, load_scenario("standard"), [1], requests=2, max_tokens=5))
        level = sweep_levels(store, sid).iloc[0]
        assert level.ok_requests == 2 and said in json.loads(level.server_json)["error"]
    assert "error" in scrape("http://127.0.0.1:9/v1")  # nothing listening: said, not raised
