"""A server that rate-limits (429, 503 with Retry-After) is waited for and asked again, the wait kept out
of every timing and recorded; a generation the server or the network failed is missing, not a quality of
0, the decision says how many per model, and `resume` runs it again."""
import pytest

from engine import load_scenario
from engine.backends.openai_compat import retry_after_s
from engine.recommend import recommend
from engine.runner import RunConfig, Runner
from engine.scoring import case_scores
from tests.fakeservers import FakeServer, OpenAIHandler

CASES = ["knowledge-en", "coding-zh", "instruction-en", "knowledge-zh"]


@pytest.fixture
def server():
    with FakeServer(OpenAIHandler, delay_s=0.0) as s:
        yield s


def _quality(store, run_id) -> dict:
    g = store.generations(run_id)
    c = store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id])
    return case_scores(g, c).groupby("model_spec").score.mean().to_dict()


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_s("2") == 2.0 and retry_after_s("0.5") == 0.5 and retry_after_s(None) is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert retry_after_s("soon") is None


def test_every_second_request_limited_is_retried_and_scores_as_its_unlimited_twin(server, store):
    base = f"{server.url}/v1"
    limited, twin = f"openai/limited-2nd@{base}", f"openai/echo@{base}"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [limited, twin], case_ids=CASES))
    g = store.generations(run_id)
    assert g.ok.all(), g.error.tolist()  # the warm-up and every case: none dropped
    mine = g[g.model_spec == limited]
    assert mine.retries.fillna(0).sum() >= 2 and (mine.retry_wait_ms.dropna() >= 200).all()
    # the 0.2 s waits are in no timing: first tokens stay far below them
    assert (mine.ttft_ms < 150).all() and (mine.e2e_ms < 180).all(), mine[["ttft_ms", "e2e_ms"]]
    q = _quality(store, run_id)
    assert q[limited] == pytest.approx(q[twin])


def test_a_503_with_retry_after_is_retried_too(server, store):
    spec = f"openai/busy-503@{server.url}/v1"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [spec], case_ids=CASES[:2]))
    g = store.generations(run_id)
    assert g.ok.all() and g.retries.fillna(0).sum() >= 1


def test_a_limit_past_60_s_fails_the_cell_as_missing_and_resume_runs_it_again(server, store):
    base = f"{server.url}/v1"
    limited, twin = f"openai/limited-long@{base}", f"openai/echo@{base}"
    server.httpd.limit_first = 2  # its first two requests are limited for 120 s
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [limited, twin], case_ids=CASES, warmup=False))
    g = store.generations(run_id)
    mine = g[g.model_spec == limited]
    failed = mine[~mine.ok]
    assert len(failed) == 2 and (failed.failed_by == "server").all()
    assert failed.error.str.contains("the server rate-limited it: HTTP 429, Retry-After 120 s is over the 60 s").all()
    checks = store.query("SELECT * FROM check_results WHERE run_id = ? AND model_spec = ?", [run_id, limited])
    assert set(checks.case_id) == set(mine[mine.ok].case_id)  # the failed ones are missing, not a quality of 0
    q = _quality(store, run_id)
    assert q[limited] == pytest.approx(_quality_on(store, run_id, twin, set(mine[mine.ok].case_id)))
    d = recommend(store, "standard", run_id=run_id, weights={"quality": 1.0})
    assert any(f"{limited}: 2 of 4" in str(c) and "missing" in str(c) for c in d.caveats), d.caveats
    Runner(store).resume(run_id)
    g = store.generations(run_id)
    assert g.ok.all() and len(g) == 2 * len(CASES)
    assert set(_quality(store, run_id)) == {limited, twin}


def _quality_on(store, run_id, model, cases) -> float:
    g = store.generations(run_id)
    c = store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id])
    s = case_scores(g, c)
    return float(s[(s.model_spec == model) & s.case_id.isin(cases)].score.mean())


def test_a_model_all_of_whose_answers_are_missing_is_said_so(server, store):
    spec = f"openai/limited-long@{server.url}/v1"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [spec, f"openai/echo@{server.url}/v1"],
                                         case_ids=CASES[:2], warmup=False))
    from engine.recommend import RecommendError

    with pytest.raises(RecommendError, match="every generation of .*limited-long.* is missing"):
        recommend(store, "standard", run_id=run_id, weights={"quality": 1.0})


def test_a_server_that_never_stops_limiting_fails_after_five_retries(server, store):
    spec = f"openai/limited-always@{server.url}/v1"
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), [spec], case_ids=CASES[:1], warmup=False))
    row = store.generations(run_id).iloc[0]
    assert not row.ok and row.failed_by == "server"
    assert "HTTP 429 6 times (retried 5 times, honouring Retry-After)" in row.error


def test_a_500_or_a_refused_connection_is_missing_not_wrong(server, store):
    import socket

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    models = [f"openai/fault-500@{server.url}/v1", f"openai/echo@http://127.0.0.1:{port}/v1",
              f"openai/echo@{server.url}/v1"]
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), models, case_ids=CASES[:2], warmup=False))
    g = store.generations(run_id)
    bad = g[g.model_spec != models[2]]
    assert (bad.failed_by == "server").all() and not bad.ok.any()
    checks = store.query("SELECT DISTINCT model_spec FROM check_results WHERE run_id = ?", [run_id])
    assert checks.model_spec.tolist() == [models[2]]
