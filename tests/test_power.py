"""The smallest quality difference a scenario's cases can tell apart."""
import math

import pytest

from engine import RunConfig, Runner, load_scenario
from engine.power import ASSUMED_SD, min_detectable_difference, power_table


def test_the_minimum_detectable_difference_by_hand():
    # (1.96 + 0.8416) * 0.4 / sqrt(40) = 0.1772
    assert min_detectable_difference(40, 0.4) == pytest.approx(2.8016 * 0.4 / math.sqrt(40), abs=1e-4)
    assert min_detectable_difference(40, 0.4) == pytest.approx(0.1772, abs=1e-4)
    assert min_detectable_difference(10, 0.4) == pytest.approx(2 * min_detectable_difference(40, 0.4), rel=1e-9)


def test_before_any_run_the_assumption_is_stated_then_the_observed_spread_is_used(store):
    sc = load_scenario("standard")
    before = power_table(sc, store).set_index("category")
    assert before.loc["all", "cases"] == len(sc.cases) and set(before.spread_source) == {"assumed"}
    assert before.loc["all", "spread_sd"] == ASSUMED_SD
    assert before.loc["all", "min_detectable_difference"] == round(min_detectable_difference(len(sc.cases), 0.4), 3)
    assert before.loc["coding", "cases"] == sum(c.category == "coding" for c in sc.cases)
    # a fixed answer of its own passes some cases' checks, flaky's echoes and failures none: a spread
    Runner(store).run(RunConfig(sc, ["fake/judge-first", "fake/flaky"]))
    after = power_table(sc, store).set_index("category")
    assert after.loc["all", "spread_source"] == "observed"
    assert "fake/flaky vs fake/judge-first" in after.loc["all", "spread_basis"] or \
        "fake/judge-first vs fake/flaky" in after.loc["all", "spread_basis"]
    assert after.loc["all", "spread_sd"] != ASSUMED_SD
