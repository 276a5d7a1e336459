"""The verdict: which model, for this scenario, at what cost, how sure, and what would
change it. Every page, the command line and the export call `recommend()`; nothing else
names a winner.

Statistics: the unit of resampling is the case. A case's repeats and turns are averaged
into one value per model, and every bootstrap draw resamples the same cases for all
models (paired). A per-metric winner is named only where the bootstrap interval of the
difference to the runner-up excludes zero; otherwise the row says "tie".
"""
from __future__ import annotations

import contextlib
import json
import math
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import cost as costmod
from .catalog import entry_for_spec, with_server_facts
from .criteria import CRITERIA, PER_CASE, PER_MODEL, TIMING, Frames
from .criteria import REGISTRY as CRITERION_REGISTRY
from .i18n import Joined, Msg
from .scenarios import ScenarioError, load_scenario
from .scoring import _lang_from_id, case_scores
from .store import Store, run_facts, utcnow

# criterion -> (better, unit, what is measured), from the criteria's registry (engine/criteria.py)
CRITERION_INFO = {c: (k.better, k.unit, k.measures) for c, k in CRITERION_REGISTRY.items()}
STAT = {c: k.stat for c, k in CRITERION_REGISTRY.items() if k.stat != "mean"}
NORMALISATION = ("per criterion the best eligible model scores 1; higher-is-better values are divided by "
                 "the best, lower-is-better values invert (best / value); the score is the weighted sum")
SINGLE_SAMPLE_MARGIN = 0.2  # one measurement per model: a winner only beyond a 20% difference
TOO_CLOSE = "too close to call"
# Fewer cases than this name no winner, for a scenario or a category: with so few, one lucky case
# moves the verdict (README, "Certainty").
MIN_CASES = 10
NO_ELIGIBLE = "no model meets the constraints"


class RecommendError(ValueError):
    """Bad input to a recommendation; the message names the value."""


@dataclass
class Constraints:
    max_vram_gb: float | None = None
    ttft_p95_ms: float | None = None
    e2e_p95_ms: float | None = None
    licences: list[str] | None = None
    min_quality: float | None = None

    def validate(self) -> None:
        for name in ("max_vram_gb", "ttft_p95_ms", "e2e_p95_ms"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise RecommendError(f"{name}: must be > 0, got {v}")
        if self.min_quality is not None and not 0 <= self.min_quality <= 1:
            raise RecommendError(f"min_quality: must be between 0 and 1, got {self.min_quality}")

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class CostInputs:
    gpu: str | None = None  # None: each model on the cheapest GPU that fits it
    currency: str = "USD"
    concurrency: int = 1
    context_tokens: int | None = None  # None: the runs' context (n_ctx), else 4096
    cny_per_usd: float | None = None
    traffic: costmod.Traffic = field(default_factory=costmod.Traffic)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "traffic" and v is not None}
        d.update(self.traffic.__dict__)
        return d


def parse_weights(text: str | None) -> dict[str, float] | None:
    """`quality=0.5,ttft=0.2` -> {"quality": 0.5, "ttft": 0.2}; errors name the part."""
    if text is None:
        return None
    out = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise RecommendError(f"weights: {part!r} is not criterion=number")
        if name not in CRITERIA:
            raise RecommendError(f"weights: unknown criterion {name!r} (known: {', '.join(CRITERIA)})")
        try:
            out[name] = float(value)
        except ValueError:
            raise RecommendError(f"weights: {name}={value!r} is not a number") from None
    return check_weights(out)


def scenario_weights(scenario_id: str) -> dict[str, float]:
    """A scenario's default weights; quality alone where the scenario file is gone."""
    try:
        return dict(load_scenario(scenario_id).weights)
    except ScenarioError:
        return {"quality": 1.0}


VERDICT_LABELS = {TOO_CLOSE: "rec_too_close_short", NO_ELIGIBLE: "rec_no_eligible_short"}


def verdict_label(verdict: str, lang: str = "en") -> str | None:
    """A verdict that names no model, in words (None for a model's spec)."""
    from .i18n import t

    return t(VERDICT_LABELS[verdict], lang) if verdict in VERDICT_LABELS else None


def check_weights(weights: dict[str, float]) -> dict[str, float]:
    for name, w in weights.items():
        if name not in CRITERIA:
            raise RecommendError(f"weights: unknown criterion {name!r} (known: {', '.join(CRITERIA)})")
        if not math.isfinite(w) or w < 0:
            raise RecommendError(f"weights: {name}={w} must be a number >= 0")
    if sum(weights.values()) <= 0:
        raise RecommendError("weights: they sum to zero; give at least one criterion a positive weight")
    return weights


# --- evidence ----------------------------------------------------------------------
@dataclass
class Evidence:
    scenario_id: str
    models: list[str]
    cases: list[str]
    per_case: dict[str, np.ndarray]  # criterion -> (models, cases), NaN where missing
    output_tokens: np.ndarray  # (models, cases)
    case_meta: pd.DataFrame  # case_id, category, lang
    gens: pd.DataFrame
    checks: pd.DataFrame
    runs: list[dict]
    votes: pd.DataFrame = field(default_factory=pd.DataFrame)  # the blind A/B votes between these models
    # criterion -> (models, cases, repeats): each repeat's value (its turns averaged), NaN where a
    # repeat is missing; the bootstrap resamples a drawn case's repeats from here (two-level)
    per_repeat: dict[str, np.ndarray] = field(default_factory=dict)
    # the pairwise verdicts of judges on these runs (engine.judging), to measure them against the votes
    judge_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    pass_k: int | None = None  # k of the consistency criterion (None: the repeats run)

    def index(self, model: str) -> int:
        return self.models.index(model)


_LATEST_PER_MODEL = """
WITH last AS (
    SELECT g.model_spec, arg_max(g.run_id, r.started_at) AS run_id
    FROM generations g JOIN runs r USING (run_id)
    WHERE r.scenario_id = ? AND coalesce(r.config_json->>'cache_mode', 'cold') = ?
    GROUP BY g.model_spec)
SELECT g.* FROM generations g JOIN last USING (model_spec, run_id)
ORDER BY g.model_spec, g.case_id, g.repeat, g.turn
"""


def load_results(store: Store, run_id: str | None = None, scenario_id: str | None = None,
                 cache_mode: str = "cold") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(generations, check_results) of one run, or of the latest run of each model for a
    scenario among the runs of that prompt-cache mode (cold unless warm is asked; runs from
    before the mode was recorded count as cold)."""
    if run_id:
        if store.get_run(run_id) is None:
            raise RecommendError(f"no run {run_id!r} in {store.path}")
        return store.generations(run_id), store.check_results(run_id)
    if not scenario_id:
        raise RecommendError("give a run id or a scenario id")
    gens = store.query(_LATEST_PER_MODEL, [scenario_id, cache_mode])
    pairs = gens[["run_id", "model_spec"]].drop_duplicates()
    checks = store.query(
        "SELECT c.* FROM check_results c JOIN (SELECT unnest(?::VARCHAR[]) AS run_id, "
        "unnest(?::VARCHAR[]) AS model_spec) p USING (run_id, model_spec) "
        "ORDER BY c.model_spec, c.case_id, c.repeat, c.turn",
        [pairs.run_id.tolist(), pairs.model_spec.tolist()])
    return gens, checks


def _case_langs(scenario_id: str) -> dict[str, str | None]:
    try:
        return {c.id: c.lang for c in load_scenario(scenario_id).cases}
    except ScenarioError:
        return {}


def preference_matrix(votes: pd.DataFrame, models: list[str], cases: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """(models, cases): each model's share of the blind A/B votes it won on the case (a tie half, "both
    bad" no preference), NaN where it has none; and the votes used (between two of these models)."""
    out = np.full((len(models), len(cases)), np.nan)
    if votes is None or votes.empty:
        return out, pd.DataFrame()
    used = votes[votes.left_model.isin(models) & votes.right_model.isin(models) & votes.case_id.isin(cases)
                 & votes.vote.isin(["left", "right", "tie"])]
    won: dict[tuple[str, str], list[float]] = {}
    for r in used.itertuples():
        share = {"left": 1.0, "right": 0.0, "tie": 0.5}[r.vote]
        won.setdefault((r.left_model, r.case_id), []).append(share)
        won.setdefault((r.right_model, r.case_id), []).append(1 - share)
    mi, ci = {m: i for i, m in enumerate(models)}, {c: j for j, c in enumerate(cases)}
    for (m, c), shares in won.items():
        out[mi[m], ci[c]] = float(np.mean(shares))
    return out, used


