"""The dashboard at scale: Home, Compare and Recommend (through Streamlit's AppTest) and the
recommendation function on a results file of about 1,000 and about 1,000,000 generation rows.

    .venv/bin/python bench/dashboard_scale.py [--small 1000] [--large 1000000] [--rounds 3]

The rows are runs as the runner writes them (a row per turn, a row per check) of every shipped
scenario and three models, copied with new run ids and later start times until the target is
reached, so the large file holds thousands of runs. Each page is rendered once to warm up, then
`--rounds` times; the figures are medians. Ends with one line:
`render_1m_s=X ratio_1m_to_1k=Y` (the slowest page at the large size, and the largest ratio of
a page's time at the large size to its time at the small size)."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from synthetic import write_run  # noqa: E402

from engine import recommend  # noqa: E402
from engine.scenarios import list_scenarios  # noqa: E402
from engine.store import Store, _transaction  # noqa: E402

MODELS = {"llamacpp/smollm2-135m": (0.7, 150.0), "llamacpp/gemma3-270m": (0.55, 120.0),
          "openai/qwen2.5-7b-instruct": (0.8, 300.0)}
PAGES = {"home": None, "compare": "pages/compare.py", "recommend": "pages/recommend.py"}


def template(store: Store, seed: int = 0) -> int:
    """One run of each shipped scenario with every model; returns the generation rows written."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1)
    return sum(write_run(store, scenario, MODELS, f"scale-{scenario.id}", rng, start + timedelta(minutes=i), 8192)
               for i, scenario in enumerate(list_scenarios()))


def replicate(store: Store, copies: int) -> None:
    """`copies` more of every run, each with its own id and an hour later than the one before."""
    with store.connect() as con, _transaction(con):
        for table in ("runs", "generations", "check_results"):
            cols = con.execute(f"DESCRIBE {table}").fetchall()
            shifted = [f"t.{name} + r.k * INTERVAL 1 HOUR AS {name}" for name, kind, *_ in cols
                       if kind.startswith("TIMESTAMP") and name != "run_id"]
            replace = ", ".join(["t.run_id || '-' || r.k AS run_id", *shifted])
            con.execute(f"INSERT INTO {table} SELECT t.* REPLACE ({replace}) "
                        f"FROM {table} AS t CROSS JOIN range(1, {copies + 1}) AS r(k)")


def build(path: Path, target_rows: int) -> tuple[Store, int, int]:
    store = Store(path)
    per_copy = template(store)
    copies = max(0, round(target_rows / per_copy) - 1)
    if copies:
        replicate(store, copies)
    rows = store.query("SELECT count(*) AS n FROM generations").n[0]
    runs = store.query("SELECT count(*) AS n FROM runs").n[0]
    return store, int(rows), int(runs)


def page_times(rounds: int) -> dict[str, float]:
    import logging

    from streamlit.testing.v1 import AppTest

    # "missing ScriptRunContext" from every page run outside a server: expected under AppTest
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)

    times: dict[str, list[float]] = {p: [] for p in PAGES}
    for r in range(rounds + 1):  # the first round warms up imports and caches
        for name, page in PAGES.items():
            at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=300)
            if page:
                at.run()
                at.switch_page(page)
            t0 = time.perf_counter()
            at.run()
            elapsed = time.perf_counter() - t0
            if at.exception:
                raise SystemExit(f"{name}: {at.exception[0].message}")
            if r:
                times[name].append(elapsed)
    return {p: statistics.median(v) for p, v in times.items()}


def function_time(store: Store, rounds: int) -> float:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        recommend.recommend(store, "standard")
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def measure(target: int, rounds: int, tmp: str) -> dict[str, float]:
    path = Path(tmp) / f"scale-{target}.duckdb"
    t0 = time.perf_counter()
    store, rows, runs = build(path, target)
    print(f"{rows:,} generation rows in {runs:,} runs built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    os.environ["MODELPICK_DB"] = str(path)
    figures = page_times(rounds)
    figures["recommend_fn"] = function_time(store, rounds)
    print(" ".join(f"{k}_s={v:.2f}" for k, v in figures.items()), file=sys.stderr)
    return figures


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--small", type=int, default=1000)
    p.add_argument("--large", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = measure(args.small, args.rounds, tmp)
        large = measure(args.large, args.rounds, tmp)
    print(f"{'':12} {'small':>8} {'large':>8} {'ratio':>6}")
    for k in [*PAGES, "recommend_fn"]:
        print(f"{k:12} {small[k]:8.2f} {large[k]:8.2f} {large[k] / small[k]:6.2f}")
    slowest = max(large[k] for k in PAGES)
    ratio = max(large[k] / small[k] for k in PAGES)
    print(f"render_1m_s={slowest:.2f} ratio_1m_to_1k={ratio:.2f}")


if __name__ == "__main__":
    main()
