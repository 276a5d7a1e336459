"""Checks on what a model did rather than what it said: the tools it called, and the state its
calls left behind.

`tool_calls` follows the Berkeley Function Calling Leaderboard's AST checker: the function's name;
every required argument given, none it does not take; each value of the right type (an integer
where a number is wanted passes) and among the allowed values, strings compared after BFCL's
normalisation (case, spaces and `,./-_*^` ignored), lists element by element, nested objects key by
key; `""` among the allowed values means the argument may be left out, and a call written without
`arguments` takes any (its name is checked, and that its arguments are a JSON object). Several expected calls are
matched without order (`order: any`, BFCL's parallel categories) or in order (`order: exact`); with
`allow_extra` other calls may come between them; an empty list of calls means that calling any tool
fails (BFCL's irrelevance). The score is 1 or 0, as BFCL's.

`final_state` compares the environment's state at the end of a case with what is expected: objects
as subsets, lists when every expected element matches a distinct element, other values by equality.
"""
from __future__ import annotations

import json
import re
from typing import Any

from . import CheckResult, check

_STANDARDIZE = re.compile(r"[ \,\.\/\-\_\*\^]")
_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (float,), "boolean": (bool,),
                                       "array": (list,), "object": (dict,), "null": (type(None),)}


def standardize(text: str) -> str:
    """BFCL's normalisation of a string before it is compared."""
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


def _norm(value: Any) -> Any:
    return standardize(value) if isinstance(value, str) else value


def _allowed_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _calls_value(value: Any) -> dict:
    """{calls: [{name, arguments: {arg: [allowed values]}}], order: any|exact, allow_extra: bool}; a bare
    list is the calls. BFCL's form, [{name: {arg: [...]}}], is taken too."""
    if isinstance(value, list):
        value = {"calls": value}
    if not isinstance(value, dict) or "calls" not in value:
        raise ValueError("value must be a list of expected calls, or {calls: [...], order: any|exact, "
                         "allow_extra: true|false}; an empty list means no tool may be called")
    unknown = set(value) - {"calls", "order", "allow_extra"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))} (known: calls, order, allow_extra)")
    order = value.get("order", "any")
    if order not in ("any", "exact"):
        raise ValueError(f"order must be any or exact, not {order!r}")
    allow_extra = value.get("allow_extra", False)
    if not isinstance(allow_extra, bool):
        raise ValueError("allow_extra must be true or false")
    calls = value["calls"]
    if calls == "any":  # BFCL's relevance: a call to any offered tool is right, none is wrong
        return {"calls": "any", "order": order, "allow_extra": True}
    if not isinstance(calls, list):
        raise ValueError("calls must be a list (or any: a call to any offered tool)")
    out = []
    for i, c in enumerate(calls):
        if isinstance(c, dict) and len(c) == 1 and "name" not in c:  # BFCL: {function: {arg: [values]}}
            (name, args), = c.items()
            c = {"name": name, "arguments": args}
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise ValueError(f"calls[{i}]: a call needs a name (and arguments: {{arg: [allowed values]}})")
        extra = set(c) - {"name", "arguments"}
        if extra:
            raise ValueError(f"calls[{i}]: unknown field(s) {', '.join(sorted(extra))}")
        if c.get("arguments") is None:  # any arguments: only the name (and arguments that parse) is checked
            out.append({"name": c["name"], "arguments": None})
            continue
        args = c.get("arguments") or {}
        if not isinstance(args, dict):
            raise ValueError(f"calls[{i}] ({c['name']}): arguments must map each argument to its allowed values")
        out.append({"name": c["name"], "arguments": {k: _allowed_list(v) for k, v in args.items()}})
    return {"calls": out, "order": order, "allow_extra": allow_extra}


def _shown(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_ok(value: Any, schema_type: Any, allowed: list) -> bool:
    types = schema_type if isinstance(schema_type, list) else [schema_type] if schema_type else []
    if not types:
        return True  # any type
    for t in types:
        if type(value) in _TYPES.get(t, ()):
            return True
    # BFCL's "variable": the allowed values' own type differs from the schema's (a name given for a number)
    kinds = {type(a) for a in allowed if a != ""}
    return type(value) in kinds


def _value_problem(param: str, value: Any, allowed: list, schema: dict) -> str | None:
    t = schema.get("type")
    if t == "number" and type(value) is int:
        value = float(value)
    if not _type_ok(value, t, allowed):
        return f"{param}: expected {t}, got {type(value).__name__} {_shown(value)}"
    candidates = [a for a in allowed if a != ""]
    if isinstance(value, dict) and any(isinstance(a, dict) for a in candidates):
        return _dict_problem(param, value, [a for a in candidates if isinstance(a, dict)])
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) \
            and any(isinstance(a, list) and a and all(isinstance(x, dict) for x in a) for a in candidates):
        for option in candidates:
            if isinstance(option, list) and len(option) == len(value) and \
                    all(_dict_problem(param, v, [o]) is None for v, o in zip(value, option)):
                return None
        return f"{param}: {_shown(value)} is not among the allowed lists"
    if isinstance(value, list):
        got = [_norm(v) for v in value]
        if any(isinstance(a, list) and [_norm(x) for x in a] == got for a in candidates):
            return None
        return f"{param}: {_shown(value)} is not one of {_shown(candidates)}"
    if isinstance(value, str):
        if standardize(value) in [standardize(a) for a in candidates if isinstance(a, str)]:
            return None
        return f"{param}: {_shown(value)} is not one of {_shown(candidates)}"
    if value in candidates:
        return None
    return f"{param}: {_shown(value)} is not one of {_shown(candidates)}"


