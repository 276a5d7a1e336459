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

from engine import load_scenario, recommend, report  # noqa: E402
from engine.store import Store, _insert, _transaction  # noqa: E402


def build(path: Path, runs: int, seed: int = 0) -> Store:
    """Runs written as the runner writes them: a row per turn, a row per check."""
    store = Store(path)
    scenario = load_scenario("standard")
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1)
    models = {"llamacpp/smollm2-135m": (0.7, 150.0), "llamacpp/gemma3-270m": (0.55, 120.0)}
    for r in range(runs):
        run_id = store.create_run("standard", {"models": list(models), "backend_options": {"n_ctx": 4096}},
                                  {"gpus": []}, 0, run_id=f"bench-{r:04d}")
        gens, checks = [], []
        for m, (quality, ttft) in models.items():
            for i, case in enumerate(scenario.cases):
                for turn, (_, case_checks) in enumerate(case.turn_inputs()):
                    t = ttft * rng.lognormal(0, 0.2)
                    gens.append({"run_id": run_id, "model_spec": m, "case_id": case.id, "category": case.category,
                                 "repeat": 0, "turn": turn, "ok": True, "output_text": "answer " * 20,
                                 "load_ms": 500.0 if i == 0 and turn == 0 else None, "ttft_ms": t,
                                 "e2e_ms": t + 900 * rng.lognormal(0, 0.2),
                                 "decode_tok_per_s": 100 * rng.lognormal(0, 0.1),
                                 "output_tokens": 40, "rss_mb": 300.0, "vram_mb": None,
                                 "started_at": start + timedelta(minutes=r)})
                    for c in case_checks:
                        passed = bool(rng.random() < quality)
                        checks.append({"run_id": run_id, "model_spec": m, "case_id": case.id, "repeat": 0,
                                       "turn": turn, "check_type": c.type, "passed": passed,
                                       "score": float(passed), "weight": c.weight, "detail": ""})
        with store.connect() as con, _transaction(con):
            _insert(con, "generations", gens)
            _insert(con, "check_results", checks)
        store.finish_run(run_id, "done")
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
