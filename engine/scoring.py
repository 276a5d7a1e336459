"""Quality scores: a weighted check score per case, and per model and category the mean
with a bootstrap 95% confidence interval over cases and repeats."""
from __future__ import annotations

import numpy as np
import pandas as pd

# The star rows of the use case's decision table, from categories and languages.
STAR_ROWS = {
    "knowledge": ("category", "knowledge"),
    "chinese_fluency": ("lang", "zh"),
    "english": ("lang", "en"),
    "instruction_following": ("category", "instruction_following"),
    "coding": ("category", "coding"),
    "multi_turn": ("category", "multi_turn"),
}
_KEYS = ["run_id", "model_spec", "case_id", "repeat", "turn"]


def case_scores(gens: pd.DataFrame, checks: pd.DataFrame, cases_lang: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per model, case and repeat: weighted check score over its turns, 0..1."""
    if checks.empty:
        return pd.DataFrame(columns=["model_spec", "case_id", "repeat", "category", "lang", "score"])
    c = checks.assign(ws=checks.score * checks.weight)
    per = c.groupby(["run_id", "model_spec", "case_id", "repeat"]).agg(ws=("ws", "sum"), w=("weight", "sum"))
    per = per[per.w > 0].assign(score=lambda d: d.ws / d.w).reset_index()
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


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the mean."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (float("nan"),) * 3
    if arr.size == 1:
        return float(arr[0]), float(arr[0]), float(arr[0])
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(arr.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def category_scores(scores: pd.DataFrame, by: str = "category", n_boot: int = 2000) -> pd.DataFrame:
    """Per model and group (`category` or `lang`): mean case score with a 95% CI and n."""
    rows = []
    for (model, group), part in scores.dropna(subset=[by]).groupby(["model_spec", by]):
        mean, low, high = bootstrap_ci(part.score, n_boot)
        rows.append({"model_spec": model, by: group, "score": mean, "ci_low": low, "ci_high": high,
                     "n": len(part)})
    return pd.DataFrame(rows, columns=["model_spec", by, "score", "ci_low", "ci_high", "n"])


def star_rows(scores: pd.DataFrame, n_boot: int = 2000) -> pd.DataFrame:
    """The use case's star rows per model: score, CI and stars (1 + 4 x score)."""
    rows = []
    for model, part in scores.groupby("model_spec"):
        for row, (column, value) in STAR_ROWS.items():
            sub = part[part[column] == value]
            if sub.empty:
                continue
            mean, low, high = bootstrap_ci(sub.score, n_boot)
            rows.append({"model_spec": model, "row": row, "score": mean, "ci_low": low, "ci_high": high,
                         "stars": 1 + 4 * mean, "n": len(sub)})
    return pd.DataFrame(rows, columns=["model_spec", "row", "score", "ci_low", "ci_high", "stars", "n"])