def evidence_from_frames(gens: pd.DataFrame, checks: pd.DataFrame, scenario_id: str,
                         runs: list[dict] | None = None, langs: dict | None = None,
                         votes: pd.DataFrame | None = None, pass_k: int | None = None) -> Evidence:
    """Per model and case: the mean over repeats and turns of each per-case criterion."""
    langs = _case_langs(scenario_id) if langs is None else langs
    models = sorted(gens.model_spec.unique())
    cases = sorted(gens.case_id.unique())
    scores = case_scores(gens, checks, langs)
    usable = gens[gens.ok & ~gens["exceeds_context"].fillna(False).astype(bool)]

    def matrix(frame: pd.DataFrame, column: str) -> np.ndarray:
        if frame.empty:
            return np.full((len(models), len(cases)), np.nan)
        means = frame.groupby(["model_spec", "case_id"])[column].mean()
        wide = means.unstack("case_id").reindex(index=models, columns=cases)
        return wide.to_numpy(dtype=float)

    n_repeats = int(gens["repeat"].max()) + 1 if len(gens) else 1
    mi, ci = {m: i for i, m in enumerate(models)}, {c: j for j, c in enumerate(cases)}

    def by_repeat(frame: pd.DataFrame, column: str) -> np.ndarray:
        out = np.full((len(models), len(cases), n_repeats), np.nan)
        if frame.empty:
            return out
        # a column may be null on every row (a decode rate of answers that came in one piece): the
        # groups then all drop and the index arrays below would be empty floats, not positions
        means = pd.to_numeric(frame.groupby(["model_spec", "case_id", "repeat"])[column].mean(),
                              errors="coerce").dropna()
        if means.empty:
            return out
        keys = means.index.to_frame(index=False)
        keep = (keys.model_spec.isin(mi) & keys.case_id.isin(ci)).to_numpy()
        keys, vals = keys[keep], means.to_numpy(dtype=float)[keep]
        out[keys.model_spec.map(mi).to_numpy(dtype=int), keys.case_id.map(ci).to_numpy(dtype=int),
            keys["repeat"].to_numpy(dtype=int)] = vals
        return out

    in_context = gens[~gens["exceeds_context"].fillna(False).astype(bool)].assign(
        ok_share=lambda g: g.ok.astype(float))
    preference, used = preference_matrix(votes if votes is not None else pd.DataFrame(), models, cases)
    frames = Frames(scores, usable, preference, matrix, pass_k)
    per_case = {c: CRITERION_REGISTRY[c].value(frames) for c in PER_CASE}
    repeat_frames = Frames(scores, usable, preference[:, :, None], by_repeat, pass_k)
    per_repeat = {c: CRITERION_REGISTRY[c].value(repeat_frames) for c in PER_CASE}
    per_case["ok"] = matrix(in_context, "ok_share")
    meta = gens.drop_duplicates("case_id")[["case_id", "category"]].set_index("case_id").reindex(cases)
    meta["lang"] = [langs.get(c) or _lang_from_id(c) for c in cases]
    return Evidence(scenario_id, models, cases, per_case, matrix(usable, "output_tokens"),
                    meta.reset_index(), gens, checks, runs or [], used, per_repeat, pass_k=pass_k)


def load_evidence(store: Store, scenario_id: str | None = None, run_id: str | None = None,
                  cache_mode: str = "cold", pass_k: int | None = None) -> Evidence:
    if run_id:
        run = store.get_run(run_id)
        if run is None:
            raise RecommendError(f"no run {run_id!r} in {store.path}")
        scenario_id = run["scenario_id"]
    if scenario_id is None:
        raise RecommendError("a scenario or a run is needed")
    known = set(store.query("SELECT DISTINCT scenario_id FROM runs").scenario_id)
    if scenario_id not in known:
        try:
            load_scenario(scenario_id)
        except ScenarioError as exc:
            raise RecommendError(str(exc)) from None
        raise RecommendError(f"scenario {scenario_id!r} has no runs in {store.path}: run it first "
                             f"(python -m engine run --scenario {scenario_id} --model ...)")
    gens, checks = load_results(store, run_id=run_id, scenario_id=None if run_id else scenario_id,
                                cache_mode=cache_mode)
    if gens.empty:
        other = "warm" if cache_mode == "cold" else "cold"
        has_other = not run_id and not load_results(store, scenario_id=scenario_id, cache_mode=other)[0].empty
        raise RecommendError(f"scenario {scenario_id!r}: no {cache_mode} runs with generations in {store.path}"
                             + (f" (it has {other} ones: choose the {other} prompt cache)" if has_other else ""))
    runs = [run for r in sorted(gens.run_id.unique()) if (run := store.get_run(r)) is not None]
    from .ratings import votes

    ev = evidence_from_frames(gens, checks, scenario_id, runs, votes=votes(store, scenario_id), pass_k=pass_k)
    ev.judge_pairs = store.query("SELECT * FROM judge_pairs WHERE list_contains(?::VARCHAR[], run_id)",
                                 [sorted(gens.run_id.unique())])
    return ev


# --- bootstrap ---------------------------------------------------------------------
# Bootstrap draws for every verdict: the Home page, the Recommend page, the command line and the
# summaries show the same P(first) for the same data.
N_BOOT = 1000


def boot_indices(n_cases: int, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_cases, size=(n_boot, n_cases))


def boot_stat(x: np.ndarray, idx: np.ndarray, stat: str = "mean", x3: np.ndarray | None = None,
              seed: int = 0) -> np.ndarray:
    """x (models, cases) -> (models, draws): each model's mean (or median) over the resampled cases.

    With `x3` (models, cases, repeats) holding more than one repeat, the resampling has two levels:
    each draw takes the cases of `idx` and then, within each drawn case, resamples that model's
    repeats (as many as it has), so a timing carries its noise between repeats as well as between
    cases. A case's turns stay together (one value per repeat). With one repeat each, as `x`."""
    if x3 is None or x3.shape[2] <= 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return (np.nanmedian if stat == "median" else np.nanmean)(x[:, idx], axis=2)
    return _two_level(x3, idx, stat, np.random.default_rng([seed, 2]))


def _two_level(x3: np.ndarray, idx: np.ndarray, stat: str, rng: np.random.Generator) -> np.ndarray:
    n_models, n_cases, n_rep = x3.shape
    finite = np.isfinite(x3)
    # each (model, case)'s repeats with values first, in their order (so criteria that share repeats
    # draw the same ones: a generation's TTFT and latency move together)
    order = np.argsort(~finite, axis=2, kind="stable")
    packed = np.take_along_axis(x3, order, axis=2)
    counts = finite.sum(axis=2)  # (models, cases)
    out = np.empty((n_models, idx.shape[0]))
    step = max(1, 4_000_000 // max(1, n_models * idx.shape[1] * n_rep))  # draws per block, memory bounded
    reducer = np.nanmedian if stat == "median" else np.nanmean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for start in range(0, idx.shape[0], step):
            block = idx[start:start + step]  # (b, cases)
            n = counts[:, block][..., None]  # (models, b, cases, 1)
            u = rng.random((n_models, *block.shape, n_rep))
            pos = np.minimum((u * n).astype(np.int64), np.maximum(n - 1, 0))
            vals = np.take_along_axis(packed[:, block, :], pos, axis=3)
            vals[np.arange(n_rep) >= n] = np.nan  # a case with k repeats draws k of them
            out[:, start:start + len(block)] = reducer(np.nanmean(vals, axis=3), axis=2)
    return out


def _nanstat(x, stat: str = "mean"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmedian if stat == "median" else np.nanmean)(x, axis=-1)


def _nanmean(x):
    return _nanstat(x, "mean")


def _ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(s, tail)), float(np.percentile(s, 100 - tail))


def compare_per_case(x: np.ndarray, models: list[str], better: str, n_boot: int = 2000,
                     seed: int = 0, stat: str = "mean", x3: np.ndarray | None = None) -> dict:
    """Per model: the mean (or, for timings, the median) over cases with a 95% CI, cases (and, with
    `x3`, each drawn case's repeats) resampled; the winner when the paired interval of the
    difference to the runner-up (the same resampled cases for both) excludes zero, else "tie"."""
    out: dict[str, Any] = {"values": {}, "ci": {}, "n": {}, "winner": None, "diff_ci": None}
    if x.shape[1] == 0:
        return out
    idx = boot_indices(x.shape[1], n_boot, seed)
    draws = boot_stat(x, idx, stat, x3, seed)
    point = _nanstat(x, stat)
    for i, m in enumerate(models):
        n = int(np.isfinite(x[i]).sum())
        out["n"][m] = n
        out["values"][m] = None if n == 0 else float(point[i])
        out["ci"][m] = (None, None) if n == 0 else _ci(draws[i])
    known = [i for i in range(len(models)) if out["n"][models[i]]]
    if len(known) < 2:
        return out
    sign = 1 if better == "higher" else -1
    order = sorted(known, key=lambda i: -sign * point[i])
    a, b = order[0], order[1]
    both = np.isfinite(x[a]) & np.isfinite(x[b])
    if both.sum() < 2:
        out["winner"] = "tie"
        return out
    pair = x[[a, b]][:, both]
    pdraws = boot_stat(pair, boot_indices(pair.shape[1], n_boot, seed + 1), stat,
                       x3[[a, b]][:, both] if x3 is not None else None, seed + 1)
    low, high = _ci(pdraws[0] - pdraws[1])
    out["diff_ci"] = (low, high)
    out["winner"] = models[a] if (low > 0 or high < 0) else "tie"
    return out


def compare_scalar(samples: dict[str, list[float]], better: str, n_boot: int = 2000, seed: int = 0,
                   min_abs: float = 0.0) -> dict:
    """A figure measured once per run (load time, memory). With several runs per model the
    runs are resampled; with one each a winner needs a difference beyond 20% (and beyond
    `min_abs`, the figure's resolution)."""
    vals = {m: [v for v in s if v is not None and v == v] for m, s in samples.items()}
    out: dict[str, Any] = {"values": {m: (float(np.median(v)) if v else None) for m, v in vals.items()},
           "ci": {}, "n": {m: len(v) for m, v in vals.items()}, "winner": None, "diff_ci": None}
    known = {m: v for m, v in vals.items() if v}
    rng = np.random.default_rng(seed)
    for m, v in known.items():
        out["ci"][m] = _ci(np.array(v)[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1)) \
            if len(v) > 1 else (None, None)
    if len(known) < 2:
        return out
    sign = 1 if better == "higher" else -1
    order = sorted(known, key=lambda m: -sign * out["values"][m])
    a, b = order[0], order[1]
    if min(len(known[a]), len(known[b])) > 1:
        da = np.array(known[a])[rng.integers(0, len(known[a]), (n_boot, len(known[a])))].mean(axis=1)
        db = np.array(known[b])[rng.integers(0, len(known[b]), (n_boot, len(known[b])))].mean(axis=1)
        low, high = _ci(da - db)
        out["diff_ci"] = (low, high)
        out["winner"] = a if (low > 0 or high < 0) else "tie"
    else:
        va, vb = out["values"][a], out["values"][b]
        rel = abs(va - vb) / max(abs(va), abs(vb), 1e-12)
        out["winner"] = a if rel > SINGLE_SAMPLE_MARGIN and abs(va - vb) > min_abs else "tie"
    return out


