"""The suite's own cost: every shipped scenario on both bundled models, wall time against the
sum of pure generation time (each generation's end-to-end time, plus each model's load once
per run). What is left is the harness: scheduling, checks (the sandbox), writes, telemetry.

    .venv/bin/python bench/suite.py [--scenario ID ...] [--max-context 4096]

Ends with one line: wall_over_generation=X (goal: at most 1.10 on a 2-core machine).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import RunConfig, Runner, Store, load_scenario  # noqa: E402

MODELS = ["llamacpp/smollm2-135m", "llamacpp/gemma3-270m"]
SHIPPED = ["standard", "kb-qa", "customer-service", "dev-assistant"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", action="append", dest="scenarios", help="default: every shipped scenario")
    ap.add_argument("--max-context", type=int, default=4096,
                    help="context cap (the long-context probes beyond it are recorded as such, quickly)")
    args = ap.parse_args()
    store = Store(Path(tempfile.mkdtemp(prefix="modelpick-suite-")) / "suite.duckdb")
    total_wall = total_gen = 0.0
    for sid in args.scenarios or SHIPPED:
        t0 = time.perf_counter()
        run_id = Runner(store).run(RunConfig(load_scenario(sid), MODELS,
                                             backend_options={"max_context": args.max_context}))
        wall = time.perf_counter() - t0
        g = store.query("SELECT sum(e2e_ms) / 1000 AS gen_s, sum(load_ms) / 1000 AS load_s, count(*) AS n "
                        "FROM generations WHERE run_id = ?", [run_id]).iloc[0]
        gen = float(g.gen_s or 0) + float(g.load_s or 0)
        total_wall += wall
        total_gen += gen
        print(f"{sid}: {int(g.n)} generations, wall {wall:.1f} s, generation {gen:.1f} s "
              f"(ratio {wall / gen:.3f})", flush=True)
    print(f"total: wall {total_wall:.1f} s, generation {total_gen:.1f} s")
    print(f"wall_over_generation={total_wall / total_gen:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
