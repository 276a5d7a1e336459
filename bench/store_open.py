"""The results file kept open between the operations of a burst against opened for each one.

Opening a DuckDB file builds its function catalog (about 30 ms); engine/store.py keeps a file open in
the process for LINGER_S after its last use. In one process, alternating rounds, the same work with
LINGER_S as shipped and with 0 (each operation opens and closes the file, as before):
  run:    a run of the standard scenario on two instant fake models, 4 repeats (the runner's writes)
  decide: the recommendation on that run (the decision's reads)
Prints the seconds of each and the ratios (kept open over opened each time), medians over rounds.

    .venv/bin/python bench/store_open.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import store as store_module  # noqa: E402
from engine.recommend import recommend  # noqa: E402
from engine.runner import RunConfig, Runner  # noqa: E402
from engine.scenarios import load_scenario  # noqa: E402


def one(linger_s: float, folder: Path) -> tuple[float, float]:
    store_module.LINGER_S = linger_s
    store = store_module.Store(folder / f"linger-{linger_s}-{time.monotonic_ns()}.duckdb")
    t0 = time.perf_counter()
    Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo", "fake/mirror"], repeats=4, warmup=False))
    t1 = time.perf_counter()
    recommend(store, "standard", n_boot=200)
    return t1 - t0, time.perf_counter() - t1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    shipped = store_module.LINGER_S
    folder = Path(tempfile.mkdtemp(prefix="modelpick-store-open-"))
    kept: list[tuple[float, float]] = []
    each: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        kept.append(one(shipped, folder))
        each.append(one(0.0, folder))
    run_kept, run_each = statistics.median(k[0] for k in kept), statistics.median(e[0] for e in each)
    dec_kept, dec_each = statistics.median(k[1] for k in kept), statistics.median(e[1] for e in each)
    print(f"run_s_kept_open={run_kept:.2f} run_s_opened_each_time={run_each:.2f} "
          f"decide_s_kept_open={dec_kept:.2f} decide_s_opened_each_time={dec_each:.2f} "
          f"run_ratio={run_kept / run_each:.2f} decide_ratio={dec_kept / dec_each:.2f} "
          f"linger_s={shipped} rounds={args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