# --- the decision ------------------------------------------------------------------
@dataclass
class Decision:
    scenario_id: str
    models: list[str]
    weights: dict[str, float]  # normalised, criteria used
    weights_requested: dict[str, float]
    dropped_criteria: dict[str, str]
    constraints: Constraints
    cost_inputs: CostInputs
    criteria: pd.DataFrame  # model_spec, criterion, value, unit, normalised, contribution, source
    ranking: pd.DataFrame  # model_spec, score, p_first, eligible, reasons
    verdict: str  # a model spec, TOO_CLOSE or NO_ELIGIBLE
    margin: float | None
    p_threshold: float
    tie_margin: float
    more_cases: dict
    sensitivity: pd.DataFrame  # criterion, weight, flip_low, flip_high, new_winner_low, ...
    sensitivity_curves: pd.DataFrame
    binding: list[dict]
    table: pd.DataFrame  # the use case's decision table
    categories: pd.DataFrame
    cost: pd.DataFrame
    caveats: list[str]
    reproducibility: dict
    n_cases: int
    n_boot: int
    evidence: Evidence | None = None
    # per model: decode speed against the machine's bandwidth bound (engine.bound)
    hardware: pd.DataFrame = field(default_factory=pd.DataFrame)
    # per model: median TTFT of its latest cold and warm runs, where both exist
    cold_warm: pd.DataFrame = field(default_factory=pd.DataFrame)
    cache_mode: str = "cold"
    # the caveats that bear on the verdict, shown beside it (page, Home, summary)
    warnings: list[str] = field(default_factory=list)
    # whether the timings could decide: {"trusted", "problems", "left_out", "trusted_by_user", "note"}
    timings: dict = field(default_factory=dict)
    # the judges whose checks are in the evidence, against the votes: {"agreement", "scoring", "left_out", "kept"}
    judge: dict = field(default_factory=dict)
    # the raters' stars per model and dimension (engine.ratings.star_summary: the latest per rater)
    stars: pd.DataFrame = field(default_factory=pd.DataFrame)

    def human_votes(self) -> dict:
        """The blind A/B votes behind the preference criterion: how many, on how many cases, by whom."""
        v = self.evidence.votes if self.evidence is not None else pd.DataFrame()
        if v.empty:
            return {"votes": 0, "cases": 0, "raters": []}
        return {"votes": int(len(v)), "cases": int(v.case_id.nunique()),
                "raters": sorted({str(r) for r in v.rater if isinstance(r, str) and r})}

    @property
    def winner(self) -> str | None:
        return self.verdict if self.verdict not in (TOO_CLOSE, NO_ELIGIBLE) else None

    def as_dict(self) -> dict:
        def frame(df: pd.DataFrame) -> list[dict]:
            return [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]

        return {
            "scenario_id": self.scenario_id, "verdict": self.verdict, "winner": self.winner,
            "margin": _plain(self.margin), "p_threshold": self.p_threshold, "tie_margin": self.tie_margin,
            "n_cases": self.n_cases, "n_boot": self.n_boot, "models": self.models,
            "weights": self.weights, "weights_requested": self.weights_requested,
            "dropped_criteria": self.dropped_criteria, "normalisation": NORMALISATION,
            "constraints": self.constraints.as_dict(), "cost_inputs": self.cost_inputs.as_dict(),
            "ranking": frame(self.ranking), "criteria": frame(self.criteria), "hardware": frame(self.hardware),
            "cold_warm": frame(self.cold_warm), "cache_mode": self.cache_mode,
            "more_cases": self.more_cases, "sensitivity": frame(self.sensitivity),
            "binding_constraints": self.binding, "decision_table": frame(self.table),
            "categories": frame(self.categories), "cost": frame(self.cost),
            "caveats": self.caveats, "warnings": self.warnings, "reproducibility": self.reproducibility,
            "human_votes": self.human_votes(), "stars": frame(self.stars), "timings": self.timings,
            "judge": _plain(self.judge),
        }


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if v is pd.NaT:
        return None
    return v


def _scalar_samples(ev: Evidence) -> tuple[dict, dict, dict]:
    """Load seconds and memory MB per model (one sample per run), and the memory's kind."""
    g = ev.gens
    load = {m: (g.loc[(g.model_spec == m) & g.load_ms.notna()].groupby("run_id").load_ms.first() / 1000).tolist()
            for m in ev.models}
    memory, kind = {}, {}
    for m in ev.models:
        mine = g[g.model_spec == m]
        vram = mine.groupby("run_id").vram_mb.max()
        vram = vram[vram > 0]
        if not vram.empty:
            memory[m], kind[m] = vram.tolist(), "GPU"
        else:
            memory[m], kind[m] = mine.groupby("run_id").rss_mb.max().dropna().tolist(), "host"
    return load, memory, kind


def timed_quantile(gens: pd.DataFrame, model: str, column: str, q: float) -> float | None:
    """A quantile of a timing over a model's timed generations: those that answered (ok) within the
    context. The one definition of TTFT and latency p50/p95 (the SLA constraints, `engine summary`)."""
    v = gens.loc[(gens.model_spec == model) & gens.ok & ~gens["exceeds_context"].fillna(False).astype(bool),
                 column].dropna()
    return float(v.quantile(q)) if not v.empty else None


def _p95(ev: Evidence, model: str, column: str) -> float | None:
    return timed_quantile(ev.gens, model, column, 0.95)


def _entry(spec: str, configs: list[dict]):
    """The catalog's entry for a model, what it lacks filled from what the model's server said of it
    during its latest run (Ollama's `/api/show`, kept in the run's engine facts)."""
    entry = entry_for_spec(spec)
    for c in reversed(configs):
        facts = (((c["host"].get("engines") or {}).get(spec)) or {}).get("model_facts")
        if facts:
            return with_server_facts(entry, spec, facts, f"/api/show during run {c['run_id']}")
    return entry


def _run_context(configs: list[dict]) -> int:
    ctx = [int(c) for r in configs if (c := ((r.get("config") or {}).get("backend_options") or {}).get("n_ctx"))]
    return max(ctx) if ctx else 4096


def _run_configs(ev: Evidence) -> list[dict]:
    return [{"run_id": f["run_id"], "config": f["config"], "host": f["host"], "started_at": str(f.get("started_at")),
             "status": f.get("status")} for r in ev.runs if r for f in [run_facts(r)]]


def _found_capacity(store: Store | None, model: str):
    """Capacity from the model's latest search for the highest rate (or concurrency) that met its
    SLOs (`sweep --find-max`), with a note saying so; None without one."""
    if store is None:
        return None
    found = store.query("""
        SELECT l.*, s.config_json, s.host_json FROM sweep_levels l JOIN sweeps s USING (sweep_id)
        WHERE s.model_spec = ? AND l.is_max AND l.ok_requests > 0 ORDER BY s.started_at DESC LIMIT 1""", [model])
    if found.empty:
        return None
    r = found.iloc[0]
    cfg = json.loads(r.config_json or "{}")
    gpus = _sweep_gpus(r.host_json)
    slo = ", ".join(f"{k} ≤ {v:g}" for k, v in (cfg.get("slo") or {}).items())
    share = f"{cfg.get('slo_share', 0.95):.0%}"
    per_request = float(r.output_tok_per_s) / float(r.req_per_s) if r.output_tok_per_s and r.req_per_s else None
    if r.rate_per_s == r.rate_per_s and r.rate_per_s is not None:  # an open-loop level: its arrival rate
        rate = float(r.rate_per_s)
        return costmod.Capacity(rate, rate * per_request if per_request else None, int(r.concurrency),
                                f"sweep max rate={rate:g}",
                                Msg("note_capacity_max_rate", rate=f"{rate:g}", slo=slo, share=share), gpus)
    goodput = float(r.goodput_req_per_s or 0) or None
    return costmod.Capacity(goodput, goodput * per_request if goodput and per_request else None, int(r.concurrency),
                            f"sweep max c={int(r.concurrency)}",
                            Msg("note_capacity_max_concurrency", c=int(r.concurrency), slo=slo, share=share), gpus)


def _measured_capacity(store: Store | None, ev: Evidence, model: str, concurrency: int):
    """(Capacity from the model's latest sweep at this concurrency, else None)."""
    if store is None:
        return None
    levels = store.query("""
        SELECT l.*, s.host_json FROM sweep_levels l JOIN sweeps s USING (sweep_id)
        WHERE s.model_spec = ? AND l.concurrency = ? AND l.ok_requests > 0 AND l.rate_per_s IS NULL
        ORDER BY s.started_at DESC LIMIT 1""", [model, concurrency])
    if levels.empty:
        return None
    r = levels.iloc[0]
    slo = r.slo_json if isinstance(r.slo_json, str) else None
    rate = r.goodput_req_per_s if slo and slo not in ("{}", "null") else r.req_per_s
    return costmod.Capacity(float(rate), float(r.output_tok_per_s or 0) or None, int(concurrency),
                            f"sweep c={concurrency}", host_gpus=_sweep_gpus(r.host_json))


def _sweep_gpus(host_json) -> list[dict]:
    """The GPUs of the machine a sweep ran on: its capacity holds there only."""
    return list((json.loads(host_json) if isinstance(host_json, str) else {}).get("gpus") or [])


def recommend(store: Store | None, scenario_id: str | None = None, **options: Any) -> Decision:
    """The decision for a scenario (latest run of each model, cold runs unless `cache_mode` is
    "warm") or one run; `options` as `decide` takes them. Its queries share one connection."""
    with store.held() if store is not None else contextlib.nullcontext():
        return decide(store, scenario_id, **options)


