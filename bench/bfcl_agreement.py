"""ModelPick's `tool_calls` check against BFCL's own AST checker, on the same calls.

For every entry of BFCL's AST categories (simple_python, multiple, parallel, parallel_multiple and the
live_ ones) a set of calls is made from its possible answers: the right call, the right call without its
optional arguments, an integer where a number is wanted, a string in another case and spacing, a wrong
value, an unexpected argument, a missing required argument, a wrong function name, parallel calls in
reverse order, one call too few. Each is scored by both checkers; the script prints the agreement per
category and per kind of call, and the disagreements.

BFCL's checker (bfcl_eval/eval_checker/ast_eval/ast_checker.py from the bfcl-eval package) is loaded by
path with its three imports of model configuration and Java/JavaScript converters stubbed: importing
bfcl_eval itself wants its project folder and many dependencies. Python categories only.

    .venv/bin/python bench/bfcl_agreement.py [--limit N]
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import types
from collections import Counter
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.checks import run_check  # noqa: E402
from engine.packs import BFCL_VERSION, _bfcl_file  # noqa: E402
from engine.tools import parse_tools, read_call  # noqa: E402

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple",
              "live_parallel", "live_parallel_multiple")


def official_checker():
    """bfcl-eval's ast_checker module, loaded by path with its heavy imports stubbed."""
    from enum import Enum

    root = Path(str(metadata.distribution("bfcl-eval").locate_file("bfcl_eval")))

    class Language(Enum):
        PYTHON = "python"
        JAVA = "java"
        JAVASCRIPT = "javascript"

    class _Config:
        underscore_to_dot = False

    stubs: dict = {
        "bfcl_eval": types.ModuleType("bfcl_eval"),
        "bfcl_eval.constants": types.ModuleType("bfcl_eval.constants"),
        "bfcl_eval.constants.enums": types.SimpleNamespace(Language=Language),
        "bfcl_eval.constants.model_config": types.SimpleNamespace(MODEL_CONFIG_MAPPING={"bench": _Config()}),
        "bfcl_eval.constants.type_mappings": types.SimpleNamespace(JAVA_TYPE_CONVERSION={}, JS_TYPE_CONVERSION={}),
        "bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter":
            types.SimpleNamespace(java_type_converter=None),
        "bfcl_eval.eval_checker.ast_eval.type_convertor.js_type_converter":
            types.SimpleNamespace(js_type_converter=None),
    }
    sys.modules.update(stubs)
    spec = importlib.util.spec_from_file_location("bfcl_ast_checker", root / "eval_checker/ast_eval/ast_checker.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module, Language.PYTHON


def _first(values: list):
    return next((v for v in values if v != ""), None)


def variants(answer: list[dict], functions: list[dict]) -> dict[str, list[dict]]:
    """Kinds of calls made from BFCL's possible answer: {kind: [{function: {arg: value}}, ...]}."""
    right = [{fn: {k: _first(v) for k, v in args.items() if _first(v) is not None} for fn, args in call.items()}
             for call in answer]
    out = {"right": right}
    out["no_optional"] = [{fn: {k: _first(v) for k, v in args.items() if "" not in v} for fn, args in call.items()}
                          for call in answer]
    docs = {f["name"]: f for f in functions}

    def one(change) -> list[dict] | None:
        calls = copy.deepcopy(right)
        for call in calls:
            for fn, args in call.items():
                if change(fn, args, docs.get(fn, {})):
                    return calls
        return None

    def int_for_float(fn, args, doc):
        for k, v in args.items():
            if isinstance(v, float) and v.is_integer():
                args[k] = int(v)
                return True
        return False

    def other_case(fn, args, doc):
        for k, v in args.items():
            if isinstance(v, str) and v:
                args[k] = " " + v.upper() + "."
                return True
        return False

    def wrong_value(fn, args, doc):
        for k, v in args.items():
            if isinstance(v, bool):
                args[k] = not v
            elif isinstance(v, (int, float)):
                args[k] = v + 7
            elif isinstance(v, str):
                args[k] = v + " zz"
            else:
                continue
            return True
        return False

    def extra(fn, args, doc):
        args["unexpected_arg"] = 1
        return True

    def missing(fn, args, doc):
        for k in (doc.get("parameters", {}) or {}).get("required", []):
            if k in args:
                del args[k]
                return True
        return False

    for name, change in [("int_for_float", int_for_float), ("other_case", other_case), ("wrong_value", wrong_value),
                         ("extra_arg", extra), ("missing_required", missing)]:
        made = one(change)
        if made is not None:
            out[name] = made
    out["wrong_name"] = [{f"{fn}_x": args for fn, args in call.items()} for call in right]
    if len(right) > 1:
        out["reversed"] = list(reversed(right))
        out["one_short"] = right[:-1]
    return out


def ours(calls: list[dict], functions: list[dict], answer: list[dict], category: str) -> bool:
    tools = parse_tools(functions)
    wire = {t.name: t.wire_name for t in tools}
    made = [read_call(wire.get(fn, fn), json.dumps(args), None, tools) for call in calls for fn, args in call.items()]
    expected = {"calls": [{"name": fn, "arguments": args} for call in answer for fn, args in call.items()],
                "order": "any"}
    return run_check("tool_calls", "", expected, {"tool_calls": made, "tools": tools}).passed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="the first N entries of each category")
    args = ap.parse_args()
    checker, python = official_checker()
    total: Counter[str] = Counter()
    agree: Counter[str] = Counter()
    by_kind_total: Counter[str] = Counter()
    by_kind_agree: Counter[str] = Counter()
    by_kind_valid: Counter[str] = Counter()
    disagreements = []
    for category in CATEGORIES:
        name = f"BFCL_v{BFCL_VERSION}_{category}.json"
        entries = _bfcl_file(name)[:args.limit] if args.limit else _bfcl_file(name)
        answers = {a["id"]: a["ground_truth"] for a in _bfcl_file(f"possible_answer/{name}")}
        for entry in entries:
            answer = answers[entry["id"]]
            for kind, calls in variants(answer, entry["function"]).items():
                theirs = checker.ast_checker(entry["function"], calls, answer, python, category, "bench")["valid"]
                mine = ours(calls, entry["function"], answer, category)
                total[category] += 1
                by_kind_total[kind] += 1
                by_kind_valid[kind] += bool(theirs)
                if mine == theirs:
                    agree[category] += 1
                    by_kind_agree[kind] += 1
                else:
                    disagreements.append((entry["id"], kind, mine, theirs, json.dumps(calls)[:160]))
    n, a = sum(total.values()), sum(agree.values())
    print(f"agreement: {a}/{n} calls = {a / n:.2%}")
    for c in CATEGORIES:
        if total[c]:
            print(f"  {c:24s} {agree[c]:5d}/{total[c]:<5d} {agree[c] / total[c]:.2%}")
    print("by kind of call (agreement; how many BFCL's checker passes):")
    for k in by_kind_total:
        print(f"  {k:24s} {by_kind_agree[k]:5d}/{by_kind_total[k]:<5d} {by_kind_agree[k] / by_kind_total[k]:.2%}"
              f"   BFCL passes {by_kind_valid[k]}")
    for d in disagreements[:25]:
        print("  differs:", d)


if __name__ == "__main__":
    main()
