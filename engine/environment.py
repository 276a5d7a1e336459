"""A scenario's environment: the Python file whose functions answer the tools a model calls.

Each function has a tool's name and is called as `fn(state, **arguments)`: `state` is the case's
state (a dict, from the scenario's YAML, fresh for every case and repeat), which the function may
change (refund an order, open a ticket), and what it returns (anything JSON can hold) is sent back to
the model as the tool's result. The file is model-adjacent code written by whoever wrote the
scenario, and its functions run on arguments a model chose: every call runs in the sandbox
(engine.sandbox: no host files, no network, limits on time, memory and output), in one sandboxed
process per case that is started again after a call that breaks it. The state lives here, in the
harness: a call that raises, loops or returns what JSON cannot hold leaves it as it was, and its
result says what went wrong, so the case goes on.
"""
from __future__ import annotations

import ast
import copy
import functools
import json
import re
import time
from dataclasses import dataclass

from .sandbox import Limits, Session

# Per call: a tool answers within this (a loop is stopped); memory and CPU for the whole case.
TOOL_LIMITS = Limits(wall_s=5.0, cpu_s=60, memory_mb=1024, output_bytes=1024 * 1024, scratch_mb=16)

_HARNESS = r'''
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # environment.py beside it (-I leaves it out)
for extra in ("/tmp/packages", *(open("packages.pth").read().split() if os.path.exists("packages.pth") else [])):
    sys.path.insert(0, extra)
real_out = sys.stdout
sys.stdout = sys.stderr  # what the tools print is not the answer
try:
    import environment
    broken = None
except BaseException as exc:
    environment, broken = None, f"{type(exc).__name__}: {exc}"


def answer(obj):
    real_out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    real_out.flush()


for line in sys.stdin:
    req = json.loads(line)
    name = req["tool"]
    if broken:
        answer({"error": f"the environment file does not load: {broken}"})
        continue
    fn = getattr(environment, name, None)
    if not callable(fn):
        answer({"error": f"the environment has no function {name}"})
        continue
    state = req["state"]
    try:
        result = fn(state, **req["arguments"])
    except RecursionError:
        answer({"error": f"{name} raised RecursionError (it recursed without end)"})
        continue
    except BaseException as exc:
        answer({"error": f"{name} raised {type(exc).__name__}: {exc}"[:2000]})
        continue
    try:
        text = json.dumps({"result": result, "state": state}, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        answer({"error": f"{name} returned what JSON cannot hold: {exc}"[:2000]})
        continue
    real_out.write(text + "\n")
    real_out.flush()
'''


def environment_functions(code: str, source: str) -> set[str]:
    """The functions defined at the top of an environment file; ValueError naming the file and line where it
    is not Python."""
    try:
        tree = ast.parse(code, filename=source)
    except SyntaxError as exc:
        raise ValueError(f"{source}: not valid Python: {exc.msg} (line {exc.lineno})") from None
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


# Installed packages an environment may import besides the standard library (a SQL tool over DuckDB);
# their files are bound read-only into its sandbox.
SHARED_PACKAGES = ("duckdb",)


@functools.lru_cache(maxsize=64)
def _packages(code: str) -> tuple[str, ...]:
    """The files of the shared packages the environment imports."""
    import importlib.util

    wanted = [p for p in SHARED_PACKAGES if re.search(rf"^\s*(import|from)\s+{p}\b", code, re.MULTILINE)]
    out: list[str] = []
    for name in wanted:
        for module in (name, f"_{name}"):
            spec = importlib.util.find_spec(module)
            if spec is None:
                continue
            if spec.submodule_search_locations:
                out += list(spec.submodule_search_locations)
            elif spec.origin:
                out.append(spec.origin)
        try:  # its metadata too: a package may read its own version
            from importlib.metadata import PackageNotFoundError, distribution

            path = getattr(distribution(name), "_path", None)
            if path is not None:
                out.append(str(path))
        except PackageNotFoundError:
            pass
    return tuple(out)


@dataclass
class CallResult:
    content: str  # what the model is sent as the tool's answer (JSON text)
    error: str | None  # what went wrong, where something did
    tool_ms: float


class Environment:
    """One case's environment: its state and the sandboxed process that runs its tools."""

    def __init__(self, code: str, state: dict | None, offered: set[str], limits: Limits = TOOL_LIMITS):
        self.state = copy.deepcopy(state or {})
        self.offered = offered
        self._session = Session(_HARNESS, {"environment.py": code}, limits, packages=_packages(code))
        self.limits = limits

    def call(self, name: str, arguments: dict | None, problem: str | None = None) -> CallResult:
        """Run one tool call. `problem`: why the call cannot run (its arguments are not JSON); the model is
        told so, as it is told of a tool that was not offered."""
        t0 = time.perf_counter()
        if problem:
            return self._refused(problem, t0)
        if name not in self.offered:
            return self._refused(f"no tool named {name} was offered (offered: {', '.join(sorted(self.offered))})", t0)
        line = json.dumps({"tool": name, "arguments": arguments or {}, "state": self.state}, ensure_ascii=False)
        answer, why = self._session.ask(line)
        ms = (time.perf_counter() - t0) * 1000
        if answer is None:
            err = f"{name} did not answer: {why}"
            return CallResult(json.dumps({"error": err}), err, ms)
        try:
            reply = json.loads(answer)
        except ValueError:
            err = f"{name}: the environment's answer is not JSON"
            return CallResult(json.dumps({"error": err}), err, ms)
        if "error" in reply:
            return CallResult(json.dumps({"error": reply["error"]}, ensure_ascii=False), reply["error"], ms)
        self.state = reply.get("state", self.state)
        return CallResult(json.dumps(reply.get("result"), ensure_ascii=False), None, ms)

    def _refused(self, why: str, t0: float) -> CallResult:
        return CallResult(json.dumps({"error": why}, ensure_ascii=False), why, (time.perf_counter() - t0) * 1000)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
