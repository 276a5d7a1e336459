"""Quality: the weighted check score of each model, case and repeat (0..1). Intervals and
verdicts on these scores are engine.recommend's."""
from __future__ import annotations

import pandas as pd

_KEYS = ["run_id", "model_spec", "case_id", "repeat", "turn"]


def case_scores(gens: pd.DataFrame, checks: pd.DataFrame,
                cases_lang: dict[str, str | None] | None = None) -> pd.DataFrame:
    """One row per model, case and repeat: weighted check score over its turns, 0..1."""
    if checks.empty:
        return pd.DataFrame(columns=["model_spec", "case_id", "repeat", "category", "lang", "score"])
    c = checks.assign(ws=checks.score * checks.weight)
    # a critical check that failed (a refund the policy forbids, an invented price) scores the case 0
    failed = ~c.passed.astype(bool) & (c.critical.fillna(False).astype(bool) if "critical" in c else False)
    c = c.assign(veto=failed)
    per = c.groupby(["run_id", "model_spec", "case_id", "repeat"]).agg(ws=("ws", "sum"), w=("weight", "sum"),
                                                                       veto=("veto", "any"))
    per = per[per.w > 0].assign(score=lambda d: (d.ws / d.w).where(~d.veto, 0.0)).reset_index()
    cats = gens.drop_duplicates(["run_id", "model_spec", "case_id"])[["run_id", "model_spec", "case_id", "category"]]
    per = per.merge(cats, on=["run_id", "model_spec", "case_id"], how="left")
    langs = cases_lang or {}
    per["lang"] = [langs.get(c) or _lang_from_id(c) for c in per.case_id]
    return per[["run_id", "model_spec", "case_id", "repeat", "category", "lang", "score"]]


def _lang_from_id(case_id: str) -> str | None:
    for lang in ("zh", "en"):
        if case_id.endswith(f"-{lang}") or f"-{lang}-" in case_id:
            return lang
    return None
