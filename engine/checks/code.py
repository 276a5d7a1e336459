"""Checks that execute what the model wrote: Python against hidden tests, tests against a
correct and a buggy implementation, SQL against a sample database. Python runs only in
the sandbox; SQL runs read-only with external access off and a time limit."""
from __future__ import annotations

import ast
import hashlib
import json
import re
import secrets
import signal
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from . import CheckResult, check
from .sql_child import normal

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(text: str, lang: str = "python") -> str:
    """Code in an answer: its fenced blocks in that language (joined), else the longest
    stretch of lines that parses (for Python) or the first statement (for SQL)."""
    aliases = {"python": {"python", "py", "python3", ""}, "sql": {"sql", "duckdb", "postgresql", ""}}[lang]
    blocks = [body for tag, body in _FENCE.findall(text) if tag.lower() in aliases]
    if blocks:
        return "\n\n".join(b.strip("\n") for b in blocks)
    if lang == "sql":
        m = re.search(r"\b(with|select)\b.*?(;|\Z)", text, re.IGNORECASE | re.DOTALL)
        return m.group(0).strip() if m else text.strip()
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if re.match(r"(def |class |import |from \w+ import )", ln)]
    for start in starts:
        for end in range(len(lines), start, -1):
            chunk = "\n".join(lines[start:end])
            try:
                ast.parse(chunk)
                return chunk
            except SyntaxError:
                continue
    return text


# The harness runs inside the sandbox with the solution and the tests beside it. It prints
# one result line tagged with a nonce, so ordinary output of the model's code is not read
# as a result. (Code in the same process could still forge it; the sandbox protects the
# machine, not the score against a model written to cheat.)
_HARNESS = r'''
import json, sys, types, unittest
NONCE = "{nonce}"

def report(obj):
    sys.stdout.flush()
    print("\n" + NONCE + json.dumps(obj), flush=True)

solution = types.ModuleType("solution")
sys.modules["solution"] = solution
try:
    exec(compile(open("solution.py", encoding="utf-8").read(), "solution.py", "exec"), solution.__dict__)
except BaseException as e:
    report({{"error": "the code did not run: %s: %s" % (type(e).__name__, str(e)[:200])}})
    sys.exit(0)

def solution_function(hint=""):
    funcs = [v for k, v in vars(solution).items()
             if isinstance(v, types.FunctionType) and v.__module__ == "solution" and not k.startswith("test")]
    named = [f for f in funcs if hint and hint.lower() in f.__name__.lower()]
    if named or len(funcs) == 1:
        return (named or funcs)[0]
    raise LookupError("no function%s in the answer" % (" named like %r" % hint if hint else ""))

ns = dict(vars(solution))
ns["solution_function"] = solution_function
try:
    exec(compile(open("tests.py", encoding="utf-8").read(), "tests.py", "exec"), ns)
except BaseException as e:
    report({{"error": "the tests did not load: %s: %s" % (type(e).__name__, str(e)[:200])}})
    sys.exit(0)

results = []
for name, obj in list(ns.items()):
    if name.startswith("test") and isinstance(obj, types.FunctionType):
        try:
            obj()
            results.append([name, True, ""])
        except BaseException as e:
            results.append([name, False, ("%s: %s" % (type(e).__name__, e))[:200]])
    elif isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj is not unittest.TestCase:
        for case in unittest.defaultTestLoader.loadTestsFromTestCase(obj):
            res = unittest.TestResult()
            case.run(res)
            bad = res.failures + res.errors
            results.append([case.id().split(".")[-1], not bad, bad[0][1].strip().splitlines()[-1][:200] if bad else ""])
report({{"results": results}})
'''


def run_tests(solution: str, tests: str, timeout_s: float = 10.0) -> dict:
    """{'results': [[name, passed, why], ...]} or {'error': ...} from a sandboxed run."""
    from ..sandbox import Limits, run_python

    nonce = "@@" + secrets.token_hex(8) + "@@"
    res = run_python(_HARNESS.format(nonce=nonce), {"solution.py": solution, "tests.py": tests},
                     Limits(wall_s=timeout_s, cpu_s=int(timeout_s) + 1))
    if res.killed_by:
        return {"error": f"stopped by the sandbox: {res.killed_by}"}
    for line in reversed(res.stdout.splitlines()):
        if line.startswith(nonce):
            return json.loads(line[len(nonce):])
    tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"the program ended without a result (exit {res.returncode}): {tail[:200]}"}


MAX_CHECK_TIMEOUT_S = 300.0