def _dict_problem(param: str, value: dict, options: list[dict]) -> str | None:
    last = f"{param}: no allowed object to compare with"
    for option in options:
        bad = None
        for key, v in value.items():
            if key not in option:
                bad = f"{param}.{key}: not an expected key"
                break
            allowed = [_norm(a) for a in _allowed_list(option[key])]
            if _norm(v) not in allowed:
                bad = f"{param}.{key}: {_shown(v)} is not one of {_shown(_allowed_list(option[key]))}"
                break
        if bad is None:
            for key, allowed in option.items():
                if key not in value and "" not in _allowed_list(allowed):
                    bad = f"{param}.{key}: missing"
                    break
        if bad is None:
            return None
        last = bad
    return last


def call_problem(call, expected: dict, tools: list) -> str | None:
    """Why `call` (a ToolCall) is not the expected call, as BFCL's simple function checker decides; None
    where it is."""
    if call.name != expected["name"]:
        return f"called {call.name}, expected {expected['name']}"
    if call.error:
        return f"{call.name}: {call.error} (sent: {call.arguments[:80]!r})"
    tool = next((t for t in tools or () if t.name == call.name), None)
    params = tool.parameters if tool else {}
    props = params.get("properties", {}) or {}
    args = call.parsed or {}
    for name in params.get("required", []) or []:
        if name not in args:
            return f"{call.name}: required argument {name} missing"
    allowed = expected["arguments"]
    if allowed is None:
        return None  # any arguments
    for name, value in args.items():
        if (tool is not None and name not in props) or name not in allowed:
            return f"{call.name}: unexpected argument {name}"
        why = _value_problem(name, value, allowed[name], props.get(name, {}))
        if why:
            return f"{call.name}: {why}"
    for name, values in allowed.items():
        if name not in args and "" not in values:
            return f"{call.name}: argument {name} missing (it may not be left out)"
    return None


def _shown_call(call) -> str:
    return f"{call.name}({call.arguments[:60]})"


@check("tool_calls", _calls_value, reads="answer")
def _tool_calls(output: str, value: dict, opts: dict) -> CheckResult:
    calls = list(opts.get("tool_calls") or [])
    tools = opts.get("tools") or []
    expected = value["calls"]
    offered = {t.name for t in tools}
    if tools and any(c.name not in offered for c in calls):
        stray = next(c for c in calls if c.name not in offered)
        return CheckResult(False, 0.0, f"called {stray.name}, which was not offered "
                                       f"(offered: {', '.join(sorted(offered))})")
    if expected == "any":
        if not calls:
            return CheckResult(False, 0.0, "no tool called; a call was expected")
        bad = next((c for c in calls if c.error), None)
        if bad:
            return CheckResult(False, 0.0, f"{bad.name}: {bad.error}")
        return CheckResult(True, 1.0, f"called {', '.join(map(_shown_call, calls))}")
    if not expected:
        if calls:
            return CheckResult(False, 0.0, f"no tool should be called; called {', '.join(map(_shown_call, calls))}")
        return CheckResult(True, 1.0, "no tool called, as expected")
    if not calls:
        return CheckResult(False, 0.0, f"no tool called; expected {', '.join(e['name'] for e in expected)}")
    if not value["allow_extra"] and len(calls) != len(expected):
        return CheckResult(False, 0.0, f"{len(calls)} call(s), expected {len(expected)}: "
                                       f"{', '.join(map(_shown_call, calls))}")
    used: set[int] = set()
    start = 0
    for e in expected:
        reasons = []
        found = None
        for i, call in enumerate(calls):
            if i in used or (value["order"] == "exact" and i < start):
                continue
            why = call_problem(call, e, tools)
            if why is None:
                found = i
                break
            reasons.append(why)
            if value["order"] == "exact" and not value["allow_extra"]:
                break  # in order and nothing between: the next call must be this one
        if found is None:
            closest = next((r for r in reasons if not r.startswith("called ")), reasons[0] if reasons else "")
            return CheckResult(False, 0.0, f"no call matches {e['name']}" + (f": {closest}" if closest else ""))
        used.add(found)
        start = found + 1
    return CheckResult(True, 1.0, f"{len(expected)} expected call(s) made: "
                                  f"{', '.join(_shown_call(calls[i]) for i in sorted(used))}")


