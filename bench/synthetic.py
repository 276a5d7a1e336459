"""Runs as the runner writes them (a row per turn, a row per check), with made-up figures:
the large results files of bench/decision.py and bench/dashboard_scale.py."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from engine.scenarios import Scenario
from engine.store import Store, _insert, _transaction


def write_run(store: Store, scenario: Scenario, models: dict[str, tuple[float, float]], run_id: str,
              rng: np.random.Generator, start: datetime, context_tokens: int | None = None) -> int:
    """One finished run of `scenario`; `models` maps a spec to (pass rate, median TTFT ms).
    Returns the generation rows written."""
    run_id = store.create_run(scenario.id, {"models": list(models), "backend_options": {"n_ctx": 4096}},
                              {"gpus": [], "cpu_count": 2}, 0, run_id=run_id)
    gens: list[dict] = []
    checks: list[dict] = []
    for m, (quality, ttft) in models.items():
        for i, case in enumerate(scenario.cases):
            for turn, (_, case_checks) in enumerate(case.turn_inputs(context_tokens)):
                t = ttft * rng.lognormal(0, 0.2)
                gens.append({"run_id": run_id, "model_spec": m, "case_id": case.id, "category": case.category,
                             "repeat": 0, "turn": turn, "ok": True, "output_text": "answer " * 20,
                             "load_ms": 500.0 if i == 0 and turn == 0 else None, "ttft_ms": t,
                             "e2e_ms": t + 900 * rng.lognormal(0, 0.2),
                             "decode_tok_per_s": 100 * rng.lognormal(0, 0.1), "output_tokens": 40,
                             "rss_mb": 300.0, "vram_mb": None, "cache_mode": "cold",
                             "started_at": start + timedelta(seconds=len(gens))})
                for c in case_checks:
                    passed = bool(rng.random() < quality)
                    checks.append({"run_id": run_id, "model_spec": m, "case_id": case.id, "repeat": 0,
                                   "turn": turn, "check_type": c.type, "passed": passed,
                                   "score": float(passed), "weight": c.weight, "detail": ""})
    with store.connect() as con, _transaction(con):
        _insert(con, "generations", gens)
        _insert(con, "check_results", checks)
    store.finish_run(run_id, "done")
    return len(gens)
