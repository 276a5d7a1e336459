"""Proof by simulation: evidence with a known truth, through the real `decide` and the real
per-metric comparison, many times over.

  false_winner  identical models (the same answers; timings with a spread between cases, between
                repeats of a case, and a host load that drifts through the run): the share of runs
                in which a winner is named at the default threshold. Goal: at most 5%.
  power         model B better on quality by 0.10 (40 cases; its score on a case is A's plus 0.10
                plus a model-by-case spread): the share of runs that name B. Goal: at least 80%.
  coverage      the 95% interval of the per-metric difference in quality (two repeats per case, each
                with its own check noise) covers the true difference (0.10, the simulation's own):
                goal 93-97% of runs.
  coverage_ttft the same for the difference in TTFT medians of two models whose true medians differ
                by 5% (a figure beside the three: two-level resampling carries the repeats' spread)
  false_winner_noisy  false_winner on a noisier host not flagged busy (30% between repeats, 50%
                drift): where the threshold alone stops protecting (a figure, no goal)

The simulation's assumptions, which the figures depend on: 40 cases, 3 repeats (power: 1), case TTFTs
uniform on 200-600 ms, each generation log-normal around its case by 20%, a host load that drifts by
up to 30% through the run with both models interleaved, and a model-by-case spread in quality of 0.15.

Every run is seeded (run i of a figure uses seed + i). Prints one line of figures, each over N runs
with its standard error:

    .venv/bin/python bench/calibration.py [--runs 500] [--seed 0] [--workers N]

The test suite runs the same simulations with fewer runs (tests/test_calibration.py)."""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.recommend import TOO_CLOSE, compare_per_case, decide, evidence_from_frames  # noqa: E402

N_CASES = 40
REPEATS = 3
# the standard scenario's weights: quality and three timings
WEIGHTS = {"quality": 0.5, "ttft": 0.2, "latency": 0.15, "throughput": 0.15}
TRUE_QUALITY_GAP = 0.10
TTFT_GAP = 1.05  # model B's TTFT median over A's in the coverage_ttft figure
# how much a model's score on a case strays from what the case's difficulty predicts (the part of a
# quality difference that is not the same on every case)
MODEL_CASE_SPREAD = 0.15


