"""How small a quality difference a scenario's cases can tell apart.

For two models answering the same n cases, the paired difference of their case scores
(0..1) has some spread sd. A difference d is detected (two-sided 5% level, 80% power) when
d >= (1.96 + 0.84) * sd / sqrt(n): the minimum detectable difference. The spread is taken
from the runs of the scenario (the two models with most cases in common, latest run of each)
once they exist, and before any run from a stated assumption (ASSUMED_SD, the spread of
case differences when two models disagree on about a sixth of pass/fail cases)."""
from __future__ import annotations

import math

import pandas as pd

from .scenarios import Scenario
from .store import Store

Z = 1.96 + 0.8416  # two-sided alpha 0.05, power 0.8
ASSUMED_SD = 0.4


def min_detectable_difference(n: int, sd: float) -> float | None:
    return Z * sd / math.sqrt(n) if n > 0 else None


def observed_differences(store: Store, scenario_id: str) -> tuple[pd.DataFrame, str | None]:
    """Per case: the score difference between the two models with most cases in common
    (latest run of each), with its category; and which pair that was."""
    from .recommend import load_results
    from .scoring import case_scores

    gens, checks = load_results(store, scenario_id=scenario_id)
    if gens.empty:
        return pd.DataFrame(columns=["case_id", "category", "diff"]), None
    scores = case_scores(gens, checks).groupby(["model_spec", "case_id", "category"]).score.mean().reset_index()
    wide = scores.pivot_table(index=["case_id", "category"], columns="model_spec", values="score")
    if wide.shape[1] < 2:
        return pd.DataFrame(columns=["case_id", "category", "diff"]), None
    counts = wide.notna().sum().sort_values(ascending=False)
    a, b = counts.index[0], counts.index[1]
    both = wide[[a, b]].dropna()
    out = both.assign(diff=both[a] - both[b]).reset_index()[["case_id", "category", "diff"]]
    return out, f"{a} vs {b}"


def power_table(scenario: Scenario, store: Store | None = None) -> pd.DataFrame:
    """Per category and for the whole scenario: cases, the spread used, where it comes
    from, and the minimum detectable quality difference."""
    diffs, pair = observed_differences(store, scenario.id) if store is not None else (pd.DataFrame(), None)
    overall_sd = float(diffs["diff"].std(ddof=1)) if len(diffs) >= 3 else None
    counts = pd.Series([c.category for c in scenario.cases]).value_counts(sort=False)
    rows = []
    for category, n in [*counts.items(), ("all", len(scenario.cases))]:
        mine = diffs if category == "all" or diffs.empty else diffs[diffs.category == category]
        sd, source, basis = ASSUMED_SD, "assumed", ""
        if len(mine) >= 3 and float(mine["diff"].std(ddof=1)) > 0:
            sd, source, basis = float(mine["diff"].std(ddof=1)), "observed", f"{pair} · {len(mine)}"
        elif overall_sd:
            sd, source, basis = overall_sd, "observed", f"{pair} · {len(diffs)}"
        mdd = min_detectable_difference(int(n), float(sd))
        # the answer first, what it rests on after it (the basis names two models and can be long)
        rows.append({"category": category, "cases": int(n),
                     "min_detectable_difference": None if mdd is None else round(mdd, 3),
                     "spread_sd": round(float(sd), 3), "spread_source": source, "spread_basis": basis})
    return pd.DataFrame(rows)