def decide(store: Store | None, scenario_id: str | None = None, *, run_id: str | None = None,
           evidence: Evidence | None = None, weights: dict[str, float] | None = None,
           constraints: Constraints | None = None, cost_inputs: CostInputs | None = None,
           p_threshold: float = 0.9, tie_margin: float = 0.02, n_boot: int = N_BOOT,
           seed: int = 0, cache_mode: str = "cold", trust_timings: bool = False,
           keep_judge: bool = False, pass_k: int | None = None) -> Decision:
    """The decision (see `recommend`), in its steps: gather (all reading), whether the judge can be
    trusted, the criteria matrix, the constraints, whether the timings can decide, the criteria in
    use, score and bootstrap, the verdict, the explanation."""
    constraints = constraints or Constraints()
    cost_inputs = cost_inputs or CostInputs()
    _validate(constraints, cost_inputs, p_threshold, tie_margin)
    if pass_k is not None and (isinstance(pass_k, bool) or not isinstance(pass_k, int) or pass_k < 1):
        raise RecommendError(f"pass_k: {pass_k!r} is not a whole number of tries (1 or more)")
    g = _gather(store, scenario_id, run_id, evidence, weights, cost_inputs, cache_mode, pass_k)
    judge = _judge_trust(g, keep_judge)  # first: a judge left out changes the evidence the criteria read
    point = _criteria_matrix(g)
    timings = _timing_trust(g, trust_timings)
    # a limit on a timing the host could not measure must not decide who is eligible: not applied, said
    untrusted = timings["problems"] and not trust_timings
    out = _apply_constraints(g, point, constraints, cost_inputs, timings_untrusted=bool(untrusted))
    wnorm, dropped, caveats = _criteria_in_use(g, point, timings)
    scored = _score(g, point, wnorm, out.eligible, n_boot, seed, tie_margin)
    verdict, margin, more_cases = _verdict(g, scored, out.eligible, p_threshold, tie_margin, caveats)
    explained = _explain(g, point, wnorm, scored, out, caveats, n_boot, seed)
    _mark_undecided(explained["table"], timings)
    return Decision(
        scenario_id=g.scenario_id, models=g.models, weights=wnorm, weights_requested=g.weights,
        dropped_criteria=dropped, constraints=constraints, cost_inputs=cost_inputs,
        criteria=explained["criteria"], ranking=explained["ranking"], verdict=verdict, margin=margin,
        p_threshold=p_threshold, tie_margin=tie_margin, more_cases=more_cases,
        sensitivity=explained["sensitivity"], sensitivity_curves=explained["curves"], binding=explained["binding"],
        table=explained["table"], categories=explained["categories"],
        cost=pd.DataFrame([g.cost_rows[m].as_dict() for m in g.models]), caveats=caveats,
        reproducibility=_reproducibility(g.ev, g.configs, g.entries), n_cases=len(g.ev.cases), n_boot=n_boot,
        evidence=g.ev, hardware=g.hardware, cold_warm=g.cold_warm, cache_mode=cache_mode,
        warnings=[Msg("warn_timing_limit_not_applied", what=w, why=Joined(timings["problems"]))
                  for w in out.not_applied] + judge["warnings"] + explained["warnings"],
        timings=_plain_timings(timings),
        judge={k: v for k, v in judge.items() if k != "warnings"}, stars=_stars(store, g))


def _stars(store: Store | None, g: _Gathered) -> pd.DataFrame:
    """The raters' stars on the decided models (the latest star of each rater), for the page and the memo."""
    from .ratings import star_summary

    if store is None:
        return pd.DataFrame()
    s = star_summary(store, scenario_id=g.scenario_id)
    return s[s.model_spec.isin(g.models)].reset_index(drop=True)


# the decision table's timing rows and the criterion each stands for
_TIMING_ROWS = {"ttft_ms": "ttft", "e2e_ms": "latency", "decode_tok_per_s": "throughput", "load_s": "load"}


def _mark_undecided(table: pd.DataFrame, timings: dict) -> None:
    """The timing rows of the decision table say they did not decide where the timings were left out: no
    winner is named from figures the verdict did not trust."""
    if table.empty or not timings["problems"] or timings["trusted_by_user"]:
        return
    why = Msg("did_not_decide", why=Msg("cav_timing_untrusted", why=Joined(timings["problems"])))
    rows = table.row.isin(list(_TIMING_ROWS))
    table["winner"] = table["winner"].astype(object)
    table.loc[rows, "winner"] = pd.Series([why] * int(rows.sum()), index=table.index[rows], dtype=object)


def _validate(constraints: Constraints, cost_inputs: CostInputs, p_threshold: float, tie_margin: float) -> None:
    constraints.validate()
    cost_inputs.traffic.validate()
    if not (isinstance(p_threshold, (int, float)) and 0.5 < p_threshold < 1):
        raise RecommendError(f"p_threshold: must be above 0.5 and below 1 (a probability of ranking first), "
                             f"got {p_threshold}")
    if tie_margin < 0:
        raise RecommendError(f"tie_margin: must be >= 0, got {tie_margin}")


@dataclass
class _Gathered:
    """Everything a decision reads, read once: the evidence, the weights asked for, prices, the runs'
    configurations, catalog entries, per-run figures, each model's cost row, the cold and warm runs
    and the hardware bound."""
    ev: Evidence
    scenario_id: str
    weights: dict[str, float]
    book: costmod.PriceBook
    configs: list[dict]
    entries: dict
    load: dict
    memory: dict
    memory_kind: dict
    cost_rows: dict[str, costmod.CostRow]
    cost_draw_scale: dict[str, bool]  # cost from a sequential run moves with the resampled latency
    cold_warm: pd.DataFrame
    hardware: pd.DataFrame
    hardware_error: Exception | None
    judge: dict = field(default_factory=dict)  # the judges of its checks, measured against the votes

    @property
    def models(self) -> list[str]:
        return self.ev.models


def _gather(store: Store | None, scenario_id: str | None, run_id: str | None, evidence: Evidence | None,
            weights: dict[str, float] | None, cost_inputs: CostInputs, cache_mode: str,
            pass_k: int | None = None) -> _Gathered:
    if evidence is None:
        if store is None:
            raise RecommendError("no results database to decide from")
        evidence = load_evidence(store, scenario_id, run_id, cache_mode, pass_k)
    elif pass_k is not None and pass_k != evidence.pass_k:
        evidence = evidence_from_frames(evidence.gens, evidence.checks, evidence.scenario_id, evidence.runs,
                                        votes=evidence.votes, pass_k=pass_k)
    ev = evidence
    weights = check_weights(dict(weights if weights is not None else scenario_weights(ev.scenario_id)))
    book = costmod.price_book(store, cost_inputs.cny_per_usd)
    if cost_inputs.gpu:
        book.gpu(cost_inputs.gpu)  # an unknown GPU is bad input
    configs = _run_configs(ev)
    entries = {m: _entry(m, configs) for m in ev.models}
    load, memory, memory_kind = _scalar_samples(ev)
    cost_rows, cost_draw_scale = _cost_rows(store, ev, book, entries, configs, cost_inputs)
    from .bound import shares

    hardware, hardware_error = pd.DataFrame(), None
    try:
        hardware = shares(ev.gens, {r["run_id"]: r for r in configs})
    except Exception as exc:  # a figure beside the verdict: never lose the verdict for it
        hardware_error = exc
    cold_warm = pd.DataFrame()
    if store is not None and not run_id:
        cold_warm = cold_and_warm(store, ev.scenario_id, {cache_mode: ev.gens})
    return _Gathered(ev, ev.scenario_id, weights, book, configs, entries, load, memory, memory_kind, cost_rows,
                     cost_draw_scale, cold_warm, hardware, hardware_error)


def _cost_rows(store: Store | None, ev: Evidence, book: costmod.PriceBook, entries: dict, configs: list[dict],
               cost_inputs: CostInputs) -> tuple[dict[str, costmod.CostRow], dict[str, bool]]:
    """Each model's cost: capacity from a load sweep's search for the highest rate meeting the SLOs,
    else from a sweep at the traffic's peak concurrency (else at the chosen level), else from the
    sequential run's latency, else estimated from the bandwidth bound."""
    context_tokens = cost_inputs.context_tokens or _run_context(configs)
    host_gpus = [g for c in configs for g in (c["host"].get("gpus") or [])]
    mean_out = _nanmean(ev.output_tokens)
    rows: dict[str, costmod.CostRow] = {}
    moves: dict[str, bool] = {}
    for i, m in enumerate(ev.models):
        measured = _found_capacity(store, m) \
            or _measured_capacity(store, ev, m, cost_inputs.traffic.peak_concurrency) \
            or _measured_capacity(store, ev, m, cost_inputs.concurrency)
        seq = None
        if measured is None:
            e2e = _nanmean(ev.per_case["latency"][i])  # capacity: total time over requests
            if e2e == e2e and e2e > 0:
                out_tok = mean_out[i] if mean_out[i] == mean_out[i] else None
                seq = costmod.Capacity(1000 / e2e, (out_tok or 0) * 1000 / e2e or None, 1, "sequential run")
        row = costmod.cost_row(book, m, entries[m], gpu_id=cost_inputs.gpu, context_tokens=context_tokens,
                               concurrency=cost_inputs.concurrency, currency=cost_inputs.currency,
                               traffic=cost_inputs.traffic, measured=measured or seq, measured_gpus=host_gpus,
                               mean_output_tokens=mean_out[i] if mean_out[i] == mean_out[i] else None)
        rows[m] = row
        moves[m] = row.capacity is not None and row.capacity.source == "sequential run"
    return rows, moves


