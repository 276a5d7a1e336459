"""A promptfoo suite (`promptfooconfig.yaml`) as a scenario: one case per prompt x test.

Read as promptfoo documents its format: `prompts` (inline text, `file://` text files with several
prompts split by a line `---`, or chat JSON), `tests` (inline, or `file://` CSV, YAML or JSON files;
a CSV's columns are the variables plus `__expected`, `__expected1..N`, `__description`,
`__metadata:*` and `__threshold`), `defaultTest` (vars, asserts and metadata given to every test),
`assertionTemplates` used by `$ref`, and `providers`. Variables are rendered into the prompts, and
into the assertions' values, by Jinja2 (the syntax Nunjucks shares), in a sandbox, and a variable no
test gives is an error.

An assertion becomes a ModelPick check where the meaning is the same (`ASSERTIONS`); every other is
named (test, assertion, type, why) and either refuses the import (`strict`) or is listed in the
scenario's description. Files a suite names must lie inside its folder.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import yamlsafe
from .scenarios import ScenarioError

MAX_SUITE_BYTES = 5 * 2**20
# promptfoo assertion type -> (ModelPick check type, ignore case); `not-` in front negates any of them
ASSERTIONS = {
    "equals": ("equals", False), "contains": ("contains", False), "icontains": ("contains", True),
    "contains-any": ("contains_any", False), "icontains-any": ("contains_any", True),
    "contains-all": ("contains", False), "icontains-all": ("contains", True),
    "starts-with": ("starts_with", False), "regex": ("regex", False), "is-json": ("is_json", False),
    "contains-json": ("json_schema", False), "llm-rubric": ("llm_judge", False),
    "model-graded-closedqa": ("llm_judge", False), "factuality": ("llm_judge", False),
    "levenshtein": ("levenshtein", False), "latency": ("latency", False),
    "is-valid-openai-tools-call": ("valid_tool_calls", False), "tool-call-f1": ("tool_call_f1", False),
}
WHY_NOT = {
    "javascript": "runs JavaScript code of the suite's",
    "python": "runs Python code of the suite's",
    "webhook": "calls a web service",
    "similar": "needs an embedding model",
    "cost": "ModelPick prices by the hour of GPU, not per request of an API",
    "perplexity": "needs the model's token probabilities",
    "perplexity-score": "needs the model's token probabilities",
}


class SuiteError(ScenarioError):
    """A suite that cannot be read as promptfoo documents it: the file and the test named."""


@dataclass
class Unmapped:
    test: str
    index: int  # the assertion's place in the test, from 1
    kind: str
    why: str

    def __str__(self) -> str:
        return f"{self.test}: assertion {self.index} ({self.kind}): {self.why}"


@dataclass
class Suite:
    cases: list[dict]
    unmapped: list[Unmapped] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)  # as --model specs
    tools: list | None = None  # the providers' config.tools: the scenario's tools
    skipped_providers: list[str] = field(default_factory=list)
    description: str = ""


def _inside(base: Path, ref: str, where: str) -> Path:
    """A `file://` path of the suite, which must lie inside its folder."""
    rel = ref.removeprefix("file://")
    path = (base / rel).resolve()
    if not path.is_relative_to(base.resolve()):
        raise SuiteError(f"{where}: {ref} is outside the suite's folder ({base})")
    if not path.is_file():
        raise SuiteError(f"{where}: {ref}: no such file")
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise SuiteError(f"{where}: {ref}: over {MAX_SUITE_BYTES >> 20} MiB")
    return path


def _env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _render(template: str, variables: dict, where: str) -> str:
    from jinja2 import TemplateError, UndefinedError

    try:
        return _env().from_string(template).render(**variables)
    except UndefinedError as exc:
        raise SuiteError(f"{where}: {exc.message} (the prompt uses a variable this test does not give)") from None
    except TemplateError as exc:
        raise SuiteError(f"{where}: the template cannot be rendered: {exc}") from None


# --- prompts -----------------------------------------------------------------------
def _prompts(raw: Any, base: Path, config: str) -> list[tuple[str, str]]:
    """(label, template) of every prompt."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, str]] = []
    for i, item in enumerate(items, start=1):
        label = None
        if isinstance(item, dict):
            label = item.get("label") or item.get("id")
            item = item.get("raw") or item.get("id")
        if not isinstance(item, str) or not item:
            raise SuiteError(f"{config}: prompts[{i}]: a prompt is text or file://a_file")
        if item.startswith("file://"):
            path = _inside(base, item, f"{config}: prompts[{i}]")
            text = path.read_text(encoding="utf-8")
            if path.suffix.lower() in (".json", ".jsonl") or text.lstrip().startswith("["):
                out.append((label or path.stem, text))
                continue
            parts = [p.strip("\n") for p in re.split(r"^---\s*$", text, flags=re.MULTILINE)]
            parts = [p for p in parts if p.strip()]
            out += [(label or (path.stem if len(parts) == 1 else f"{path.stem}-{j}"), p)
                    for j, p in enumerate(parts, start=1)]
        else:
            out.append((label or f"prompt-{i}", item))
    if not out:
        raise SuiteError(f"{config}: no prompts")
    return out


