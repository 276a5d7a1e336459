"""Harness overhead on the bundled SmolLM2 over the standard scenario.

In one process, alternating rounds of (a) the runner and (b) a bare llama-cpp-python
loop doing the same work (load, one warm-up, the same prompts, histories and limits).
Prints two ratios, medians over rounds:
  decode_ratio: decode tok/s measured from the stream (tokens after the first over the
                time after the first chunk) / llama.cpp's own counters, same generations
  wall_ratio:   runner wall time / bare loop wall time
Goal: decode_ratio >= 0.97, wall_ratio <= 1.05.

    .venv/bin/python bench/overhead.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402

from engine.backends.llamacpp import _default_threads, gguf_path_for  # noqa: E402
from engine.runner import WARMUP_MAX_TOKENS, RunConfig, Runner  # noqa: E402
from engine.scenarios import load_scenario  # noqa: E402
from engine.store import Store  # noqa: E402

MODEL = "smollm2-135m"


def bare_loop(scenario, n_threads: int, n_ctx: int) -> float:
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(gguf_path_for(MODEL)), n_ctx=n_ctx,
                          n_threads=n_threads, verbose=False)
    d = scenario.defaults

    def generate(messages, max_tokens, seed):
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        text = []
        for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                temperature=d.temperature, seed=seed, stream=True):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                text.append(piece)
        llama_cpp.llama_perf_context(llm._ctx.ctx)  # read the counters, as the runner does
        return "".join(text)

    generate(scenario.cases[0].turn_inputs()[0][0], WARMUP_MAX_TOKENS, 0)
    for case in scenario.cases:
        history = []
        for new_msgs, _ in case.turn_inputs():
            history += new_msgs
            history.append({"role": "assistant",
                            "content": generate(history, case.max_tokens or d.max_tokens, d.seed)})
    llm.close()
    return time.perf_counter() - t0


def harness(scenario, db: Path, options: dict) -> tuple[float, list[float], float, float]:
    store = Store(db)
    t0 = time.perf_counter()
    run_id = Runner(store).run(RunConfig(scenario, [f"llamacpp/{MODEL}"], backend_options=options))
    wall = time.perf_counter() - t0
    g = store.generations(run_id)
    g = g[g.ok & g.stream_decode_tok_per_s.notna() & g.decode_tok_per_s.notna()]
    per_gen = (g.stream_decode_tok_per_s / g.decode_tok_per_s).tolist()
    # Aggregate over the run: total tokens after the first / total time after the first chunk.
    stream_s = ((g.output_tokens - 1) / g.stream_decode_tok_per_s).sum()
    engine_s = (g.engine_decode_ms / 1000).sum()
    engine_tokens = (g.decode_tok_per_s * g.engine_decode_ms / 1000).sum()
    agg = ((g.output_tokens - 1).sum() / stream_s) / (engine_tokens / engine_s)
    return wall, per_gen, agg, g.decode_tok_per_s.median()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    scenario = load_scenario("standard")
    options = {"n_ctx": 4096}
    n_threads = _default_threads()
    wall_ratios, decode_ratios, agg_ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            bare_s = bare_loop(scenario, n_threads, options["n_ctx"])
            run_s, per_gen, agg, engine_tps = harness(scenario, Path(tmp) / f"r{i}.duckdb", options)
            wall_ratios.append(run_s / bare_s)
            decode_ratios.append(statistics.median(per_gen))
            agg_ratios.append(agg)
            print(f"round {i + 1}: bare {bare_s:.2f} s, runner {run_s:.2f} s, wall ratio "
                  f"{run_s / bare_s:.3f}; decode ratio median {statistics.median(per_gen):.3f} "
                  f"(aggregate {agg:.3f}, {len(per_gen)} generations, engine {engine_tps:.1f} tok/s)",
                  flush=True)
    print(f"decode_ratio={statistics.median(decode_ratios):.3f} "
          f"wall_ratio={statistics.median(wall_ratios):.3f}")


if __name__ == "__main__":
    main()