def _criteria_matrix(g: _Gathered) -> dict[str, np.ndarray]:
    """Per criterion, each model's value: per-case criteria by their statistic over cases, the
    others once per model (engine/criteria.py)."""
    point = {c: _nanstat(g.ev.per_case[c], CRITERION_REGISTRY[c].stat) for c in PER_CASE}
    for c in PER_MODEL:
        vals = [CRITERION_REGISTRY[c].value(g, m) for m in g.models]
        point[c] = np.array([np.nan if v is None else v for v in vals], dtype=float)
    return point


@dataclass
class _Excluded:
    reasons: dict[str, list]  # per model, why it is out (empty: eligible)
    by_constraint: dict[str, list[str]]  # per constraint, the models it excludes
    eligible: list[int]
    not_applied: list = field(default_factory=list)  # timing limits left out: the timings are untrusted


def _apply_constraints(g: _Gathered, point: dict, constraints: Constraints, cost_inputs: CostInputs,
                       timings_untrusted: bool = False) -> _Excluded:
    models, ev = g.models, g.ev
    reasons: dict[str, list] = {m: [] for m in models}
    by_constraint: dict[str, list[str]] = {}

    def exclude(m: str, key: str, why) -> None:
        reasons[m].append(why)
        by_constraint.setdefault(key, []).append(m)

    for i, m in enumerate(models):
        row = g.cost_rows[m]
        if constraints.max_vram_gb is not None:
            need, how = None, ""
            if g.memory_kind[m] == "GPU" and g.memory[m]:
                need, how = max(g.memory[m]) / 1024, "measured"
            elif row.memory and row.memory.total_gb is not None:
                need, how = row.memory.total_gb, "estimated"
            if need is None:
                exclude(m, "max_vram_gb", Msg("why_vram_unknown"))
            elif need > constraints.max_vram_gb:
                exclude(m, "max_vram_gb", Msg("why_vram_over", need=f"{need:.1f}", how=Msg(f"how_{how}"),
                                              budget=f"{constraints.max_vram_gb:g}"))
        if cost_inputs.gpu and row.fits is False:
            exclude(m, "gpu", Msg("why_no_fit", gpu=cost_inputs.gpu, need=f"{_need_gb(row):.1f}"))
        for key, col, label in (("ttft_p95_ms", "ttft_ms", "what_ttft"), ("e2e_p95_ms", "e2e_ms", "what_latency")):
            limit = getattr(constraints, key)
            if limit is not None and timings_untrusted:
                continue  # not applied: the warning beside the verdict says so
            if limit is not None:
                p95 = _p95(ev, m, col)
                if p95 is None:
                    exclude(m, key, Msg("why_p95_unmeasured", what=Msg(label)))
                elif p95 > limit:
                    exclude(m, key, Msg("why_p95_over", what=Msg(label), p95=f"{p95:.0f}", limit=f"{limit:g}"))
        if constraints.licences:
            lic = e.license if (e := g.entries[m]) else None
            if lic is None:
                exclude(m, "licences", Msg("why_licence_unknown"))
            elif lic not in constraints.licences:
                exclude(m, "licences", Msg("why_licence", licence=lic))
        if constraints.min_quality is not None:
            q = point["quality"][i]
            if math.isnan(q) or q < constraints.min_quality:
                exclude(m, "min_quality", Msg("why_quality_low", q=f"{q:.2f}", minimum=f"{constraints.min_quality:g}")
                        if not math.isnan(q) else Msg("why_quality_unmeasured"))
    if cost_inputs.gpu and all(g.cost_rows[m].fits is False for m in models):
        needs = ", ".join(f"{m} needs {_need_gb(g.cost_rows[m]):.1f} GB" for m in models)
        raise RecommendError(f"gpu: no model fits {cost_inputs.gpu} "
                             f"({g.book.gpu(cost_inputs.gpu).memory_gb:g} GB): {needs}")
    skipped = [Msg(f"what_{'ttft' if k == 'ttft_p95_ms' else 'latency'}") for k in ("ttft_p95_ms", "e2e_p95_ms")
               if timings_untrusted and getattr(constraints, k) is not None]
    return _Excluded(reasons, by_constraint, [i for i, m in enumerate(models) if not reasons[m]], skipped)


def _agreement_said(judge: str, a: dict) -> Msg:
    """A judge's agreement with the raters in a sentence (or why there is no figure)."""
    if a.get("share") is None or a.get("problem"):
        key, params = a.get("problem") or ("agree_none", {})
        return Msg("judge_no_figure", judge=judge, why=Msg(key, **params))
    low, high = a["kappa_ci"]
    return Msg("judge_chance" if a["chance"] else "judge_agrees", judge=judge, pct=f"{a['share']:.0%}",
               kappa=f"{a['kappa']:.2f}", low=f"{low:.2f}", high=f"{high:.2f}", cases=a["cases"])


def _judge_trust(g: _Gathered, keep_judge: bool) -> dict:
    """The judges that scored this evidence's llm_judge checks, measured against the blind A/B votes
    (engine.ratings.judge_agreement); one no better than chance has its checks left out of the
    evidence unless kept. Sentences for beside the verdict in `warnings`."""
    from .ratings import judge_agreement

    ev = g.ev
    judged = not ev.checks.empty and bool((ev.checks.check_type == "llm_judge").any())
    scoring = sorted({j for c in g.configs if (j := c["config"].get("judge"))}) if judged else []
    langs = dict(zip(ev.case_meta.case_id, ev.case_meta.lang))
    agreement = judge_agreement(ev.votes, ev.judge_pairs, langs) if not ev.judge_pairs.empty else {}
    out: dict = {"agreement": agreement, "scoring": scoring, "left_out": [], "kept": False, "warnings": []}
    g.judge = out
    for j in scoring:
        a = agreement.get(j)
        if a is None:
            out["warnings"].append(Msg("judge_unmeasured", judge=j))
            continue
        out["warnings"].append(_agreement_said(j, a))
        if a.get("chance"):
            if keep_judge:
                out["kept"] = True
            else:
                out["left_out"].append(j)
    if out["left_out"]:
        kept = ev.checks[ev.checks.check_type != "llm_judge"]
        pairs = ev.judge_pairs
        g.ev = evidence_from_frames(ev.gens, kept, ev.scenario_id, ev.runs, langs, ev.votes, ev.pass_k)
        g.ev.judge_pairs = pairs
        out["warnings"].append(Msg("judge_left_out", judges=Joined(out["left_out"], ", ")))
    return out


def _timing_trust(g: _Gathered, trust_timings: bool) -> dict:
    """Whether the timings can decide: not when a run was flagged busy or the models' runs came from
    different machines, unless the user trusts them anyway (then the summary says so at the top).
    The criteria a clock measured are then left out of the verdict (cost too where a model's capacity
    is its sequential run's latency)."""
    problems: list = []
    for c in g.configs:
        load = c["host"].get("load") or {}
        if load.get("busy"):
            problems.append(Msg("timing_busy", run=c["run_id"], pct=f"{load.get('others_cpu_pct_median') or 0:.0f}"))
    run_of = g.ev.gens.drop_duplicates("model_spec").set_index("model_spec").run_id.to_dict() \
        if not g.ev.gens.empty else {}
    host_of = {c["run_id"]: c["host"].get("hostname") for c in g.configs}
    hosts = {m: host_of.get(r) for m, r in run_of.items() if host_of.get(r)}
    if len(set(hosts.values())) > 1:
        problems.append(Msg("timing_mixed_hosts", hosts=Joined([Msg("timing_model_host", model=m, host=h)
                                                                for m, h in sorted(hosts.items())])))
    weighted = [c for c, w in g.weights.items() if w > 0]
    clocked = [c for c in weighted if CRITERION_REGISTRY[c].timing
               or (c == "cost" and any(g.cost_draw_scale.values()))]
    why = Joined(problems)
    out = {"trusted": not problems, "problems": problems, "left_out": [], "trusted_by_user": False, "note": None}
    if not problems or not clocked:
        return out
    if trust_timings:
        out["trusted_by_user"] = True
        out["note"] = Msg("timing_trusted_by_user", why=why)
        return out
    rest = [c for c in weighted if c not in clocked]
    out["left_out"] = clocked
    if rest:
        out["note"] = Msg("timing_left_out", criteria=Joined([Msg(f"crit_{c}") for c in clocked], ", "),
                          used=Joined([Msg(f"crit_{c}") for c in rest], ", "), why=why)
    return out


def _plain_timings(t: dict) -> dict:
    """As the decision keeps it; `note` (said beside the verdict) is None where the timings decided."""
    return {k: t[k] for k in ("trusted", "problems", "left_out", "trusted_by_user", "note")}


def _came_in_one_piece(gens: pd.DataFrame, model: str) -> bool:
    """A model with answers but no decode rate: each answer came in one streamed piece (or one
    token), so no rate between the first token and the last can be measured."""
    ok = gens[(gens.model_spec == model) & gens.ok]
    return len(ok) > 0 and ok.decode_tok_per_s.isna().all()


# A decode rate this far past the machine's bandwidth bound cannot have been measured: its server's
# figures are wrong (tokens miscounted, a clock that skipped), and throughput is not ranked on.
BEYOND_BOUND = 1.5


def _beyond_bound(g: _Gathered) -> str:
    """The models whose median decode rate is past the hardware bound, each with both figures; "" where none."""
    hw = g.hardware
    if hw is None or hw.empty or "bound_share" not in hw:
        return ""
    over = hw[hw.bound_share > BEYOND_BOUND]
    return "; ".join(f"{r.model_spec}: {r.decode_tok_per_s:,.0f} tok/s against a bound of {r.bound_tok_per_s:,.0f}"
                     for r in over.itertuples())


def _all_missing(gens: pd.DataFrame, model: str) -> bool:
    """Whether every generation of a model failed for the server's or the network's sake."""
    mine = gens[gens.model_spec == model]
    return "failed_by" in gens.columns and not mine.empty and bool(mine.failed_by.eq("server").all())