def timeout_value(value: dict, default: float) -> float:
    """A check's `timeout_s`: a number of seconds above 0 and at most MAX_CHECK_TIMEOUT_S."""
    given = value.get("timeout_s", default)
    try:
        seconds = float(given)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(given, bool) or not 0 < seconds <= MAX_CHECK_TIMEOUT_S:
        raise ValueError(f"timeout_s must be a number of seconds above 0 and at most {MAX_CHECK_TIMEOUT_S:g} "
                         f"(got {given!r})")
    return seconds


def _code_value(value: Any, key: str, what: str) -> dict:
    """{key: code, timeout_s: N} from the code alone or that mapping; the code must parse."""
    if isinstance(value, str):
        value = {key: value}
    if not isinstance(value, dict) or not isinstance(value.get(key), str):
        raise ValueError(f"value must be {what}, or {{{key}: code, timeout_s: N}}")
    try:
        ast.parse(value[key])
    except SyntaxError as exc:
        raise ValueError(f"the {what} does not parse: {exc.msg} (line {exc.lineno})") from None
    return {key: value[key], "timeout_s": timeout_value(value, 10)}


def _tests_value(value: Any) -> dict:
    return _code_value(value, "tests", "test code")


@check("python_tests", _tests_value, reads="executed")
def _python_tests(output: str, value: dict, opts: dict) -> CheckResult:
    outcome = run_tests(extract_code(output), value["tests"], value["timeout_s"])
    if "error" in outcome:
        return CheckResult(False, 0.0, outcome["error"])
    results = outcome["results"]
    if not results:
        return CheckResult(False, 0.0, "no tests ran")
    passed = sum(1 for _, ok, _ in results if ok)
    failed = [f"{name}: {why}" for name, ok, why in results if not ok]
    detail = f"{passed}/{len(results)} hidden tests passed" + (f"; {failed[0]}" if failed else "")
    return CheckResult(passed == len(results), passed / len(results), detail)


def _output_value(value: Any) -> dict:
    return _code_value(value, "code", "snippet's code")


_PRINTED: dict[str, str] = {}  # a snippet's output, by its code: the scenario's code runs once


def snippet_output(code: str, timeout_s: float = 10.0) -> str:
    """What a scenario's snippet prints, run in the sandbox like any other code."""
    from ..sandbox import Limits, run_python

    if code not in _PRINTED:
        res = run_python(code, {}, Limits(wall_s=timeout_s, cpu_s=int(timeout_s) + 1))
        if res.killed_by or res.returncode != 0:
            why = res.killed_by or (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise ValueError(f"the snippet did not run: {why[:200]}")
        _PRINTED[code] = res.stdout
    return _PRINTED[code]


@check("python_output", _output_value, reads="executed")
def _python_output(output: str, value: dict, opts: dict) -> CheckResult:
    """The answer explains a snippet and says what it prints: the snippet (the scenario's
    own code, not the model's) runs in the sandbox, and every line it prints must appear
    in the answer."""
    try:
        printed = snippet_output(value["code"], value["timeout_s"])
    except ValueError as exc:
        return CheckResult(False, 0.0, str(exc))
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    if not lines:
        return CheckResult(False, 0.0, "the snippet prints nothing to compare with")
    found = [line for line in lines if line in output]
    missing = [line for line in lines if line not in found]
    detail = f"states {len(found)}/{len(lines)} printed lines" + (f"; missing: {missing[0][:60]!r}" if missing else "")
    return CheckResult(not missing, len(found) / len(lines), detail)


def _testgen_value(value: Any) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("correct"), str) or not value.get("buggy"):
        raise ValueError("value must be {correct: code, buggy: code or [code, ...]}")
    buggy = value["buggy"] if isinstance(value["buggy"], list) else [value["buggy"]]
    for code in [value["correct"], *buggy]:
        try:
            ast.parse(code)
        except SyntaxError as exc:
            raise ValueError(f"reference code does not parse: {exc.msg}") from None
    return {"correct": value["correct"], "buggy": buggy, "timeout_s": timeout_value(value, 10)}