def _as_input(text: str, where: str) -> dict:
    """A rendered prompt as a case's input: chat JSON becomes messages (a system message apart)."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            messages = json.loads(stripped)
        except ValueError:
            return {"prompt": text}
        if not (isinstance(messages, list) and messages
                and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)):
            raise SuiteError(f"{where}: a chat prompt is a JSON list of {{role, content}}")
        system = [m["content"] for m in messages if m.get("role") == "system"]
        rest = [{"role": m.get("role", "user"), "content": m["content"]} for m in messages
                if m.get("role") != "system"]
        out: dict = {"messages": rest} if len(rest) > 1 else {"prompt": rest[0]["content"]}
        if system:
            out["system"] = "\n\n".join(system)
        return out
    return {"prompt": text}


# --- tests -------------------------------------------------------------------------
def _csv_tests(path: Path) -> list[dict]:
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    tests = []
    for row in rows:
        test: dict[str, Any] = {"vars": {}, "assert": [], "metadata": {}}
        for col, value in row.items():
            value = value or ""
            if col is None:
                continue
            if re.fullmatch(r"__expected\d*", col):
                if value.strip():
                    test["assert"].append(_expected(value.strip()))
            elif col == "__description":
                test["description"] = value
            elif col.startswith("__metadata:"):
                test["metadata"][col.split(":", 1)[1]] = value
            elif col == "__threshold":
                if value.strip():
                    test["threshold"] = float(value)
            elif not col.startswith("__"):
                test["vars"][col] = value
        tests.append(test)
    return tests


def _expected(text: str) -> dict:
    """A CSV's `__expected` cell as an assertion: `type: value`, or a bare value (`equals`);
    `grader:` and `fn:`, `eval:` prefixes as promptfoo has them."""
    if text.startswith(("fn:", "eval:")):
        return {"type": "javascript", "value": text.split(":", 1)[1]}
    if text.startswith("grader:"):
        return {"type": "llm-rubric", "value": text.split(":", 1)[1].strip()}
    head, sep, rest = text.partition(":")
    kind = head.strip()
    known = kind.removeprefix("not-") in ASSERTIONS or kind.removeprefix("not-") in WHY_NOT
    if sep and known:
        return {"type": kind, "value": rest.strip()}
    return {"type": "equals", "value": text}


def _tests(raw: Any, base: Path, config: str) -> list[dict]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    out: list[dict] = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, str) and item.startswith("file://"):
            path = _inside(base, item, f"{config}: tests[{i}]")
            if path.suffix.lower() == ".csv":
                out += _csv_tests(path)
            else:
                loaded = yamlsafe.load(path.read_text(encoding="utf-8"), str(path))
                out += loaded if isinstance(loaded, list) else [loaded]
        elif isinstance(item, dict):
            out.append(item)
        else:
            raise SuiteError(f"{config}: tests[{i}]: a test is a mapping (vars, assert, ...) or file://tests.csv")
    return out


# --- assertions --------------------------------------------------------------------
def _check(a: dict, variables: dict, where: str) -> dict | str:
    """The ModelPick check of one assertion, or why there is none."""
    kind = str(a.get("type", ""))
    negate = kind.startswith("not-")
    base = kind.removeprefix("not-")
    if base in WHY_NOT:
        return WHY_NOT[base]
    if base not in ASSERTIONS:
        return "not a kind ModelPick scores the same way"
    value = a.get("value")
    if isinstance(value, str) and value.startswith("file://"):
        return "its value is a file of code or data the suite runs"
    if isinstance(value, str):
        value = _render(value, variables, where)
    elif isinstance(value, list):
        value = [_render(v, variables, where) if isinstance(v, str) else v for v in value]
    check_type, ignore_case = ASSERTIONS[base]
    check: dict[str, Any] = {"type": check_type}
    if check_type in ("contains", "contains_any"):
        values = value if isinstance(value, list) else [value]
        if negate and base.endswith("-all"):
            return "not-contains-all (not every one of them) has no ModelPick check"
        check = {"type": "not_contains" if negate else check_type, "value": [str(v) for v in values]}
        negate = False
    elif check_type == "llm_judge":
        rubric = str(value)
        if base == "factuality":
            rubric = f"The answer is factually consistent with this reference: {rubric}"
        elif base == "model-graded-closedqa":
            rubric = f"The answer meets this criterion: {rubric}"
        check["value"] = rubric
    elif check_type == "levenshtein":
        threshold = a.get("threshold", 5)
        check["value"] = {"text": str(value), "max": int(threshold)}
    elif check_type == "latency":
        if a.get("threshold") is None:
            return "latency needs a threshold (ms)"
        check["value"] = {"e2e_ms": float(a["threshold"])}
    elif check_type == "valid_tool_calls":
        check["value"] = None
    elif check_type == "tool_call_f1":
        check["value"] = {"names": value if isinstance(value, list) else
                          [v.strip() for v in str(value).split(",") if v.strip()],
                          "threshold": float(a.get("threshold", 1.0))}
    elif check_type in ("is_json", "json_schema"):
        schema = value if isinstance(value, dict) else (yaml.safe_load(value) if isinstance(value, str) and value
                                                        else {})
        check["value"] = schema or ({} if check_type == "is_json" else {"type": ["object", "array"]})
    else:
        check["value"] = str(value)
    if check_type in ("contains", "contains_any", "equals", "starts_with", "regex"):
        check["ignore_case"] = ignore_case
    if negate:
        check["negate"] = True
    if a.get("weight") is not None:
        check["weight"] = float(a["weight"])
    return check


def _resolve_ref(a: Any, templates: dict, where: str) -> dict:
    if isinstance(a, dict) and "$ref" in a:
        ref = str(a["$ref"])
        name = ref.removeprefix("#/assertionTemplates/")
        if name not in templates:
            raise SuiteError(f"{where}: $ref {ref!r}: no such assertion template "
                             f"(known: {', '.join(templates) or 'none'})")
        return dict(templates[name])
    if not isinstance(a, dict):
        raise SuiteError(f"{where}: an assertion is a mapping with a type")
    return a


# --- providers ---------------------------------------------------------------------
def provider_spec(p: Any) -> str | None:
    """The `--model` spec for a promptfoo provider ModelPick can run, else None."""
    pid, config = (p.get("id"), p.get("config") or {}) if isinstance(p, dict) else (p, {})
    if not isinstance(pid, str):
        return None
    url = config.get("apiBaseUrl") or config.get("apiHost")
    kind, _, rest = pid.partition(":")
    model = rest.split(":", 1)[1] if rest.startswith(("chat:", "completion:")) else rest
    if pid == "echo":
        return "fake/echo"
    if kind == "ollama" and model:
        return f"ollama/{model}" + (f"@{url}" if url else "")
    if kind in ("openai", "localai", "vllm", "llama", "llama.cpp", "llamacpp") and model:
        return f"openai/{model}@{url or 'https://api.openai.com/v1'}"
    return None


# --- the suite ---------------------------------------------------------------------
def read_suite(path: str | Path, strict: bool = False) -> Suite:
    """The cases of a promptfoo config; SuiteError naming the file and the test."""
    path = Path(path)
    config = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"{config}: cannot read ({exc.strerror})") from None
    try:
        raw = yamlsafe.load(text, config)
    except yamlsafe.YamlError as exc:
        raise SuiteError(str(exc)) from None
    if not isinstance(raw, dict) or "prompts" not in raw:
        raise SuiteError(f"{config}: not a promptfoo config (no prompts)")
    base = path.parent
    prompts = _prompts(raw["prompts"], base, config)
    tests = _tests(raw.get("tests"), base, config) or [{}]
    default = raw.get("defaultTest") or {}
    if isinstance(default, str) and default.startswith("file://"):
        default = yamlsafe.load(_inside(base, default, f"{config}: defaultTest").read_text(encoding="utf-8"), config)
    templates = raw.get("assertionTemplates") or {}
    suite = Suite(cases=[], description=str(raw.get("description") or ""))
    seen: set[str] = set()
    for t_index, test in enumerate(tests, start=1):
        name = str(test.get("description") or f"test {t_index}")
        where = f"{config}: {name}"
        variables = {**(default.get("vars") or {}), **(test.get("vars") or {})}
        metadata = {str(k): str(v) for k, v in {**(default.get("metadata") or {}),
                                                 **(test.get("metadata") or {})}.items()}
        asserts = [_resolve_ref(a, templates, where) for a in [*(default.get("assert") or []),
                                                              *(test.get("assert") or [])]]
        checks, unmapped = [], []
        for a_index, a in enumerate(asserts, start=1):
            got = _check(a, variables, where)
            if isinstance(got, str):
                unmapped.append(Unmapped(name, a_index, str(a.get("type")), got))
            else:
                checks.append(got)
        if test.get("threshold") is not None:
            unmapped.append(Unmapped(name, 0, "threshold", "ModelPick scores a case by its checks' weighted "
                                                          "mean; a pass threshold is not applied"))
        suite.unmapped += unmapped
        for label, template in prompts:
            case = _as_input(_render(template, variables, f"{where} (prompt {label})"), where)
            cid = re.sub(r"[^a-z0-9_-]+", "-", f"{label}-{name}".lower()).strip("-")[:80] or f"case-{t_index}"
            while cid in seen:
                cid += "-2"
            seen.add(cid)
            suite.cases.append({"id": cid, "category": str(metadata.get("category") or "promptfoo"),
                                **({"description": name} if test.get("description") else {}),
                                **({"metadata": dict(metadata)} if metadata else {}), **case,
                                "checks": copy.deepcopy(checks)})
    if strict and suite.unmapped:
        raise SuiteError(f"{config}: {len(suite.unmapped)} assertion(s) have no ModelPick check (--strict): "
                         + "; ".join(map(str, suite.unmapped)))
    for p in raw.get("providers") or []:
        spec = provider_spec(p)
        (suite.providers if spec else suite.skipped_providers).append(
            spec or str(p.get("id") if isinstance(p, dict) else p))
    suite.tools = _provider_tools(raw.get("providers") or [], base, config)
    return suite


def _provider_tools(providers: list, base: Path, config: str) -> list | None:
    """The tools the suite's providers offer (`config.tools`, inline or a `file://` JSON or YAML file), as
    the scenario's tools: the first provider's; a provider that offers others is an error, named."""
    found: list | None = None
    for p in providers:
        cfg = p.get("config") if isinstance(p, dict) else None
        tools = cfg.get("tools") if isinstance(cfg, dict) else None
        if tools is None:
            continue
        where = f"{config}: provider {p.get('id')}: config.tools"
        if isinstance(tools, str) and tools.startswith("file://"):
            tools = yamlsafe.load(_inside(base, tools, where).read_text(encoding="utf-8"), where)
        if not isinstance(tools, list):
            raise SuiteError(f"{where}: a list of functions, not {type(tools).__name__}")
        if found is not None and tools != found:
            raise SuiteError(f"{where}: differs from an earlier provider's tools; a scenario offers one set of "
                             "tools to every model (import the suite once per set)")
        found = tools
    return found


def scenario_yaml(path: str | Path, scenario_id: str | None = None, title: str | None = None,
                  strict: bool = False) -> tuple[str, Suite]:
    """The scenario YAML of a suite (and the suite, for its report)."""
    from .importer import DEFAULT_WEIGHTS, scenario_id_for

    path = Path(path)
    suite = read_suite(path, strict)
    sid = scenario_id_for(path.parent.name if path.stem == "promptfooconfig" else path.name, scenario_id)
    lines = [f"Imported from the promptfoo suite {path.name}."]
    if suite.description:
        lines.insert(0, suite.description)
    if suite.unmapped:
        lines.append("Assertions without a ModelPick check: " + "; ".join(map(str, suite.unmapped)) + ".")
    doc = {"id": sid, "name": title or suite.description or sid, "description": " ".join(lines),
           "weights": DEFAULT_WEIGHTS, "defaults": {"max_tokens": 512, "temperature": 0.0, "seed": 42},
           **({"tools": suite.tools} if suite.tools else {}), "cases": suite.cases}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), suite


def import_suite(path: str | Path, scenario_id: str | None = None, title: str | None = None,
                 overwrite: bool = False, strict: bool = False):
    """Save the scenario of a promptfoo suite; (the scenario, the suite). Nothing is saved unless
    every prompt renders for every test and the scenario validates."""
    from .scenarios import parse_scenario, save_scenario_text, user_scenarios_dir

    text, suite = scenario_yaml(path, scenario_id, title, strict)
    parse_scenario(text, str(path), base_dir=user_scenarios_dir())  # validated before anything is saved
    return save_scenario_text(text, str(path), overwrite=overwrite), suite
