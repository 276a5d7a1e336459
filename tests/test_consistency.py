"""Consistency: τ-bench's pass^k over a case's repeats, as a criterion resampled by case like quality;
one repeat says that consistency needs repeats instead of a number."""
import json

import pytest

from engine.criteria import pass_curve, pass_hat_k
from engine.recommend import RecommendError, recommend
from engine.scoring import case_scores
from tests.conftest import make_run
from tests.test_cli import cli


def test_pass_hat_k_is_taus_estimator():
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(4, 3, 1) == 0.75
    assert pass_hat_k(4, 3, 2) == pytest.approx(3 / 6)  # C(3,2)/C(4,2)
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(3, 1, 2) == 0.0
    assert pass_hat_k(2, 2, 3) != pass_hat_k(2, 2, 3)  # fewer tries than k: no value (NaN)


def _figures(pattern: dict[str, list[float]], cases: int = 12) -> dict:
    return {m: {f"c{i:02d}": [(s, 100.0, 900.0, 30.0) for s in scores] for i in range(cases)}
            for m, scores in pattern.items()}


def _values(d, criterion: str) -> dict:
    rows = d.criteria[d.criteria.criterion == criterion]
    return {m: round(float(v), 6) for m, v in zip(rows.model_spec, rows.value)}


def test_a_model_right_only_some_of_the_time_loses_on_consistency_not_on_mean_quality(store):
    """`steady` is right on every try of 8 cases of 12 and wrong on the rest; `flaky` is right on 2 tries of
    3 everywhere. Mean quality is the same (2/3); pass^3 is 8/12 against 0."""
    steady = {f"c{i:02d}": [(1.0 if i < 8 else 0.0, 100.0, 900.0, 30.0)] * 3 for i in range(12)}
    flaky = {f"c{i:02d}": [(1.0, 100.0, 900.0, 30.0), (1.0, 100.0, 900.0, 30.0), (0.0, 100.0, 900.0, 30.0)]
             for i in range(12)}
    run = make_run(store, "customer-service", {"fake/steady": steady, "fake/flaky": flaky})
    d = recommend(store, "customer-service", weights={"consistency": 1.0})
    assert _values(d, "consistency") == {"fake/steady": round(8 / 12, 6), "fake/flaky": 0.0}
    assert d.verdict == "fake/steady"
    q = recommend(store, "customer-service", weights={"quality": 1.0})
    assert _values(q, "quality") == {"fake/steady": round(2 / 3, 6), "fake/flaky": round(2 / 3, 6)}
    # --pass-k 1 is the mean success: the two are level
    one = recommend(store, "customer-service", weights={"consistency": 1.0}, pass_k=1)
    assert _values(one, "consistency") == {"fake/steady": round(2 / 3, 6), "fake/flaky": round(2 / 3, 6)}
    # the curve pass^1..pass^3 per model
    scores = case_scores(store.generations(run), store.query("SELECT * FROM check_results"))
    assert pass_curve(scores, "fake/flaky") == pytest.approx({1: 2 / 3, 2: 1 / 3, 3: 0.0})
    assert pass_curve(scores, "fake/steady") == pytest.approx({1: 2 / 3, 2: 2 / 3, 3: 2 / 3})
    with pytest.raises(RecommendError, match="pass_k"):
        recommend(store, "customer-service", weights={"consistency": 1.0}, pass_k=0)


def test_one_repeat_says_consistency_needs_repeats_on_every_surface(cli_env):
    from engine.store import Store

    store = Store(cli_env["MODELPICK_DB"])
    make_run(store, "customer-service", _figures({"fake/a": [1.0], "fake/b": [0.0]}))
    d = recommend(store, "customer-service", weights={"quality": 1.0, "consistency": 1.0})
    assert "consistency" in d.dropped_criteria and "needs repeats" in str(d.dropped_criteria["consistency"])
    out = cli("recommend", "--scenario", "customer-service", "--weights", "quality=1,consistency=1", env=cli_env)
    assert "not weighed: consistency" in out.stdout or "consistency needs repeats" in out.stdout, out.stdout
    js = json.loads(cli("recommend", "--scenario", "customer-service", "--weights", "quality=1,consistency=1",
                        "--json", env=cli_env).stdout)
    assert "needs repeats" in json.dumps(js["dropped_criteria"])
