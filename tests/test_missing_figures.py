"""No figure that can be missing may break a verdict: runs with nulls in the nullable columns of
`generations` go through summary, recommend and every report format."""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Store
from engine.cli import main
from tests.conftest import make_run

# the nullable columns a decision reads, and a plausible value for each when present
NULLABLE = {"category": "knowledge", "output_text": "an answer", "finish_reason": "stop", "load_ms": 900.0,
            "ttft_ms": 120.0, "e2e_ms": 800.0, "prompt_tokens": 30, "output_tokens": 40,
            "output_chars": 160, "prompt_tok_per_s": 300.0, "decode_tok_per_s": 25.0,
            "stream_decode_tok_per_s": 24.0, "chars_per_s": 90.0, "engine_prompt_ms": 50.0,
            "engine_decode_ms": 700.0, "tokens_source": "engine", "rss_mb": 400.0, "vram_mb": None,
            "first_token_ms": 110.0, "engine_load_ms": 800.0, "engine_total_ms": 760.0}
MODELS = ("fake/a", "fake/b")


def _run(out: Path, null_columns: dict, n_cases: int) -> Path:
    db = out / "x.duckdb"
    store = Store(db)
    run_id = store.create_run("standard", {"models": list(MODELS), "backend_options": {"n_ctx": 4096}},
                              {"gpus": []}, 0)
    for m in MODELS:
        for i in range(n_cases):
            row = {"run_id": run_id, "model_spec": m, "case_id": f"c{i:02d}", "repeat": 0, "turn": 0,
                   "ok": True, "started_at": datetime(2026, 1, 1)}
            for col, value in NULLABLE.items():
                row[col] = None if col in null_columns.get(m, ()) else value
            score = 0.4 + 0.1 * MODELS.index(m)
            store.add_generation(row, [{"run_id": run_id, "model_spec": m, "case_id": f"c{i:02d}",
                                        "repeat": 0, "turn": 0, "check_type": "contains",
                                        "passed": score >= 0.5, "score": score, "weight": 1.0, "detail": ""}])
    store.finish_run(run_id, "done")
    return db


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


columns = st.sets(st.sampled_from(sorted(NULLABLE)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(null_a=columns, null_b=columns, n_cases=st.sampled_from([1, 3, 11]))
def test_any_missing_figure_leaves_every_decision_surface_standing(null_a, null_b, n_cases):
    with tempfile.TemporaryDirectory() as tmp:
        db = _run(Path(tmp), {"fake/a": null_a, "fake/b": null_b}, n_cases)
        for args in (["summary"], ["summary", "--json"], ["recommend", "--scenario", "standard"],
                     ["recommend", "--scenario", "standard", "--json"]):
            rc, out, err = _cli(*args, "--db", str(db))
            assert rc == 0, (args, null_a, null_b, err)
        decision = json.loads(_cli("recommend", "--scenario", "standard", "--json", "--db", str(db))[1])
        assert decision["verdict"]
        for fmt in ("md", "html", "json"):
            target = Path(tmp) / f"memo.{fmt}"
            rc, _, err = _cli("report", "--scenario", "standard", "--format", fmt, "--out", str(target),
                              "--db", str(db))
            assert rc == 0 and target.stat().st_size > 0, (fmt, null_a, null_b, err)


def test_a_model_whose_answers_came_in_one_piece_is_decided_without_throughput_and_says_why(store):
    figures = {m: {f"c{i:02d}": [(0.4 if m == "fake/a" else 0.7, 100.0, 500.0, None if m == "fake/a" else 20.0)]
                   for i in range(12)} for m in MODELS}
    make_run(store, "standard", figures)
    rc, out, err = _cli("recommend", "--scenario", "standard", "--db", str(store.path))
    assert rc == 0, err
    assert "not weighed: throughput (no decode rate for fake/a: the answers came in one piece)" in out
    d = json.loads(_cli("recommend", "--scenario", "standard", "--json", "--db", str(store.path))[1])
    assert d["dropped_criteria"]["throughput"] == "no decode rate for fake/a: the answers came in one piece"
    assert "throughput" not in d["weights"]
    # one generation of one case and one repeat: the shape that made the index arrays empty
    one = {m: {"c00": [(0.5, 100.0, 500.0, None)]} for m in MODELS}
    make_run(store, "standard", one)
    rc, out, err = _cli("recommend", "--scenario", "standard", "--db", str(store.path))
    assert rc == 0 and "verdict:" in out, err


def test_the_one_piece_reason_is_said_in_chinese():
    from engine.i18n import Msg

    msg = Msg("cav_one_piece", models="fake/a")
    assert msg.say("zh") == "fake/a 没有生成速度：回答是一次性整段返回的"


def test_a_servers_inflated_token_count_is_not_taken_and_buys_no_throughput(store):
    from engine import RunConfig, Runner, load_scenario
    from tests.fakeservers import FakeServer, OpenAIHandler

    with FakeServer(OpenAIHandler) as oa:
        specs = [f"openai/inflated@{oa.url}/v1", f"openai/echo@{oa.url}/v1"]
        run_id = Runner(store).run(RunConfig(load_scenario("standard"), specs, warmup=False))
    gens = store.generations(run_id)
    liar, honest = (gens[gens.model_spec == s] for s in specs)
    assert (liar.tokens_source == "stream").all() and (honest.tokens_source == "engine").all()
    assert liar.tokens_note.str.contains("2,147,483,646 output tokens for").all()
    assert honest.tokens_note.isna().all()
    # the harness's count: one token a streamed chunk, as many as the honest server's
    assert (liar.output_tokens.to_numpy() == honest.output_tokens.to_numpy()).all()
    # decode rates of the same order as the honest twin's (3.9e13 tok/s when the count was taken)
    assert liar.decode_tok_per_s.median() < 5 * honest.decode_tok_per_s.median()


def test_a_decode_rate_past_the_hardware_bound_is_flagged_and_never_ranked_on(store, monkeypatch):
    """A server whose figures put a model past what the machine's memory bandwidth allows (here 10^6 tok/s
    for SmolLM2 on a 20 GB/s machine, bound about 240 tok/s) gets no throughput score: the criterion is left
    out, naming the model and both figures, and the ranking is decided on the others."""
    from engine import bound
    from engine.recommend import recommend
    from tests.conftest import make_run

    monkeypatch.setattr(bound, "run_bandwidth", lambda host, config, spec: bound.Bandwidth(20.0, "fixed"))
    fast, honest = "llamacpp/smollm2-135m", "llamacpp/gemma3-270m"
    figures = {fast: {f"c{i:02d}": [(0.5, 100.0, 900.0, 1e6)] for i in range(12)},
               honest: {f"c{i:02d}": [(0.5, 100.0, 900.0, 40.0)] for i in range(12)}}
    make_run(store, "standard", figures)
    d = recommend(store, "standard", weights={"quality": 0.5, "throughput": 0.5}, trust_timings=True)
    assert "throughput" in d.dropped_criteria and "throughput" not in d.weights
    why = str(d.dropped_criteria["throughput"])
    assert "past what the machine's memory bandwidth allows" in why and f"{fast}: 1,000,000 tok/s" in why
    assert honest not in why
