"""The judge is measured, not trusted: its pairwise verdicts against the raters' blind A/B votes
(share agreeing and Cohen's kappa with bootstrap intervals), and a judge no better than chance has
its scores left out of the verdict unless kept."""
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from engine.ratings import judge_agreement
from engine.recommend import TOO_CLOSE, recommend
from tests.conftest import make_run

CASES = [f"c{i:02d}" for i in range(12)]


def votes_frame(prefers: dict[str, str], rater: str = "ana") -> pd.DataFrame:
    """One vote per case between a (left) and b (right): prefers[case] is "a", "b" or "tie"."""
    vote = {"a": "left", "b": "right", "tie": "tie"}
    return pd.DataFrame([{"scenario_id": "standard", "case_id": c, "turn": 0, "left_run_id": "r", "left_model": "a",
                          "right_run_id": "r", "right_model": "b", "vote": vote[p], "rater": rater,
                          "created_at": datetime(2026, 1, 1)} for c, p in prefers.items()])


def pairs_frame(prefers: dict[str, str], judge: str = "fake/j", run_id: str = "r") -> pd.DataFrame:
    """The judge's verdicts with b as model_1 (the orientation differs from the votes on purpose)."""
    share_b = {"a": 0.0, "b": 1.0, "tie": 0.5}
    return pd.DataFrame([{"run_id": run_id, "case_id": c, "turn": 0, "judge_spec": judge, "model_1": "b",
                          "model_2": "a", "score_1": share_b[p], "winner_12": None, "winner_21": None,
                          "raw_12": "", "raw_21": "", "created_at": datetime(2026, 1, 1)} for c, p in prefers.items()])


def test_a_judge_that_agrees_is_measured_with_intervals_per_language():
    rng = np.random.default_rng(3)
    human = {c: rng.choice(["a", "b", "tie"]) for c in CASES}
    judged = dict(human, c00="b" if human["c00"] != "b" else "a")  # one disagreement in twelve
    langs = {c: ("zh" if i % 2 else "en") for i, c in enumerate(CASES)}
    a = judge_agreement(votes_frame(human), pairs_frame(judged), langs)["fake/j"]
    assert a["cases"] == 12 and a["share"] == pytest.approx(11 / 12)
    assert a["kappa"] > 0.7 and 0 < a["kappa_ci"][0] <= a["kappa"] <= a["kappa_ci"][1] and not a["chance"]
    assert a["share_ci"][0] < a["share"] <= a["share_ci"][1]
    assert set(a["per_lang"]) == {"en", "zh"} and a["per_lang"]["zh"]["cases"] == 6


def test_a_judge_no_better_than_chance_is_labelled_so():
    rng = np.random.default_rng(4)
    cases = [f"c{i:02d}" for i in range(40)]
    human = {c: rng.choice(["a", "b"]) for c in cases}
    coin = {c: rng.choice(["a", "b"]) for c in cases}
    a = judge_agreement(votes_frame(human), pairs_frame(coin))["fake/j"]
    assert a["chance"] and a["kappa_ci"][0] <= 0 <= a["kappa_ci"][1]


def test_too_few_shared_cases_or_other_cases_give_no_figure():
    few = judge_agreement(votes_frame({c: "a" for c in CASES[:4]}), pairs_frame({c: "a" for c in CASES}))["fake/j"]
    assert few["share"] is None and few["kappa"] is None and few["problem"][0] == "agree_too_few"
    other = judge_agreement(votes_frame({c: "a" for c in CASES[:6]}),
                            pairs_frame({c: "a" for c in CASES[6:]}))["fake/j"]
    assert other["share"] is None and other["problem"] == ("agree_no_shared", {"judged": 6, "voted": 6})


RATERS = {c: "b" if i % 4 else "tie" for i, c in enumerate(CASES)}  # b, or a tie on every fourth case


def judged_run(store, judge_prefers: dict) -> str:
    """Both models equal on their contains checks; the llm_judge checks give a 1 and b 0; the raters
    vote as RATERS, and the judge's pairwise verdicts are `judge_prefers`."""
    figures = {m: {c: [(0.5, 300.0, 1000.0, 50.0)] for c in CASES} for m in ("a", "b")}
    run_id = make_run(store, "standard", figures)
    store.update_run_config(run_id, {"judge": "fake/j"})
    store.insert_rows("check_results", [
        {"run_id": run_id, "model_spec": m, "case_id": c, "repeat": 0, "turn": 0, "check_type": "llm_judge",
         "passed": m == "a", "score": 1.0 if m == "a" else 0.0, "weight": 1.0, "detail": "judged"}
        for m in ("a", "b") for c in CASES])
    store.insert_rows("ab_votes", votes_frame(RATERS).assign(left_run_id=run_id, right_run_id=run_id)
                      .to_dict("records"))
    store.insert_rows("judge_pairs", pairs_frame(judge_prefers, run_id=run_id).to_dict("records"))
    return run_id


def test_a_chance_judge_is_left_out_of_the_verdict_unless_kept(store):
    judged_run(store, {c: "a" for c in CASES})  # always a, where the raters prefer b: no better than chance
    d = recommend(store, "standard", weights={"quality": 1.0})
    assert d.judge["left_out"] == ["fake/j"] and d.verdict == TOO_CLOSE  # the contains checks alone: a tie
    quality = d.criteria[d.criteria.criterion == "quality"].set_index("model_spec").value
    assert quality["a"] == quality["b"] == 0.5  # the point figures too, not only the resamples
    said = " ".join(d.warnings)
    assert "no better than chance" in said and "scores of fake/j left out of the verdict" in said
    kept = recommend(store, "standard", weights={"quality": 1.0}, keep_judge=True)
    assert kept.judge["left_out"] == [] and kept.judge["kept"] and kept.verdict == "a"


def test_a_judge_that_agrees_with_the_raters_stays_and_is_said_beside_the_verdict(store):
    judged_run(store, dict(RATERS, c01="tie"))  # as the raters, but for one case
    d = recommend(store, "standard", weights={"quality": 1.0})
    assert d.judge["left_out"] == [] and d.verdict == "a"  # its rubric scores favour a
    (said,) = [w for w in d.warnings if "agrees with your raters" in w]
    assert "fake/j agrees with your raters 92% of the time" in said and "12 cases" in said
    assert d.as_dict()["judge"]["agreement"]["fake/j"]["kappa"] > 0.7
