"""What the tool loop costs beside the model, and how fast the BFCL pack is scored.

1. Per tool step, against an instant in-process model (the fake backend): the loop's own time (calls
   assembled, messages built, steps merged) and the environment's call in the sandbox, as the time of
   the whole turn less the model's time, divided by its steps; with the real sandboxed environment of
   the customer-service scenario, and with an instant environment in place of it (the loop alone).
   Goals: under 20 ms median with the sandbox, under 1 ms without. The sandbox starts once per case
   and repeat (its process then answers every call of the case); that start is printed apart.
2. The BFCL pack, 200 cases (`--limit 40` of five categories), run and scored through the runner
   against an instant loopback OpenAI-compatible server that answers every case with a call. Goal:
   under 60 s on 2 cores.

    .venv/bin/python bench/tool_loop.py [--rounds 5] [--steps 8]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.backends import fake, resolve  # noqa: E402
from engine.environment import CallResult, Environment  # noqa: E402
from engine.runner import RunConfig, Runner  # noqa: E402
from engine.scenarios import load_scenario  # noqa: E402
from engine.store import Store  # noqa: E402
from engine.tools import tools_payload  # noqa: E402


class InstantEnvironment:
    """An environment that answers every call at once, in this process: the loop's cost alone."""

    def __init__(self, state):
        self.state = state

    def call(self, name, arguments, problem=None) -> CallResult:
        return CallResult('{"ok": true}', None, 0.0)

    def close(self) -> None:
        pass


def loop_cost(runner: Runner, case, steps: int, sandboxed: bool) -> tuple[float, float | None]:
    """(ms per step the turn took beyond the model's own time, ms of the sandbox's start with its first call)."""
    from dataclasses import replace

    fake.clear()
    fake.enqueue("agent", *[{"calls": [{"name": "lookup_order", "arguments": {"order_id": "A1001"}}]}] * steps,
                 {"text": "Done."})
    backend = resolve("fake/agent")
    config = RunConfig(load_scenario("customer-service"), ["fake/agent"], warmup=False)
    params = replace(config.params(case, 0), tools=tuple(tools_payload(case.offered)))
    env: Any = Environment(case.environment_code, case.state, {t.name for t in case.offered}) if sandboxed \
        else InstantEnvironment(dict(case.state))
    case = case.model_copy(update={"max_steps": steps + 2})
    start_ms = None
    try:
        if sandboxed:  # the sandbox's start belongs to the case, not to a step: timed apart, before the clock
            start_ms = env.call("lookup_order", {"order_id": "A1001"}).tool_ms
        history = [{"role": "user", "content": "Refund A1001"}]
        t0 = time.perf_counter()
        timed = runner._act(config, "fake/agent", backend, case, history, params, env, watch=False)
        wall_ms = (time.perf_counter() - t0) * 1000
    finally:
        env.close()
    steps_made = timed.steps or []
    model_ms = sum(s["model_ms"] for s in steps_made)
    return (wall_ms - model_ms) / (len(steps_made) - 1), start_ms


def bfcl_pack_s() -> tuple[float, int]:
    from engine.packs import bfcl_yaml
    from engine.scenarios import parse_scenario
    from tests.fakeservers import FakeServer, OpenAIHandler

    text, _ = bfcl_yaml("bfcl-bench", None, 40)
    sc = parse_scenario(text, "bfcl-bench")
    with tempfile.TemporaryDirectory() as tmp, FakeServer(OpenAIHandler, delay_s=0) as server:
        server.httpd.tool_script = [{"calls": [{"name": c.offered[0].wire_name, "arguments": {}}]} for c in sc.cases]
        store = Store(os.path.join(tmp, "bench.duckdb"))
        t0 = time.perf_counter()
        run_id = Runner(store).run(RunConfig(sc, [f"openai/caller@{server.url}/v1"], warmup=False))
        took = time.perf_counter() - t0
        n = len(store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id]))
    return took, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    case = next(c for c in load_scenario("customer-service").cases if c.id == "act-refund-en")
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(Store(os.path.join(tmp, "bench.duckdb")))
        with_sandbox: list[float] = []
        alone: list[float] = []
        starts: list[float] = []
        for _ in range(args.rounds):  # side by side, alternating
            step_ms, start_ms = loop_cost(runner, case, args.steps, True)
            with_sandbox.append(step_ms)
            starts.append(start_ms or 0.0)
            alone.append(loop_cost(runner, case, args.steps, False)[0])
    print(f"tool step, loop + sandboxed environment: median {statistics.median(with_sandbox):.2f} ms "
          f"(rounds: {', '.join(f'{x:.2f}' for x in with_sandbox)}; goal < 20 ms)")
    print(f"sandbox start with its first call, once per case and repeat: median {statistics.median(starts):.1f} ms")
    print(f"tool step, loop alone:                   median {statistics.median(alone):.3f} ms "
          f"(rounds: {', '.join(f'{x:.3f}' for x in alone)}; goal < 1 ms)")
    took, n = bfcl_pack_s()
    print(f"BFCL pack, 200 cases (--limit 40, five categories) against an instant server: {took:.1f} s, "
          f"{n} checks scored (goal < 60 s)")


if __name__ == "__main__":
    main()
