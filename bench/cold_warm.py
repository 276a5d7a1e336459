"""Cold against warm TTFT on llama-cpp-python's real server, side by side in one run.

The same three kb-qa cases (a ~500-token handbook before each question), two repeats, SmolLM2 behind
`python -m llama_cpp.server` on loopback: a cold run (a marker starts every conversation, so no cached
prefix fits) and a warm run (each prompt sent once untimed first), alternating over rounds. Prints the
median warm/cold TTFT ratio over rounds; a prefix cache that works gives well under 1.

    .venv/bin/python bench/cold_warm.py [--rounds 3]
    # ends with: warm_over_cold_ttft=X
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.catalog import bundled_path  # noqa: E402
from engine.runner import RunConfig, Runner  # noqa: E402
from engine.scenarios import load_scenario  # noqa: E402
from engine.store import Store  # noqa: E402
from tests.conftest import serve_gguf  # noqa: E402

CASES = ["leave-en", "sick-note-en", "helpdesk-en"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sc = load_scenario("kb-qa")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp, serve_gguf(bundled_path("smollm2-135m"), "smollm2", tmp) as url:
        store = Store(Path(tmp) / "cw.duckdb")
        spec = f"openai/smollm2@{url}"
        for r in range(args.rounds):
            ttft = {}
            for mode in (("cold", "warm") if r % 2 == 0 else ("warm", "cold")):
                run_id = Runner(store).run(RunConfig(sc, [spec], case_ids=CASES, repeats=2, max_tokens=4,
                                                     cache_mode=mode))
                ttft[mode] = statistics.median(store.generations(run_id).ttft_ms.dropna())
            ratios.append(ttft["warm"] / ttft["cold"])
            print(f"round {r + 1}: TTFT median cold {ttft['cold']:.0f} ms, warm {ttft['warm']:.0f} ms, "
                  f"warm/cold {ratios[-1]:.3f}", flush=True)
    print(f"warm_over_cold_ttft={statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