@check("python_testgen", _testgen_value, reads="executed")
def _python_testgen(output: str, value: dict, opts: dict) -> CheckResult:
    """The answer is a test suite: it must pass on the correct code and fail on each buggy one."""
    tests = extract_code(output)
    on_correct = run_tests(value["correct"], tests, value["timeout_s"])
    if "error" in on_correct:
        return CheckResult(False, 0.0, f"on the correct code: {on_correct['error']}")
    results = on_correct["results"]
    if not results:
        return CheckResult(False, 0.0, "the answer contains no tests")
    wrong = [name for name, ok, _ in results if not ok]
    if wrong:
        return CheckResult(False, 0.0, f"fails on the correct code: {', '.join(wrong)}")
    caught = 0
    for code in value["buggy"]:
        outcome = run_tests(code, tests, value["timeout_s"])
        caught += "error" in outcome or not all(ok for _, ok, _ in outcome["results"])
    score = 0.5 + 0.5 * caught / len(value["buggy"])
    return CheckResult(caught == len(value["buggy"]), score,
                       f"{len(results)} tests pass on the correct code; "
                       f"caught {caught}/{len(value['buggy'])} buggy versions")


# --- SQL ------------------------------------------------------------------------------

def _sql_value(value: Any) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("database"), str) or not (
            isinstance(value.get("expected_sql"), str) or isinstance(value.get("expected_rows"), list)):
        raise ValueError("value must be {database: file.sql, expected_sql: query (or expected_rows), ordered: bool}")
    return {"database": value["database"], "expected_sql": value.get("expected_sql"),
            "expected_rows": value.get("expected_rows"), "ordered": bool(value.get("ordered", False)),
            "timeout_s": timeout_value(value, 5)}


_DB_LOCK = threading.Lock()


def sample_database(sql_file: Path) -> Path:
    """The DuckDB file built from a bundled SQL script, cached by the script's content."""
    import duckdb

    script = sql_file.read_text(encoding="utf-8")
    digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"modelpick-sample-{sql_file.stem}-{digest}.duckdb"
    with _DB_LOCK:
        if not target.exists():
            tmp = target.with_suffix(f".{secrets.token_hex(4)}.tmp")
            with duckdb.connect(str(tmp), config={"autoinstall_known_extensions": False,
                                              "autoload_known_extensions": False}) as con:
                con.execute(script)
            tmp.replace(target)
    return target


SQL_MEMORY_MB = 1024  # the query's process, all of it (DuckDB's own buffers are held to 256 MB)
SQL_MAX_ROWS = 10_000


class SqlError(Exception):
    """The query failed: its message, as DuckDB gave it, or the limit it hit."""


def run_sql(db: Path, sql: str, timeout_s: float) -> list[tuple]:
    """Rows of a query in a child process (`sql_child.py`) with a memory and a time limit."""
    import resource
    import sys

    def limit() -> None:
        mb = 2**20
        resource.setrlimit(resource.RLIMIT_AS, (SQL_MEMORY_MB * mb, SQL_MEMORY_MB * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    job = json.dumps({"db": str(db), "sql": sql, "max_rows": SQL_MAX_ROWS})
    try:
        res = subprocess.run([sys.executable, "-I", str(Path(__file__).with_name("sql_child.py"))], input=job,
                             capture_output=True, text=True, timeout=timeout_s, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        raise SqlError(f"the query ran over {timeout_s:g} s") from None
    try:
        answer = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        why = f"killed by {signal.Signals(-res.returncode).name}" if res.returncode < 0 else \
            f"exit {res.returncode}"
        raise SqlError(f"the query's process ended without a result ({why}; over the {SQL_MEMORY_MB} MB memory "
                       "limit?)") from None
    if "error" in answer:
        raise SqlError(answer["error"])
    if len(answer["rows"]) > SQL_MAX_ROWS:
        raise SqlError(f"the query returned more than {SQL_MAX_ROWS:,} rows")
    return [tuple(row) for row in answer["rows"]]


@check("sql_result", _sql_value, reads="executed")
def _sql_result(output: str, value: dict, opts: dict) -> CheckResult:
    base = Path(opts.get("base_dir") or ".")
    db = sample_database(base / value["database"])
    sql = extract_code(output, "sql").strip().rstrip(";")
    if value["expected_rows"] is not None:
        expected = [tuple(normal(v) for v in row) for row in value["expected_rows"]]
    else:
        expected = run_sql(db, value["expected_sql"], value["timeout_s"])
    try:
        got = run_sql(db, sql, value["timeout_s"])
    except SqlError as exc:
        return CheckResult(False, 0.0, f"the query failed: {str(exc)[:160]}")
    same = got == expected if value["ordered"] else Counter(got) == Counter(expected)
    if same:
        return CheckResult(True, 1.0, f"{len(got)} rows, as expected")
    missing = list((Counter(expected) - Counter(got)).elements())[:1]
    return CheckResult(False, 0.0, f"got {len(got)} rows, expected {len(expected)}"
                       + (f"; missing e.g. {missing[0]}" if missing else "; order or extra rows differ"))
