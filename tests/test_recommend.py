"""The verdict on hand-built databases with known answers: ranking, normalisation,
constraints, the paired case bootstrap, sensitivity, bad input, saved decisions."""
import json

import numpy as np
import pytest

from engine.recommend import (
    NO_ELIGIBLE,
    TOO_CLOSE,
    Constraints,
    CostInputs,
    RecommendError,
    compare_per_case,
    parse_weights,
    recommend,
    reweight,
    save_decision,
    saved_decisions,
)
from tests.conftest import make_run

CASES = [f"c{i:02d}" for i in range(30)]


def figures(quality, ttft, e2e=1000.0, decode=50.0, repeats=1, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return {c: [(quality if not callable(quality) else quality(i),
                 ttft * (1 + noise * rng.standard_normal()), e2e, decode) for _ in range(repeats)]
            for i, c in enumerate(CASES)}


def test_a_model_better_on_every_criterion_wins_with_probability_near_one(store):
    make_run(store, "standard", {"a": figures(0.9, 200, 800, 80), "b": figures(0.5, 400, 1600, 40)})
    d = recommend(store, "standard")
    top = d.ranking.iloc[0]
    assert d.verdict == "a" and top.model_spec == "a" and top.p_first > 0.99
    assert top.score == pytest.approx(1.0)  # best on every criterion: 1 on each, weights sum to 1
    # b: quality 0.5/0.9, ttft 200/400, latency 800/1600, throughput 40/80 under the scenario's weights
    w = d.weights
    expected = w["quality"] * 0.5 / 0.9 + w["ttft"] * 0.5 + w["latency"] * 0.5 + w["throughput"] * 0.5
    assert d.ranking.set_index("model_spec").score["b"] == pytest.approx(expected)
    parts = d.ranking.set_index("model_spec").filter(like="part_").loc["b"]
    assert parts.sum() == pytest.approx(expected)


def test_identical_models_are_too_close_to_call_with_even_odds(store):
    # the same answers; timings differ only by run-to-run noise
    make_run(store, "standard", {"x": figures(lambda i: (i % 3) / 2, 300, noise=0.02, seed=1),
                                 "y": figures(lambda i: (i % 3) / 2, 300, noise=0.02, seed=2)})
    d = recommend(store, "standard")
    assert d.verdict == TOO_CLOSE
    p = d.ranking.set_index("model_spec").p_first
    assert p["x"] == pytest.approx(0.5, abs=0.1) and p["y"] == pytest.approx(0.5, abs=0.1)
    assert "within the tie margin" in d.more_cases["note"]
    table = d.table.set_index(["row", "model_spec"])
    assert set(table.winner) == {"tie"}


def test_repeats_of_a_case_move_together_in_the_bootstrap():
    # 5 cases, each repeated 4 times identically: the interval is that of 5 cases, not 20
    per_case = np.array([[1.0, 0.0, 1.0, 0.0, 1.0]])
    as_cases = compare_per_case(per_case, ["m"], "higher")
    as_rows = compare_per_case(np.repeat(per_case, 4, axis=1), ["m"], "higher")
    w_cases = as_cases["ci"]["m"][1] - as_cases["ci"]["m"][0]
    w_rows = as_rows["ci"]["m"][1] - as_rows["ci"]["m"][0]
    assert w_rows < 0.7 * w_cases  # treating repeats as cases would claim a narrower interval


@pytest.mark.slow
def test_repeats_are_averaged_per_case_before_resampling(store):
    make_run(store, "standard", {"a": figures(0.8, 200, repeats=3), "b": figures(0.8, 200, repeats=1)})
    d = recommend(store, "standard")
    q = d.table[d.table.row == "ttft_ms"].set_index("model_spec")
    assert q.n["a"] == 30 and q.n["b"] == 30  # cases, not generations


def test_paired_bootstrap_sees_a_small_consistent_difference(store):
    # b is 5% slower on every case while cases vary 10x: unpaired intervals would overlap
    base = {c: 100.0 * (1 + 9 * i / 29) for i, c in enumerate(CASES)}
    a = {c: [(0.5, base[c], 1000, 50)] for c in CASES}
    b = {c: [(0.5, base[c] * 1.05, 1000, 50)] for c in CASES}
    make_run(store, "standard", {"a": a, "b": b})
    d = recommend(store, "standard")
    ttft = d.table[d.table.row == "ttft_ms"].set_index("model_spec")
    assert ttft.ci_low["b"] < ttft.ci_high["a"]  # the marginal intervals overlap
    assert ttft.winner.iloc[0] == "a"  # the paired difference does not


def test_moving_a_weight_past_its_flip_point_changes_the_winner(store):
    # a: better quality; b: faster
    make_run(store, "standard", {"a": figures(0.9, 600), "b": figures(0.6, 200)})
    weights = {"quality": 0.7, "ttft": 0.3}
    d = recommend(store, "standard", weights=weights)
    assert d.verdict == "a"
    row = d.sensitivity.set_index("criterion").loc["ttft"]
    flip = row.flip_high
    assert 0.3 < flip < 1 and row.winner_above == "b"
    # quality 1 vs 0.667, ttft 0.333 vs 1: a leads while 1-t+t/3 > (1-t)*2/3+t, i.e. t < 1/3
    assert flip == pytest.approx(1 / 3, abs=1e-6)
    assert recommend(store, "standard", weights=reweight(weights, "ttft", flip - 0.02)).ranking.model_spec[0] == "a"
    past = recommend(store, "standard", weights=reweight(weights, "ttft", flip + 0.02))
    assert past.ranking.model_spec[0] == "b"


def test_constraints_exclude_with_reasons_and_the_binding_one_is_named(store):
    make_run(store, "standard", {"big": figures(0.9, 300), "small": figures(0.7, 300)},
             vram_mb={"big": 20 * 1024, "small": 6 * 1024}, host={"gpus": [{"name": "NVIDIA L4"}]})
    free = recommend(store, "standard")
    assert free.verdict == "big"
    d = recommend(store, "standard", constraints=Constraints(max_vram_gb=16))
    r = d.ranking.set_index("model_spec")
    assert not r.eligible["big"] and "20.0 GB" in r.reasons["big"] and "16 GB" in r.reasons["big"]
    assert r.p_first["big"] == 0 and d.verdict == "small"
    assert d.binding == [{"constraint": "max_vram_gb", "excludes": ["big"], "unconstrained_leader": "big",
                          "binds": True}]
    assert list(d.ranking.model_spec) == ["small", "big"]  # excluded, never dropped


@pytest.mark.slow
def test_sla_licence_and_quality_constraints(store):
    slow = {c: [(0.9, 300 if i < 27 else 5000, 1000, 50)] for i, c in enumerate(CASES)}
    make_run(store, "standard", {"llamacpp/smollm2-135m": figures(0.6, 300),
                                 "ollama/llama3:8b-instruct": slow, "other": figures(0.2, 300)})
    d = recommend(store, "standard", constraints=Constraints(ttft_p95_ms=1000, licences=["Apache-2.0"],
                                                             min_quality=0.3))
    r = d.ranking.set_index("model_spec")
    assert "TTFT p95 5000 ms > SLA 1000 ms" in r.reasons["ollama/llama3:8b-instruct"]
    assert "licence Llama 3 Community License not allowed" in r.reasons["ollama/llama3:8b-instruct"]
    assert "licence unknown" in r.reasons["other"] and "quality 0.20 < minimum 0.3" in r.reasons["other"]
    assert d.verdict == "llamacpp/smollm2-135m"
    none = recommend(store, "standard", constraints=Constraints(min_quality=0.95))
    assert none.verdict == NO_ELIGIBLE


def test_normalisation_best_is_one_lower_is_better_inverted(store):
    make_run(store, "standard", {"a": figures(0.8, 100, decode=100), "b": figures(0.4, 400, decode=25)})
    d = recommend(store, "standard", weights={"quality": 1, "ttft": 1, "throughput": 1})
    c = d.criteria.set_index(["model_spec", "criterion"])
    assert c.normalised["a", "quality"] == 1 and c.normalised["b", "quality"] == pytest.approx(0.5)
    assert c.normalised["b", "ttft"] == pytest.approx(0.25) and c.normalised["b", "throughput"] == pytest.approx(0.25)
    assert d.weights == pytest.approx({"quality": 1 / 3, "ttft": 1 / 3, "throughput": 1 / 3})


def test_a_criterion_not_measured_for_every_model_is_left_out_and_said(store):
    make_run(store, "standard", {"a": figures(0.8, 100), "b": figures(0.7, 100)}, load_ms={"a": 900})
    d = recommend(store, "standard", weights={"quality": 0.5, "load": 0.5})
    assert d.weights == {"quality": 1.0} and "load" in d.dropped_criteria
    assert any("criterion Load time left out" in c for c in d.caveats)  # its label, not its key


def test_too_close_estimates_how_many_more_cases_would_separate(store):
    rng = np.random.default_rng(3)
    qa = rng.uniform(0, 1, 30)
    make_run(store, "standard", {
        "a": {c: [(float(min(1, qa[i] + 0.03)), 300, 1000, 50)] for i, c in enumerate(CASES)},
        "b": {c: [(float(max(0, qa[i] - 0.03 + 0.3 * rng.standard_normal())), 300, 1000, 50)]
              for i, c in enumerate(CASES)}})
    d = recommend(store, "standard", weights={"quality": 1}, p_threshold=0.99)
    assert d.verdict == TOO_CLOSE
    assert d.more_cases["extra_cases"] > 0 and "more cases" in d.more_cases["note"]


@pytest.mark.parametrize("weights, message", [
    ("quality=0.5,speed=0.5", "unknown criterion 'speed'"),
    ("quality=0,ttft=0", "sum to zero"),
    ("quality=-1", "must be a number >= 0"),
    ("quality", "not criterion=number"),
    ("quality=abc", "is not a number"),
])
def test_bad_weights_are_named(weights, message):
    with pytest.raises(RecommendError, match=message):
        parse_weights(weights)


def test_unknown_scenario_no_runs_and_bad_gpu_are_clear(store):
    from engine.cost import CostError

    with pytest.raises(RecommendError, match="unknown scenario 'nope'"):
        recommend(store, "nope")
    with pytest.raises(RecommendError, match="scenario 'kb-qa' has no runs"):
        recommend(store, "kb-qa")
    make_run(store, "standard", {"ollama/llama3:70b-instruct": figures(0.8, 100),
                                 "openai/meta-llama/Meta-Llama-3-70B-Instruct@http://gpu:8000/v1": figures(0.7, 100)})
    with pytest.raises(CostError, match="unknown GPU 'Z9'"):
        recommend(store, "standard", cost_inputs=CostInputs(gpu="Z9"))
    with pytest.raises(RecommendError, match="no model fits T4"):
        recommend(store, "standard", cost_inputs=CostInputs(gpu="T4"))
    with pytest.raises(RecommendError, match="max_vram_gb"):
        recommend(store, "standard", constraints=Constraints(max_vram_gb=-1))


def test_same_database_and_weights_give_the_same_decision(store):
    make_run(store, "standard", {"a": figures(0.7, 300, noise=0.3), "b": figures(0.6, 280, noise=0.3, seed=2)})
    one = recommend(store, "standard").as_dict()
    two = recommend(store, "standard").as_dict()
    assert json.dumps(one, sort_keys=True, default=str) == json.dumps(two, sort_keys=True, default=str)


def test_saved_decisions_keep_weights_constraints_and_verdict(store):
    make_run(store, "standard", {"a": figures(0.9, 200), "b": figures(0.5, 400)})
    d = recommend(store, "standard", weights={"quality": 2, "ttft": 1}, constraints=Constraints(min_quality=0.1))
    decision_id = save_decision(store, d, "board meeting")
    saved = saved_decisions(store, "standard").iloc[0]
    assert saved.decision_id == decision_id and saved.verdict == "a" and saved["name"] == "board meeting"
    assert json.loads(saved.weights_json) == {"quality": 2, "ttft": 1}
    assert json.loads(saved.constraints_json) == {"min_quality": 0.1}
    with pytest.raises(RecommendError, match="name"):
        save_decision(store, d, "  ")


def test_fewer_cases_than_the_minimum_name_no_winner_and_say_why(store):
    from engine.recommend import MIN_CASES

    few = {c: [(0.9, 200, 800, 80)] for c in CASES[:5]}
    worse = {c: [(0.1, 400, 1600, 40)] for c in CASES[:5]}
    make_run(store, "standard", {"a": few, "b": worse}, category=lambda c: "knowledge" if c < "c03" else "coding")
    d = recommend(store, "standard")
    assert d.ranking.iloc[0].model_spec == "a" and d.ranking.iloc[0].p_first > 0.95  # dominant, yet:
    assert d.verdict == TOO_CLOSE
    assert d.more_cases["note"] == f"only 5 cases: a winner needs at least {MIN_CASES}, whatever the resamples say"
    assert set(d.categories.winner) == {f"—, did not decide: too few cases (< {MIN_CASES})"}  # 3 and 2 cases
    assert any(w.startswith("only 5 cases") for w in d.warnings)


def test_a_busy_host_does_not_decide_on_timings_unless_trusted(store):
    busy = {"gpus": [], "load": {"busy": True, "others_cpu_pct_median": 74.0}}
    # b is better on quality, a much faster: on a busy host only quality decides
    make_run(store, "standard", {"a": figures(0.5, 100, 400, 80), "b": figures(0.6, 900, 3000, 20)}, host=busy)
    from engine import report

    d = recommend(store, "standard", weights={"quality": 0.3, "ttft": 0.7})
    assert d.weights == {"quality": 1.0} and d.timings["left_out"] == ["ttft"] and not d.timings["trusted"]
    assert "timings cannot decide" in d.dropped_criteria["ttft"] and "74%" in d.dropped_criteria["ttft"]
    assert d.verdict == "b"
    said = report.verdict_text(d, "en")
    assert said.startswith("Recommended: b") and "Decided on Quality only: Time to first token left out" in said
    assert "74% of the CPU" in said and "--trust-timings" in said
    assert "仅依据回答质量作出结论" in report.verdict_text(d, "zh")
    # trusted anyway: the timings decide, and the summary says so at the top, beside the verdict
    t = recommend(store, "standard", weights={"quality": 0.3, "ttft": 0.7}, trust_timings=True)
    assert t.verdict == "a" and t.timings["trusted_by_user"] and t.weights["ttft"] == pytest.approx(0.7)
    md = report.render(t, "md").decode()
    assert md.index("Timings weighed at your request, although run") < md.index(f"### {report.t('rep_why')}")
    assert [w for w in t.warnings if "timings carry 70% of the weight" in w]
    # quality alone: the busy host does not bear on this verdict
    q = recommend(store, "standard", weights={"quality": 1})
    assert q.timings["left_out"] == [] and not q.timings["note"] and not [w for w in q.warnings if "busy" in w]
    # nothing but timings weighed: a clear message, not a verdict on noise
    with pytest.raises(RecommendError, match="only timing criteria carry weight.*--trust-timings"):
        recommend(store, "standard", weights={"ttft": 1})


def test_models_timed_on_different_machines_do_not_decide_on_timings(store):
    make_run(store, "standard", {"a": figures(0.5, 100)}, host={"gpus": [], "hostname": "laptop"})
    make_run(store, "standard", {"b": figures(0.5, 900)}, host={"gpus": [], "hostname": "gpu-box"})
    d = recommend(store, "standard", weights={"quality": 0.5, "ttft": 0.5})
    assert d.timings["left_out"] == ["ttft"] and d.verdict == TOO_CLOSE
    assert "timed on different machines (a on laptop; b on gpu-box)" in d.timings["problems"][0]
    assert recommend(store, "standard", weights={"quality": 0.5, "ttft": 0.5}, trust_timings=True).verdict == "a"


@pytest.mark.parametrize("p", [0.5, 1.0, 1.2, 0.3])
def test_a_threshold_outside_the_open_interval_is_refused(store, p):
    make_run(store, "standard", {"a": figures(0.5, 100), "b": figures(0.6, 100)})
    with pytest.raises(RecommendError, match=f"p_threshold: must be above 0.5 and below 1.*got {p}"):
        recommend(store, "standard", p_threshold=p)


def test_two_level_resampling_carries_the_spread_between_repeats():
    rng = np.random.default_rng(5)
    cases, repeats = 30, 4
    # the same case means for both models; each repeat scattered around its case's mean by +-40%
    means = rng.uniform(200, 400, cases)
    x3 = means[None, :, None] * (1 + 0.4 * rng.standard_normal((2, cases, repeats)))
    x = x3.mean(axis=2)
    one = compare_per_case(x, ["a", "b"], "lower", seed=1)
    two = compare_per_case(x, ["a", "b"], "lower", seed=1, x3=x3)
    width = lambda r: r["diff_ci"][1] - r["diff_ci"][0]  # noqa: E731
    assert width(two) > 1.2 * width(one)  # the repeats' spread widens the interval of the difference
    assert two["values"] == one["values"]  # the point figures are the case means either way
    # one repeat per case: exactly the one-level bootstrap
    single = compare_per_case(x, ["a", "b"], "lower", seed=1, x3=x[:, :, None])
    assert single == one


def test_human_votes_are_a_criterion_with_an_interval_weighed_only_when_asked(store):
    from datetime import datetime

    from engine import report

    make_run(store, "standard", {"a": figures(0.9, 200, 800, 80), "b": figures(0.85, 210, 820, 78)})
    # raters prefer b on 24 of 30 cases, a on 6
    store.insert_rows("ab_votes", [{
        "scenario_id": "standard", "case_id": c, "turn": 0, "left_run_id": "r", "left_model": "a",
        "right_run_id": "r", "right_model": "b", "vote": "right" if i < 24 else "left",
        "rater": ["ana", "bo"][i % 2], "created_at": datetime(2026, 1, 1)} for i, c in enumerate(CASES)])
    plain = recommend(store, "standard")
    assert "preference" not in plain.weights  # weight 0 unless chosen: nothing changes unasked
    values = plain.criteria.set_index(["model_spec", "criterion"]).value
    assert values["b", "preference"] == pytest.approx(24 / 30) and values["a", "preference"] == pytest.approx(6 / 30)
    chosen = recommend(store, "standard", weights={"preference": 1.0})
    assert chosen.verdict == "b" and chosen.ranking.set_index("model_spec").p_first["b"] > 0.99
    assert plain.human_votes() == {"votes": 30, "cases": 30, "raters": ["ana", "bo"]}
    assert "30 blind A/B votes on 30 cases by ana, bo" in report.render(chosen, "md").decode()
    assert "人工偏好" in report.render(chosen, "md", "zh").decode()


def test_a_timing_limit_on_a_busy_host_is_not_applied_and_says_so_on_every_surface(store, cli_env):
    """A TTFT limit on timings refused as busy used to exclude a model on those numbers with no word. Now
    the model stays eligible and the verdict carries the warning: the decision, --json warnings and
    ranking[].eligible, the CLI text, and the memo, in English and 中文."""
    from engine import Store, report
    from engine.recommend import Constraints
    from tests.test_cli import cli

    busy = {"gpus": [], "load": {"busy": True, "others_cpu_pct_median": 74.0}}
    cli_store = Store(cli_env["MODELPICK_DB"])
    for s in (store, cli_store):
        # b is better on quality and its (busy) first tokens are slow: a 500 ms limit would exclude it
        make_run(s, "standard", {"a": figures(0.5, 100, 400, 80), "b": figures(0.6, 900, 3000, 20)}, host=busy)
    d = recommend(store, "standard", constraints=Constraints(ttft_p95_ms=500))
    assert d.ranking.set_index("model_spec").eligible.to_dict() == {"a": True, "b": True}
    assert d.verdict == "b"
    assert any("timing limit not applied" in str(w) and "untrusted on this host" in str(w) for w in d.warnings)
    # trusted anyway: the limit applies and excludes b
    t = recommend(store, "standard", constraints=Constraints(ttft_p95_ms=500), trust_timings=True)
    assert t.ranking.set_index("model_spec").eligible.to_dict() == {"a": True, "b": False}
    js = json.loads(cli("recommend", "--scenario", "standard", "--ttft-sla-ms", "500", "--json", env=cli_env).stdout)
    assert {r["model_spec"]: r["eligible"] for r in js["ranking"]} == {"a": True, "b": True}
    assert any("timing limit not applied" in w for w in js["warnings"]) and "reasons" in js["ranking"][0]
    text = cli("recommend", "--scenario", "standard", "--ttft-sla-ms", "500", env=cli_env).stdout
    assert "warning: timing limit not applied" in text
    assert "timing limit not applied" in report.render(d, "md").decode()
    assert "未应用时间限制" in report.render(d, "md", "zh").decode()