def _one_repeat(gens: pd.DataFrame) -> bool:
    """Whether every case ran once per model (no repeats to measure consistency on)."""
    return gens.empty or int(gens.groupby(["model_spec", "case_id"])["repeat"].nunique().max()) < 2


def _criteria_in_use(g: _Gathered, point: dict, timings: dict) -> tuple[dict[str, float], dict[str, str], list[str]]:
    """The weighted criteria measured for every model (and not left out for untrusted timings), their
    weights normalised; the others left out, said among the caveats (which start here)."""
    dropped: dict[str, str] = {}
    used = {}
    for c, w in g.weights.items():
        if w <= 0:
            continue
        missing = [m for i, m in enumerate(g.models) if not np.isfinite(point[c][i])]
        if c in timings["left_out"]:
            dropped[c] = Msg("cav_timing_untrusted", why=Joined(timings["problems"]))
        elif missing and c == "consistency" and _one_repeat(g.ev.gens):
            dropped[c] = Msg("cav_needs_repeats")
        elif c == "throughput" and _beyond_bound(g):
            dropped[c] = Msg("cav_beyond_bound", models=_beyond_bound(g))
        elif missing and all(_all_missing(g.ev.gens, m) for m in missing):
            dropped[c] = Msg("cav_all_missing", models=", ".join(missing))
        elif missing and c == "throughput" and all(_came_in_one_piece(g.ev.gens, m) for m in missing):
            dropped[c] = Msg("cav_one_piece", models=", ".join(missing))
        elif missing:
            dropped[c] = Msg("cav_not_measured_for", models=", ".join(missing))
        else:
            used[c] = w
    if not used and timings["left_out"]:
        raise RecommendError("weights: only timing criteria carry weight, and these timings cannot decide ("
                             + "; ".join(str(p) for p in timings["problems"]) + "): weigh quality or another "
                             "criterion, rerun on a quiet machine, or trust the timings anyway (--trust-timings, "
                             "or the Recommend page's checkbox)")
    if not used:
        raise RecommendError("weights: none of the weighted criteria is measured for every model ("
                             + "; ".join(f"{c}: {why}" for c, why in dropped.items()) + ")")
    caveats: list[str] = [Msg("cav_dropped", criterion=Msg(f"crit_{c}"), why=why) for c, why in dropped.items()]
    total = sum(used.values())
    return {c: w / total for c, w in used.items()}, dropped, caveats


def _normalise(values: np.ndarray, c: str, ref_models: list[int]) -> np.ndarray:
    """values (models, ...) -> best = 1 among the reference models."""
    better = CRITERION_INFO[c][0]
    ref = values[ref_models]
    # a draw of cases none of which has a value is all NaN: every model scores 0 there
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if better == "higher":
            best = np.nanmax(ref, axis=0)
            out = np.where(best > 0, values / best, 1.0)
        else:
            best = np.nanmin(ref, axis=0)
            out = np.where(values > 0, best / values, 1.0)
    return np.nan_to_num(out, nan=0.0)


@dataclass
class _Scored:
    crit: list[str]
    wvec: np.ndarray
    norm_point: np.ndarray  # (models, criteria)
    score_point: np.ndarray  # (models,)
    score_draws: np.ndarray  # (models, draws)
    p_first: np.ndarray  # (models,)


def _score(g: _Gathered, point: dict, wnorm: dict[str, float], eligible: list[int], n_boot: int, seed: int,
           tie_margin: float) -> _Scored:
    """The weighted score, and its bootstrap: every draw resamples the same cases for all models."""
    ev, models = g.ev, g.models
    crit = list(wnorm)
    wvec = np.array([wnorm[c] for c in crit])
    ref_models = eligible or list(range(len(models)))
    norm_point = np.stack([_normalise(point[c], c, ref_models) for c in crit], axis=1)
    idx = boot_indices(len(ev.cases), n_boot, seed)

    def draw(c: str, stat: str) -> np.ndarray:  # a per-case criterion's draws, two-level (cases, repeats)
        return boot_stat(ev.per_case[c], idx, stat, ev.per_repeat.get(c), seed)

    draws = {}
    for c in crit:
        kind = CRITERION_REGISTRY[c]
        if kind.per_case:
            draws[c] = draw(c, kind.stat)
        elif kind.resample is not None:
            draws[c] = kind.resample(point[c], g, draw)
        else:
            draws[c] = np.repeat(point[c][:, None], n_boot, axis=1)
    norm_draws = np.stack([_normalise(draws[c], c, ref_models) for c in crit], axis=2)  # (models, B, crit)
    score_draws = norm_draws @ wvec
    p_first = np.zeros(len(models))
    if eligible:
        el = np.array(eligible)
        s = score_draws[el]
        close = s >= s.max(axis=0) - tie_margin
        p_first[el] = (close / close.sum(axis=0)).mean(axis=1)
    return _Scored(crit, wvec, norm_point, norm_point @ wvec, score_draws, p_first)


def _verdict(g: _Gathered, sc: _Scored, eligible: list[int], p_threshold: float, tie_margin: float,
             caveats: list[str]) -> tuple[str, float | None, dict]:
    """A model where it ranks first often enough, else too close to call (with how many more cases
    might separate the top two), or no model eligible."""
    models, n_cases = g.models, len(g.ev.cases)
    order = sorted(eligible, key=lambda i: -sc.score_point[i])
    margin = float(sc.score_point[order[0]] - sc.score_point[order[1]]) if len(order) > 1 else None
    more_cases: dict = {"cases_now": n_cases, "extra_cases": None, "note": ""}
    if not eligible:
        return NO_ELIGIBLE, margin, more_cases
    if len(order) == 1:
        if len(models) == 1:
            caveats.append(Msg("cav_one_model"))
        return models[order[0]], margin, more_cases
    if n_cases < MIN_CASES:
        return TOO_CLOSE, margin, {"cases_now": n_cases, "extra_cases": MIN_CASES - n_cases,
                                   "note": Msg("more_min_cases", n=n_cases, minimum=MIN_CASES)}
    if sc.p_first[order[0]] >= p_threshold:
        return models[order[0]], margin, more_cases
    more = _more_cases(sc.score_draws[order[0]] - sc.score_draws[order[1]], margin or 0.0, tie_margin, n_cases,
                       p_threshold)
    return TOO_CLOSE, margin, _cost_of_more(g, more)


def _explain(g: _Gathered, point: dict, wnorm: dict[str, float], sc: _Scored, out: _Excluded,
             caveats: list[str], n_boot: int, seed: int) -> dict:
    """The ranking with each criterion's part, the criteria table, what would change the leader, the
    binding constraints, the decision table, and the caveats (those beside the verdict apart)."""
    models, crit = g.models, sc.crit
    ranking = pd.DataFrame([{
        "model_spec": m, "score": float(sc.score_point[i]), "p_first": float(sc.p_first[i]),
        "eligible": not out.reasons[m], "reasons": Joined(out.reasons[m]),
        **{f"part_{c}": float(sc.norm_point[i, j] * sc.wvec[j]) for j, c in enumerate(crit)},
    } for i, m in enumerate(models)]).sort_values(["eligible", "score", "model_spec"], ascending=[False, False, True],
                                                  ignore_index=True)
    crit_rows = []
    for i, m in enumerate(models):
        for c in CRITERIA:
            if c not in point:
                continue
            v = point[c][i]
            source = CRITERION_REGISTRY[c].source
            src = source(g, m) if source else ""
            j = crit.index(c) if c in crit else None
            crit_rows.append({"model_spec": m, "criterion": c, "value": None if not np.isfinite(v) else float(v),
                              "unit": CRITERION_INFO[c][1], "better": CRITERION_INFO[c][0],
                              "weight": wnorm.get(c, 0.0),
                              "normalised": float(sc.norm_point[i, j]) if j is not None else None,
                              "contribution": float(sc.norm_point[i, j] * sc.wvec[j]) if j is not None else None,
                              "source": src})
    sens, curves = _sensitivity(sc.norm_point, sc.wvec, crit, models, out.eligible)
    unconstrained = int(np.argmax(sc.score_point))
    binding = [{"constraint": k, "excludes": v, "unconstrained_leader": models[unconstrained],
                "binds": models[unconstrained] in v}
               for k, v in out.by_constraint.items()]
    caveats += [Msg("cav_binds", constraint=Msg(f"constraint_{b['constraint']}"), model=models[unconstrained])
                for b in binding if b["binds"]]
    table, categories = decision_table(g.ev, g.load, g.memory, n_boot=max(n_boot, 1000), seed=seed)
    noted = _caveats(g.ev, g.cost_rows, g.memory_kind, g.configs)
    caveats += [text for _, text in noted]
    if g.hardware_error is not None:
        caveats.append(Msg("cav_bound_failed", error=g.hardware_error))
    return {"ranking": ranking, "criteria": pd.DataFrame(crit_rows), "sensitivity": sens, "curves": curves,
            "binding": binding, "table": table, "categories": categories,
            "warnings": _verdict_warnings(noted, wnorm)}


TIMING_CRITERIA = TIMING


def _verdict_warnings(noted: list[tuple[str, str]], weights: dict[str, float]) -> list[str]:
    """The caveats that bear on the verdict itself, to stand beside it: those of kind "verdict", and those
    of kind "timing" (a busy host, models from different runs) where timing criteria carry weight."""
    timing = sum(weights.get(c, 0.0) for c in TIMING_CRITERIA)
    return [text if kind == "verdict" else Msg("cav_timing_weight", text=text, share=f"{timing:.0%}")
            for kind, text in noted if kind == "verdict" or (kind == "timing" and timing > 0)]