def _frames(rng: np.random.Generator, quality: dict, timing_scale: dict, repeats: int = REPEATS,
            drift: float = 0.3, repeat_spread: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generations and check results of one run of two models, interleaved cell by cell.

    quality[m]: (cases, repeats) scores; timing_scale[m]: a factor on every timing of m. A case's
    TTFT is drawn once (cases differ 3x); each generation then varies by `repeat_spread` (log-normal)
    and by the host's load at the moment it ran, a random walk through the run (`drift` at most)."""
    models = list(quality)
    cases = [f"c{i:02d}" for i in range(N_CASES)]
    base_ttft = rng.uniform(200.0, 600.0, N_CASES)
    base_e2e = base_ttft * rng.uniform(3.0, 6.0, N_CASES)
    n_cells = N_CASES * repeats
    walk = np.cumsum(rng.standard_normal(n_cells))
    walk = (walk - walk.min()) / max(np.ptp(walk), 1e-9)
    load = 1.0 + drift * walk  # the host slows down and recovers as other work comes and goes
    gens, checks = [], []
    for cell in range(n_cells):
        ci, r = divmod(cell, repeats)
        for m in (models if rng.random() < 0.5 else models[::-1]):  # a shuffled order per cell
            noise = math.exp(repeat_spread * rng.standard_normal())
            f = load[cell] * noise * timing_scale[m]
            ttft, e2e = base_ttft[ci] * f, base_e2e[ci] * f
            gens.append({"run_id": "sim", "model_spec": m, "case_id": cases[ci], "category": "knowledge",
                         "repeat": r, "turn": 0, "ok": True, "exceeds_context": False, "ttft_ms": ttft,
                         "e2e_ms": e2e, "decode_tok_per_s": 60.0 / f, "output_tokens": 60, "load_ms": None,
                         "rss_mb": None, "vram_mb": None})
            checks.append({"run_id": "sim", "model_spec": m, "case_id": cases[ci], "repeat": r, "turn": 0,
                           "check_type": "contains", "passed": True, "score": float(quality[m][ci, r]),
                           "weight": 1.0, "detail": ""})
    return pd.DataFrame(gens), pd.DataFrame(checks)


def _evidence(gens, checks):
    return evidence_from_frames(gens, checks, "sim", runs=[], langs={})


def identical(seed: int, repeat_spread: float = 0.2, drift: float = 0.3) -> bool:
    """True when a winner was named between two identical models."""
    rng = np.random.default_rng(seed)
    q = np.clip(rng.uniform(0.1, 0.9, N_CASES), 0, 1)[:, None].repeat(REPEATS, axis=1)  # the same answers
    gens, checks = _frames(rng, {"a": q, "b": q}, {"a": 1.0, "b": 1.0}, drift=drift, repeat_spread=repeat_spread)
    d = decide(None, evidence=_evidence(gens, checks), weights=WEIGHTS, seed=seed)
    return d.verdict != TOO_CLOSE


def identical_noisy(seed: int) -> bool:
    """As `identical` on a noisier host that was not flagged busy: 30% between repeats, 50% drift."""
    return identical(seed, repeat_spread=0.3, drift=0.5)


def _gap_scores(rng, repeats: int, check_noise: float = 0.0) -> dict:
    """Scores of A and B: a case's difficulty, B better by the gap, a model-by-case spread, and (per
    repeat) check noise; kept within 0..1 by the ranges chosen (clipping is rare and counted)."""
    base = rng.uniform(0.25, 0.65, N_CASES)
    a = base + rng.normal(0, MODEL_CASE_SPREAD, N_CASES)
    b = base + TRUE_QUALITY_GAP + rng.normal(0, MODEL_CASE_SPREAD, N_CASES)
    noise = lambda: rng.normal(0, check_noise, (N_CASES, repeats))  # noqa: E731
    return {"a": np.clip(a[:, None] + noise(), 0, 1), "b": np.clip(b[:, None] + noise(), 0, 1)}


def power(seed: int) -> bool:
    """True when B, better on quality by 0.10, is named."""
    rng = np.random.default_rng(seed)
    gens, checks = _frames(rng, _gap_scores(rng, 1), {"a": 1.0, "b": 1.0}, repeats=1)
    d = decide(None, evidence=_evidence(gens, checks), weights={"quality": 1.0}, seed=seed)
    return d.verdict == "b"


def coverage(seed: int) -> bool:
    """True when the 95% interval of the quality difference (B minus A) covers the true gap."""
    rng = np.random.default_rng(seed)
    gens, checks = _frames(rng, _gap_scores(rng, 2, check_noise=0.05), {"a": 1.0, "b": 1.0}, repeats=2)
    ev = _evidence(gens, checks)
    res = compare_per_case(ev.per_case["quality"], ev.models, "higher", n_boot=2000, seed=seed,
                           x3=ev.per_repeat["quality"])
    low, high = res["diff_ci"]
    if res["values"]["a"] > res["values"]["b"]:  # the interval is of leader minus runner-up
        low, high = -high, -low
    return low <= TRUE_QUALITY_GAP <= high


def coverage_ttft(seed: int) -> bool:
    """True when the 95% interval of the TTFT difference of medians covers the true one."""
    rng = np.random.default_rng(seed)
    q = np.full((N_CASES, REPEATS), 0.5)
    gens, checks = _frames(rng, {"a": q, "b": q}, {"a": 1.0, "b": TTFT_GAP}, drift=0.0)
    ev = _evidence(gens, checks)
    ttft = ev.per_case["ttft"]
    res = compare_per_case(ttft, ev.models, "lower", n_boot=2000, seed=seed, stat="median",
                           x3=ev.per_repeat["ttft"])
    low, high = res["diff_ci"]  # leader minus runner-up: A minus B when A is faster
    if res["values"]["a"] > res["values"]["b"]:
        low, high = -high, -low
    # the truth: case TTFTs are uniform on 200-600 ms (median 400), each generation scaled by a
    # log-normal noise of mean exp(spread^2 / 2); B's are TTFT_GAP times A's
    true_diff = 400.0 * math.exp(0.2 ** 2 / 2) * (1 - TTFT_GAP)
    return low <= true_diff <= high


def share(fn, runs: int, seed: int, workers: int = 1) -> tuple[float, float]:
    """(share of runs where fn is true, its standard error); the runs spread over `workers` processes
    (each run seeded by its number, so the figure is the same whatever their count)."""
    seeds = range(seed, seed + runs)
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            hits = sum(bool(h) for h in pool.map(fn, seeds, chunksize=max(1, runs // (4 * workers))))
    else:
        hits = sum(bool(fn(s)) for s in seeds)
    p = hits / runs
    return p, math.sqrt(max(p * (1 - p), 1e-12) / runs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: one per CPU)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    figures = {name: share(fn, args.runs, args.seed, args.workers)
               for name, fn in (("false_winner", identical), ("power", power), ("coverage", coverage),
                                ("coverage_ttft", coverage_ttft), ("false_winner_noisy", identical_noisy))}
    print(" ".join(f"{k}={p:.3f}±{se:.3f}" for k, (p, se) in figures.items())
          + f" runs={args.runs} seed={args.seed} seconds={time.perf_counter() - t0:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