def _state_value(value: Any) -> Any:
    if value is None:
        raise ValueError("value must be the expected final state (a mapping)")
    return value


def state_problem(expected: Any, actual: Any, where: str = "state") -> str | None:
    """Why `actual` does not hold `expected`: objects as subsets, lists with each expected element matched by a
    distinct actual one, other values by equality."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, found {_shown(actual)}"
        for key, want in expected.items():
            if key not in actual:
                return f"{where}.{key}: missing"
            why = state_problem(want, actual[key], f"{where}.{key}")
            if why:
                return why
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected a list, found {_shown(actual)}"
        free = list(range(len(actual)))
        for n, want in enumerate(expected):
            hit = next((i for i in free if state_problem(want, actual[i]) is None), None)
            if hit is None:
                return f"{where}[{n}]: no element matches {_shown(want)}"
            free.remove(hit)
        return None
    if isinstance(expected, float) or isinstance(actual, float):
        if isinstance(actual, int | float) and not isinstance(actual, bool) and abs(actual - expected) <= 1e-9:
            return None
    elif expected == actual and type(expected) is type(actual):
        return None
    return f"{where}: expected {_shown(expected)}, found {_shown(actual)}"


@check("final_state", _state_value, reads="answer")
def _final_state(output: str, value: Any, opts: dict) -> CheckResult:
    if not opts.get("has_environment"):
        return CheckResult(False, 0.0, "check error: final_state needs the scenario's environment (none is named)")
    state = opts.get("state")
    why = state_problem(value, state)
    if why:
        return CheckResult(False, 0.0, why)
    return CheckResult(True, 1.0, "the final state holds what is expected")


def _no_value(value: Any) -> None:
    if value not in (None, {}, [], ""):
        raise ValueError("takes no value (the tools offered are the schema)")
    return None


@check("valid_tool_calls", _no_value, reads="answer")
def _valid_tool_calls(output: str, value: Any, opts: dict) -> CheckResult:
    """promptfoo's is-valid-openai-tools-call: at least one call, each to an offered tool, its arguments an
    object that the tool's JSON Schema validates."""
    import jsonschema

    calls = list(opts.get("tool_calls") or [])
    tools = {t.name: t for t in opts.get("tools") or []}
    if not calls:
        return CheckResult(False, 0.0, "no tool called")
    for c in calls:
        if c.name not in tools:
            return CheckResult(False, 0.0, f"called {c.name}, which was not offered")
        if c.error:
            return CheckResult(False, 0.0, f"{c.name}: {c.error}")
        errors = list(jsonschema.Draft202012Validator(tools[c.name].parameters).iter_errors(c.parsed or {}))
        if errors:
            return CheckResult(False, 0.0, f"{c.name}: arguments do not match its schema: {errors[0].message[:120]}")
    return CheckResult(True, 1.0, f"{len(calls)} valid call(s): {', '.join(map(_shown_call, calls))}")


def _f1_value(value: Any) -> dict:
    if isinstance(value, str):
        value = {"names": [v.strip() for v in value.split(",") if v.strip()]}
    elif isinstance(value, list):
        value = {"names": value}
    if not isinstance(value, dict) or not isinstance(value.get("names"), list) or \
            not all(isinstance(n, str) and n for n in value["names"]):
        raise ValueError("value must be the expected tool names (a list, or text separated by commas), "
                         "or {names: [...], threshold: 0..1}")
    threshold = value.get("threshold", 1.0)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise ValueError("threshold must be a number from 0 to 1")
    return {"names": list(value["names"]), "threshold": float(threshold)}


@check("tool_call_f1", _f1_value, reads="answer")
def _tool_call_f1(output: str, value: dict, opts: dict) -> CheckResult:
    """promptfoo's tool-call-f1: F1 of the set of tools called against the set expected (names only); the
    score is the F1, passed at the threshold (1.0 unless given)."""
    called = {c.name for c in opts.get("tool_calls") or []}
    expected = set(value["names"])
    hit = len(called & expected)
    precision = hit / len(called) if called else 0.0
    recall = hit / len(expected) if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return CheckResult(f1 >= value["threshold"] - 1e-9, f1,
                       f"F1 {f1:.2f} (called: {', '.join(sorted(called)) or 'none'}; expected: "
                       f"{', '.join(sorted(expected))})")