def _need_gb(row: costmod.CostRow) -> float:
    """GPU memory a cost row's model needs (NaN where unknown: such a row never 'does not fit')."""
    need = row.memory.total_gb if row.memory else None
    return need if need is not None else float("nan")


def _more_cases(diff_draws: np.ndarray, margin: float, tie_margin: float, n_cases: int,
                p_threshold: float) -> dict:
    """How many more cases would make the leader's lead clear at the observed difference:
    the lead's standard error shrinks with the square root of the number of cases."""
    from statistics import NormalDist

    sd = float(np.std(diff_draws))
    out = {"cases_now": n_cases, "extra_cases": None, "observed_difference": margin, "note": ""}
    if margin is None or margin <= tie_margin:
        out["note"] = Msg("more_within_tie", diff=f"{margin or 0:.3f}", tie=tie_margin)
        return out
    if sd <= 0:
        out["note"] = Msg("more_no_spread")
        return out
    z = NormalDist().inv_cdf(p_threshold)
    need = n_cases * (z * sd / (margin - tie_margin)) ** 2
    out["extra_cases"] = max(0, math.ceil(need - n_cases))
    out["note"] = Msg("more_cases_needed", n=out["extra_cases"])
    return out


def _cost_of_more(g: _Gathered, more: dict) -> dict:
    """What the extra cases cost to run: every model's measured time per case (its generations per
    case at its mean latency) on its GPU of the cost table, at that GPU's price per hour."""
    extra = more.get("extra_cases")
    if not extra:
        return more
    hours, cost, currency, gpus = 0.0, 0.0, None, []
    cost_known = True
    for i, m in enumerate(g.models):
        lat = _nanmean(g.ev.per_case["latency"][i])
        per_case = len(g.ev.gens[g.ev.gens.model_spec == m]) / max(len(g.ev.cases), 1)
        if lat != lat:
            return more  # a model without a measured latency: the time cannot be told
        h = extra * per_case * float(lat) / 1000 / 3600
        hours += h
        row = g.cost_rows[m]
        if row.price_per_hour is None or row.gpu is None:
            cost_known = False
        else:
            cost += h * row.price_per_hour
            currency = row.currency
            gpus.append(row.gpu)
    priced = cost_known and bool(gpus)
    more.update(gpu_hours=hours, gpu_cost=cost if priced else None, currency=currency)
    said = Msg("more_cases_cost_priced", hours=f"{hours:.2f}", cost=f"{cost:.2f}", currency=currency,
               gpus=", ".join(dict.fromkeys(gpus))) if priced else Msg("more_cases_cost", hours=f"{hours:.2f}")
    more["note"] = Joined([more["note"], said], "; ")
    return more


def _sensitivity(norm: np.ndarray, w: np.ndarray, crit: list[str], models: list[str], eligible: list[int]):
    """For each criterion: moving its weight share from the current value (others keep
    their proportions), where does the leader change? Exact crossings of the linear scores."""
    rows, curves = [], []
    if not eligible:
        return pd.DataFrame(columns=["criterion", "weight", "flip_low", "winner_below", "flip_high",
                                     "winner_above", "distance"]), pd.DataFrame()
    el = np.array(eligible)
    for j, c in enumerate(crit):
        w0 = float(w[j])
        rest = np.delete(w, j)
        rest_n = rest / rest.sum() if rest.sum() > 0 else np.full(rest.size, 1 / max(rest.size, 1))
        r = np.delete(norm, j, axis=1) @ rest_n if rest.size else np.zeros(len(models))
        n_c = norm[:, j]

        def leader(t: float, keep: int | None = None) -> int:
            s = t * n_c[el] + (1 - t) * r[el]  # noqa: B023 (called within this iteration only)
            best = int(el[np.argmax(s)])
            # an exact tie is no flip: the current leader keeps the lead
            if keep is not None and keep in el and s[list(el).index(keep)] >= s.max() - 1e-9:
                return keep
            return best

        lead0 = leader(w0)
        cands = set()
        for a in el:
            for b in el:
                if a < b:
                    den = (n_c[a] - n_c[b]) - (r[a] - r[b])
                    if abs(den) > 1e-12:
                        t = -(r[a] - r[b]) / den
                        if 0 <= t <= 1:
                            cands.add(float(t))
        up = sorted(t for t in cands if t > w0 + 1e-12)
        down = sorted((t for t in cands if t < w0 - 1e-12), reverse=True)
        flip_high = next((t for t in up if leader(min(1.0, t + 1e-6), lead0) != lead0), None)
        flip_low = next((t for t in down if leader(max(0.0, t - 1e-6), lead0) != lead0), None)
        dist = min([abs(t - w0) for t in (flip_low, flip_high) if t is not None], default=None)
        rows.append({"criterion": c, "weight": w0, "leader": models[lead0],
                     "flip_low": flip_low, "winner_below": models[leader(max(0.0, flip_low - 1e-6))]
                     if flip_low is not None else None,
                     "flip_high": flip_high, "winner_above": models[leader(min(1.0, flip_high + 1e-6))]
                     if flip_high is not None else None,
                     "distance": dist})
        for t in np.linspace(0, 1, 21):
            for i in el:
                curves.append({"criterion": c, "weight": float(t), "model_spec": models[i],
                               "score": float(t * n_c[i] + (1 - t) * r[i]), "current": w0})
    return pd.DataFrame(rows), pd.DataFrame(curves)


def reweight(weights: dict[str, float], criterion: str, share: float) -> dict[str, float]:
    """Weights with `criterion` at `share` of the total and the others in proportion."""
    total = sum(weights.values())
    others = {k: v for k, v in weights.items() if k != criterion}
    rest = sum(others.values())
    out = {k: (v / rest) * (1 - share) * total for k, v in others.items()} if rest else {}
    out[criterion] = share * total
    return out


# --- the use case's decision table ---------------------------------------------------
TABLE_ROWS: list[tuple[str, str, Any, str]] = [
    # key, kind, source, better
    ("load_s", "scalar", "load", "lower"),
    ("ttft_ms", "case", "ttft", "lower"),
    ("e2e_ms", "case", "latency", "lower"),
    ("memory_mb", "scalar", "memory", "lower"),
    ("decode_tok_per_s", "case", "throughput", "higher"),
    ("ok_rate", "case", "ok", "higher"),
    ("multi_turn", "stars", ("category", "multi_turn"), "higher"),
    ("chinese_fluency", "stars", ("lang", "zh"), "higher"),
    ("english", "stars", ("lang", "en"), "higher"),
    ("instruction_following", "stars", ("category", "instruction_following"), "higher"),
    ("coding", "stars", ("category", "coding"), "higher"),
    ("knowledge", "stars", ("category", "knowledge"), "higher"),
]


