"""The decision's criteria, each in one place, in the image of `@check`: its name, which way is
better, its unit, what it measures, whether it has a value per case (resampled by case with the
others) or one per model, its statistic over cases, and the function that reads its values from the
evidence. The label is `crit_<name>` in engine/i18n.py. A new criterion is one registered function
here and its label; the scenarios' `weights`, the Recommend page's sliders, the summary's tables and
the command line's `--weights` all take the list from `CRITERIA`.

A per-case function gets the run's frames (`Frames`) and returns a (models, cases) matrix; a
per-model function gets the decision's gathered facts and a model and returns a number or None;
`source` says where a per-model value comes from; `resample(values, gathered, draw)` (per-model
criteria) moves a value with the bootstrap's draws instead of keeping it fixed, `draw(criterion,
stat)` giving a per-case criterion's draws."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Criterion:
    name: str
    better: str  # "higher" or "lower"
    unit: str
    measures: str
    per_case: bool
    stat: str  # over cases: "mean" or "median"
    value: Callable[..., Any]
    source: Callable[[Any, str], str] | None = None
    resample: Callable[..., np.ndarray] | None = None
    timing: bool = False  # a clock measured it: a busy or mixed host cannot decide on it

    @property
    def label_key(self) -> str:
        return f"crit_{self.name}"


REGISTRY: dict[str, Criterion] = {}


def criterion(name: str, better: str, unit: str, measures: str, *, per_case: bool = False, stat: str = "mean",
              source: Callable[[Any, str], str] | None = None, resample: Callable[..., np.ndarray] | None = None,
              timing: bool = False):
    if better not in ("higher", "lower") or stat not in ("mean", "median"):
        raise ValueError(f"criterion {name}: better is higher or lower, stat mean or median")

    def deco(fn):
        REGISTRY[name] = Criterion(name, better, unit, measures, per_case, stat, fn, source, resample, timing)
        return fn
    return deco


@dataclass
class Frames:
    """What the per-case criteria read: the case scores, the usable generations (ok, within context)
    and the blind votes as a matrix; `matrix(frame, column)` is the mean per model and case."""
    scores: Any
    usable: Any
    preference: np.ndarray
    matrix: Callable[[Any, str], np.ndarray]
    pass_k: int | None = None  # k of the consistency criterion's pass^k; None: the repeats run


# Timings are summarised by the median over cases: on a shared or noisy machine a few stalled
# requests must not decide; quality (a score per case) by the mean.
def _quality_source(g, m: str) -> str:
    """Where quality comes from when a judge scored part of it: the judge and how often it agrees with
    the raters (engine.ratings.judge_agreement), beside the criterion."""
    from .i18n import Joined, Msg

    judge = getattr(g, "judge", None) or {}
    parts = []
    for j in judge.get("scoring", []):
        a = judge["agreement"].get(j) or {}
        if j in judge.get("left_out", []):
            parts.append(Msg("src_judge_left_out", judge=j))
        elif a.get("share") is not None and not a.get("problem"):
            parts.append(Msg("src_judge_agrees", judge=j, pct=f"{a['share']:.0%}"))
        else:
            parts.append(Msg("src_judge_unmeasured", judge=j))
    return Joined(parts, "; ") if parts else ""


@criterion("quality", "higher", "score 0-1", "mean weighted check score per case", per_case=True,
           source=_quality_source)
def _quality(f: Frames) -> np.ndarray:
    return f.matrix(f.scores, "score")


@criterion("ttft", "lower", "ms", "median over cases of the time to first answer token", per_case=True,
           stat="median", timing=True)
def _ttft(f: Frames) -> np.ndarray:
    return f.matrix(f.usable, "ttft_ms")


@criterion("latency", "lower", "ms", "median over cases of the end-to-end latency", per_case=True, stat="median",
           timing=True)
def _latency(f: Frames) -> np.ndarray:
    return f.matrix(f.usable, "e2e_ms")


@criterion("throughput", "higher", "tok/s", "median over cases of the decode rate", per_case=True, stat="median",
           timing=True)
def _throughput(f: Frames) -> np.ndarray:
    return f.matrix(f.usable, "decode_tok_per_s")


@criterion("load", "lower", "s", "model load time (cold start)", timing=True)
def _load(g, m: str) -> float | None:
    return float(np.median(g.load[m])) if g.load[m] else None


@criterion("memory", "lower", "MB", "GPU memory where measured, else host memory the model added",
           source=lambda g, m: g.memory_kind[m])
def _memory(g, m: str) -> float | None:
    return float(np.median(g.memory[m])) if g.memory[m] else None


def _cost_source(g, m: str) -> str:
    cap = g.cost_rows[m].capacity
    return f"{g.cost_rows[m].gpu}, {cap.source}" if cap else "unknown"


def _cost_draws(values: np.ndarray, g, draw: Callable[[str, str], np.ndarray]) -> np.ndarray:
    """Cost from a sequential run's capacity moves with the resampled mean latency; the others stay.
    `draw(criterion, stat)` is a per-case criterion's bootstrap draws (models, draws)."""
    import warnings

    lat = draw("latency", "mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        base_lat = np.nanmean(g.ev.per_case["latency"], axis=1)
    moves = np.array([g.cost_draw_scale[m] for m in g.models])[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return values[:, None] * np.where(moves, lat / base_lat[:, None], 1.0)


@criterion("cost", "lower", "per 1,000 requests", "hourly GPU price / measured or estimated capacity",
           source=_cost_source, resample=_cost_draws)
def _cost(g, m: str) -> float | None:
    return g.cost_rows[m].cost_per_1k_requests


@criterion("context", "higher", "tokens", "context length (catalog)", source=lambda g, m: "catalog")
def _context(g, m: str) -> float | None:
    e = g.entries[m]
    return e.context_tokens if e else None


@criterion("ecosystem", "higher", "ways to serve", "engines the catalog lists for it (Ollama, vLLM, GGUF)",
           source=lambda g, m: "catalog")
def _ecosystem(g, m: str) -> float | None:
    e = g.entries[m]
    return float(len({k for k in e.serve if k in ("ollama", "vllm", "gguf")})) if e else None


@criterion("preference", "higher", "share of votes won",
           "blind A/B votes of your raters per case (a tie counts half)", per_case=True)
def _preference(f: Frames) -> np.ndarray:
    return f.preference


def _tries(scores, by: list[str]):
    """Per group of case scores: n tries and c successes (a try succeeds when every check passed)."""
    return scores.assign(won=scores.score >= 1 - 1e-9).groupby(by).agg(n=("won", "size"), c=("won", "sum"))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """τ-bench's pass^k: with n tries of a task and c successes, the chance that k tries drawn from them
    all succeed, C(c, k) / C(n, k); NaN where fewer than k tries were run."""
    from math import comb

    if k < 1 or n < k:
        return float("nan")
    return comb(c, k) / comb(n, k)


@criterion("consistency", "higher", "pass^k 0-1",
           "chance that all k tries of a case succeed (every check passed), τ-bench's pass^k; k = the repeats run",
           per_case=True)
def _consistency(f: Frames) -> np.ndarray:
    import pandas as pd

    s = f.scores
    if s.empty:
        return f.matrix(s.assign(pass_k=pd.Series(dtype=float), repeat=pd.Series(dtype=int)), "pass_k")
    tries = _tries(s, ["model_spec", "case_id"])
    k = f.pass_k  # None: the repeats run (each model and case's own count); `--pass-k` sets it
    per = tries.reset_index()
    # one repeat is no evidence of consistency: the criterion needs repeats rather than showing pass^1
    per["pass_k"] = [pass_hat_k(int(n), int(c), k or int(n)) if n >= 2 else float("nan")
                     for n, c in zip(per.n, per.c)]
    return f.matrix(per.assign(repeat=0), "pass_k")


def pass_curve(scores, model: str) -> dict[int, float]:
    """pass^1 .. pass^n of a model, averaged over its cases (n: the fewest repeats among them)."""
    s = scores[scores.model_spec == model]
    if s.empty:
        return {}
    tries = _tries(s, ["case_id"])
    top = int(tries.n.min())
    return {k: float(np.mean([pass_hat_k(int(n), int(c), k) for n, c in zip(tries.n, tries.c)]))
            for k in range(1, top + 1)}


CRITERIA = tuple(REGISTRY)
PER_CASE = tuple(c for c, k in REGISTRY.items() if k.per_case)
TIMING = tuple(c for c, k in REGISTRY.items() if k.timing)
PER_MODEL = tuple(c for c, k in REGISTRY.items() if not k.per_case)
