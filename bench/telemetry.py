"""The cost of the telemetry sampler on decode speed.

The bundled SmolLM2 in process, the same prompts, rounds alternating generations with the
20 Hz sampler running (as the runner does) and without. Prints the median decode speed of each
(llama.cpp's own counters) and their ratio, side by side in one run:
    decode_with_over_without=X   (goal: >= 0.99, i.e. a cost below 1%)

    .venv/bin/python bench/telemetry.py [--rounds 5] [--max-tokens 128]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.backends import EngineReport, GenParams, resolve  # noqa: E402
from engine.scenarios import load_scenario  # noqa: E402
from engine.telemetry import Sampler  # noqa: E402


def decode_rate(backend, messages, params, sampled: bool) -> float | None:
    sampler = Sampler(os.getpid()).__enter__() if sampled else None
    report = None
    for item in backend.stream(messages, params):
        if isinstance(item, EngineReport):
            report = item
    if sampler:
        sampler.__exit__(None, None, None)
    if not report or not report.engine_decode_ms:
        return None
    return (report.engine_decode_tokens or report.output_tokens or 0) / (report.engine_decode_ms / 1000)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    backend = resolve("llamacpp/smollm2-135m", n_ctx=2048)
    backend.load()
    prompts = [c.turn_inputs()[0][0] for c in load_scenario("standard").cases if not c.turns][:4]
    params = GenParams(max_tokens=args.max_tokens, temperature=0.0, seed=42)
    decode_rate(backend, prompts[0], params, False)  # warm-up
    rates: dict[bool, list[float]] = {True: [], False: []}
    for r in range(args.rounds):
        order = (True, False) if r % 2 == 0 else (False, True)  # ABBA: drift cancels
        for sampled in order:
            for messages in prompts:
                rate = decode_rate(backend, messages, params, sampled)
                if rate:
                    rates[sampled].append(rate)
    backend.close()
    with_s, without = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"decode tok/s median: with sampler {with_s:.1f} ({len(rates[True])} generations), "
          f"without {without:.1f} ({len(rates[False])})")
    print(f"decode_with_over_without={with_s / without:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