def decision_table(ev: Evidence, load: dict | None = None, memory: dict | None = None,
                   n_boot: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The use case's table (a row per figure, a value and 95% CI per model, the winner
    or "tie") and quality per category with CIs."""
    if load is None or memory is None:
        load, memory, _ = _scalar_samples(ev)
    rows = []
    for key, kind, src, better in TABLE_ROWS:
        if kind == "scalar":
            res = compare_scalar(load if src == "load" else memory, better, n_boot, seed,
                                 min_abs=0.05 if src == "load" else 1.0)
        else:
            name = "quality" if kind == "stars" else src
            x, x3 = ev.per_case[name], ev.per_repeat.get(name)
            few = False
            if kind == "stars":
                column, value = src
                mask = (ev.case_meta[column] == value).to_numpy()
                if not mask.any():
                    continue
                x, x3 = x[:, mask], x3[:, mask] if x3 is not None else None
                few = int(mask.sum()) < MIN_CASES
            res = compare_per_case(x, ev.models, better, n_boot, seed,
                                   stat="median" if kind == "case" and src in STAT else "mean", x3=x3)
            if few:  # as the category table says: too few cases to name a winner
                res["winner"] = Msg("did_not_decide", why=Msg("too_few_cases", n=MIN_CASES))
        if all(v is None for v in res["values"].values()):
            continue
        for m in ev.models:
            v = res["values"].get(m)
            low, high = res["ci"].get(m, (None, None))
            stars = kind == "stars"
            rows.append({"row": key, "kind": kind, "better": better, "model_spec": m,
                         "value": v, "ci_low": low, "ci_high": high, "n": res["n"].get(m, 0),
                         "stars": 1 + 4 * v if stars and v is not None else None,
                         "stars_low": 1 + 4 * low if stars and low is not None and low == low else None,
                         "stars_high": 1 + 4 * high if stars and high is not None and high == high else None,
                         "winner": res["winner"]})
    cats = []
    for cat in sorted(ev.case_meta.category.dropna().unique()):
        mask = (ev.case_meta.category == cat).to_numpy()
        q3 = ev.per_repeat.get("quality")
        res = compare_per_case(ev.per_case["quality"][:, mask], ev.models, "higher", n_boot, seed,
                               x3=q3[:, mask] if q3 is not None else None)
        for m in ev.models:
            if res["n"].get(m):
                low, high = res["ci"][m]
                winner = res["winner"] if int(mask.sum()) >= MIN_CASES else \
                    Msg("did_not_decide", why=Msg("too_few_cases", n=MIN_CASES))
                cats.append({"category": cat, "model_spec": m, "score": res["values"][m], "ci_low": low,
                             "ci_high": high, "n": res["n"][m], "winner": winner})
    return (pd.DataFrame(rows, columns=["row", "kind", "better", "model_spec", "value", "ci_low", "ci_high", "n",
                                        "stars", "stars_low", "stars_high", "winner"]),
            pd.DataFrame(cats, columns=["category", "model_spec", "score", "ci_low", "ci_high", "n", "winner"]))


def table_wide(table: pd.DataFrame, fmt=None) -> pd.DataFrame:
    """The decision table as people read it: a row per figure, a column per model
    ("value (low-high)"), and the winner column ("tie" where the intervals overlap)."""
    if table.empty:
        return pd.DataFrame(columns=["row", "winner"])
    fmt = fmt or _fmt_cell
    out = []
    for row, part in table.groupby("row", sort=False):
        rec = {"row": row}
        for r in part.itertuples():
            rec[r.model_spec] = fmt(r)
        rec["winner"] = part.winner.iloc[0]
        out.append(rec)
    return pd.DataFrame(out)


def _fmt_cell(r) -> str:
    def num(v, d):
        return "–" if v is None or v != v else f"{v:,.{d}f}"

    if r.kind == "stars":
        return f"{num(r.stars, 1)} ({num(r.stars_low, 1)}-{num(r.stars_high, 1)})" if r.value is not None else "–"
    if r.row == "ok_rate":
        def pct(v):
            return "–" if v is None or v != v else f"{v:.0%}"
        return pct(r.value) if r.ci_low is None or r.ci_low != r.ci_low or r.ci_low == r.ci_high \
            else f"{pct(r.value)} ({pct(r.ci_low)}-{pct(r.ci_high)})"
    d = 2 if r.row == "load_s" else 0 if r.row in ("ttft_ms", "e2e_ms", "memory_mb") else 1
    if r.ci_low is None or r.ci_low != r.ci_low:
        return num(r.value, d)
    return f"{num(r.value, d)} ({num(r.ci_low, d)}-{num(r.ci_high, d)})"


def never_called(gens: pd.DataFrame) -> dict[str, int]:
    """The models none of whose answers on cases with tools carried a call, with how many such cases they
    answered: their server or template may not pass tools, so their tool scores say nothing of the model."""
    if "tool_calls_json" not in gens.columns:
        return {}
    tooled = gens[gens.tool_calls_json.notna() & gens.ok]
    out = {}
    for model, g in tooled.groupby("model_spec"):
        if all(raw in ("[]", "") for raw in g.tool_calls_json):
            out[str(model)] = int(g.case_id.nunique())
    return out


def _caveats(ev: Evidence, cost_rows: dict, memory_kind: dict, configs: list[dict]) -> list[tuple[str, str]]:
    """(kind, text): "timing" where it bears on the verdict's timing criteria, "verdict" where it bears
    on the verdict whatever the weights, "" for a note on the figures."""
    out: list[tuple[str, str]] = []
    host_only = [m for m, k in memory_kind.items() if k == "host"]
    if host_only:
        out.append(("", Msg("cav_host_memory", models=", ".join(host_only))))
    est = [m for m, r in cost_rows.items() if r.capacity is not None and r.capacity.estimated
           and r.capacity.req_per_s]
    if est:
        out.append(("", Msg("cav_cost_estimated", models=", ".join(est))))
    unknown = [m for m, r in cost_rows.items() if r.cost_per_1k_requests is None]
    if unknown:
        out.append(("", Msg("cav_cost_unknown", models=", ".join(unknown), why=Joined(
            [Msg("cav_model_note", model=m, note=cost_rows[m].as_dict()["notes"] or Msg("cav_no_capacity"))
             for m in unknown]))))
    failed = ev.gens[~ev.gens.ok & ~ev.gens["exceeds_context"].fillna(False).astype(bool)]
    by_server = failed["failed_by"].eq("server") if "failed_by" in failed.columns else \
        pd.Series(False, index=failed.index)
    if (~by_server).any():
        out.append(("verdict", Msg("cav_failed", n=int((~by_server).sum()), total=len(ev.gens))))
    if by_server.any():
        missing = failed[by_server].groupby("model_spec").size()
        planned = ev.gens.groupby("model_spec").size()
        out.append(("verdict", Msg("cav_missing", per_model=", ".join(
            f"{m}: {int(n)} of {int(planned[m])}" for m, n in missing.items()))))
    over = ev.gens[ev.gens["exceeds_context"].fillna(False).astype(bool)]
    if not over.empty:
        out.append(("", Msg("cav_over_context", n=len(over))))
    if ev.checks.empty:
        out.append(("verdict", Msg("cav_no_checks")))
    for model, n in never_called(ev.gens).items():
        out.append(("verdict", Msg("cav_tools_silent", model=model, n=n)))
    if len(ev.cases) < 20:
        out.append(("verdict", Msg("cav_few_cases", n=len(ev.cases))))
    retrieved = sorted({cid for c in configs for cid, r in (c["config"].get("retrieval") or {}).items()
                        if not r.get("whole")})
    if retrieved:
        named = [r for c in configs for r in (c["config"].get("retrieval") or {}).values()
                 if not r.get("whole") and r.get("source")]
        out.append(("", Msg("cav_retrieval", n=len(retrieved), cases=", ".join(retrieved[:10])
                            + (f" (+{len(retrieved) - 10})" if len(retrieved) > 10 else ""))))
        if named:
            out.append(("verdict", Msg("cav_retrieval_recall", given=sum(bool(r.get("source_given")) for r in named),
                                       total=len(named))))
    runs = {c["run_id"] for c in configs}
    if len(runs) > 1:
        out.append(("timing", Msg("cav_many_runs", n=len(runs))))
    for c in configs:
        load = c["host"].get("load") or {}
        if load.get("busy"):
            out.append(("timing", Msg("cav_busy", run=c["run_id"], pct=f"{load['others_cpu_pct_median']:.0f}")))
        if len(c["config"].get("models") or []) > 1 and not c["config"].get("schedule"):
            out.append(("", Msg("cav_no_schedule", run=c["run_id"])))
    return out


def _scenario_defaults(scenario_id: str) -> dict:
    """The scenario's generation defaults (temperature, seed), where its file can still be read."""
    try:
        return load_scenario(scenario_id).defaults.model_dump()
    except ScenarioError:
        return {}


def _reproducibility(ev: Evidence, configs: list[dict], entries: dict) -> dict:
    from .catalog import model_identity

    params = {}
    defaults = _scenario_defaults(ev.scenario_id)
    for c in configs:
        cfg = c["config"]
        params[c["run_id"]] = {k: cfg.get(k) for k in ("repeats", "max_tokens", "temperature", "seed",
                                                         "backend_options", "warmup", "judge", "schedule")}
        # what the run used where it set nothing: the scenario's defaults (a case's own max_tokens aside)
        for k in ("temperature", "seed"):
            if params[c["run_id"]][k] is None and k in defaults:
                params[c["run_id"]][k] = defaults[k]
    return {
        "runs": [{"run_id": c["run_id"], "started_at": c["started_at"], "status": c["status"],
                  "models": c["config"].get("models"), "scenario_source": c["config"].get("scenario_source")}
                 for c in configs],
        "hardware": [{"run_id": c["run_id"], **{k: c["host"].get(k) for k in
                                                 ("cpu_model", "cpu_cores_physical", "ram_total_mb", "gpus",
                                                  "llama_gpu_offload", "os", "python", "load")}}
                     for c in configs],
        "libraries": {c["run_id"]: c["host"].get("versions") for c in configs},
        "models": {m: model_identity(m) for m in ev.models},
        "generation_parameters": params,
    }


def cold_and_warm(store: Store, scenario_id: str, loaded: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Per model: median TTFT of its latest cold run and of its latest warm run, where both
    exist. `loaded` holds generations already read for a mode (not read again)."""
    parts = []
    for mode in ("cold", "warm"):
        gens = (loaded or {}).get(mode)
        if gens is None:
            gens, _ = load_results(store, scenario_id=scenario_id, cache_mode=mode)
        if not gens.empty:
            parts.append(gens[gens.ok].groupby("model_spec").ttft_ms.median().rename(f"ttft_ms_{mode}"))
    if len(parts) < 2:
        return pd.DataFrame()
    both = pd.concat(parts, axis=1).dropna().reset_index()
    return both.assign(warm_over_cold=both.ttft_ms_warm / both.ttft_ms_cold)


# --- saved decisions -----------------------------------------------------------------
def save_decision(store: Store, decision: Decision, name: str) -> str:
    import json

    if not name.strip():
        raise RecommendError("name: give the decision a name")
    decision_id = utcnow().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    d = decision.as_dict()
    store.insert_rows("decisions", [{
        "decision_id": decision_id, "name": name.strip(), "scenario_id": decision.scenario_id,
        "created_at": utcnow(), "weights_json": json.dumps(decision.weights_requested),
        "constraints_json": json.dumps(d["constraints"]), "cost_json": json.dumps(d["cost_inputs"]),
        "verdict": decision.verdict, "result_json": json.dumps(d, ensure_ascii=False, default=str)}])
    return decision_id


def saved_decisions(store: Store, scenario_id: str | None = None) -> pd.DataFrame:
    where, params = ("WHERE scenario_id = ?", [scenario_id]) if scenario_id else ("", [])
    return store.query(f"SELECT decision_id, name, scenario_id, created_at, verdict, weights_json, "
                       f"constraints_json, cost_json FROM decisions {where} ORDER BY created_at DESC", params)


def verdicts(store: Store, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Each scenario's current verdict with the default weights (Home)."""
    rows = []
    for sid in store.query("SELECT DISTINCT scenario_id FROM runs ORDER BY 1").scenario_id:
        try:
            d = recommend(store, sid, n_boot=n_boot)
        except (RecommendError, costmod.CostError):
            continue
        top = d.ranking.iloc[0]
        rows.append({"scenario_id": sid, "verdict": d.verdict, "leader": top.model_spec,
                     "p_first": float(top.p_first), "score": float(top.score), "models": len(d.models),
                     "cases": d.n_cases, "warnings": list(d.warnings),
                     "dropped": [(c, why) for c, why in d.dropped_criteria.items()]})
    return pd.DataFrame(rows, columns=["scenario_id", "verdict", "leader", "p_first", "score", "models", "cases",
                                       "warnings", "dropped"])
