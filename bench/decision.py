"""How long the decision takes on a large results file: `recommend` and `report` on a
database of N runs (default 100) of the standard scenario, two models each.

    .venv/bin/python bench/decision.py [--runs 100] [--rounds 3]

Ends with: recommend_s=X report_md_s=Y report_html_s=Z report_pdf_s=W cli_report_pdf_s=V
(medians over rounds; the CLI figure includes starting Python)."""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from synthetic import write_run  # noqa: E402

from engine import load_scenario, recommend, report  # noqa: E402
from engine.store import Store  # noqa: E402


def build(path: Path, runs: int, seed: int = 0) -> Store:
    """Runs written as the runner writes them: a row per turn, a row per check."""
    store = Store(path)
    scenario = load_scenario("standard")
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1)
    models = {"llamacpp/smollm2-135m": (0.7, 150.0), "llamacpp/gemma3-270m": (0.55, 120.0)}
    for r in range(runs):
        write_run(store, scenario, models, f"bench-{r:04d}", rng, start + timedelta(minutes=r))
    return store


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        t_build = timed(lambda: build(path, args.runs))
        store = Store(path)
        gens = store.query("SELECT count(*) AS n FROM generations").n[0]
        print(f"database: {args.runs} runs, {gens} generations, built in {t_build:.1f} s", file=sys.stderr)
        figures: dict[str, list[float]] = {k: [] for k in ("recommend", "report_md", "report_html",
                                                           "report_pdf", "cli_report_pdf")}
        for _ in range(args.rounds):
            figures["recommend"].append(timed(lambda: recommend.recommend(store, "standard")))
            for fmt in ("md", "html", "pdf"):
                figures[f"report_{fmt}"].append(
                    timed(lambda: report.render(recommend.recommend(store, "standard"), fmt)))  # noqa: B023
            out = Path(tmp) / "r.pdf"
            figures["cli_report_pdf"].append(timed(lambda: subprocess.run(
                [sys.executable, "-m", "engine", "report", "--db", str(path), "--scenario", "standard",
                 "--format", "pdf", "--out", str(out)], cwd=ROOT, check=True, capture_output=True)))  # noqa: B023
        d = recommend.recommend(store, "standard")
        print(f"verdict on the latest run per model: {d.verdict}", file=sys.stderr)
        print(" ".join(f"{k}_s={statistics.median(v):.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
