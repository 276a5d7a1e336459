"""Scenarios are YAML files in scenarios/, validated on load.

Errors name the file, the case and the field, so a person can fix the file.
"""
from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import yamlsafe
from .checks import CHECKS
from .criteria import CRITERIA  # noqa: F401 (the scenarios' weights name these)
from .safefile import UnsafeFile, open_under, read_regular, read_under

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
# Larger files are refused rather than parsed for minutes with no sign of life.
MAX_SCENARIO_BYTES = 5 * 2**20
MAX_CASES = 5000
MAX_DOCUMENT_BYTES = 20 * 2**20  # a context document or filler file
MAX_TOKENS_LIMIT = 1_000_000  # no engine generates more in one answer
MAX_TEMPERATURE = 2.0  # the OpenAI API's range; llama.cpp and Ollama take the same
DEFAULT_MAX_STEPS = 8  # model turns in a tool case before it is ended as unfinished
MAX_STEPS_LIMIT = 64


def _allowed_roots(base: Path) -> list[Path]:
    roots = [base.resolve()]
    extra = os.environ.get("MODELPICK_DOCS_DIR")
    if extra:
        roots.append(Path(extra).expanduser().resolve())
    return roots


def confined(base: Path, name: str, where: str) -> tuple[Path, Path]:
    """A file a scenario names, as (allowed folder, path inside it): the scenario's folder or
    MODELPICK_DOCS_DIR. Absolute paths and `..` escapes are refused here; symbolic links when
    the file is opened (`read_confined`), so a scenario cannot read the machine's files into a
    prompt. `where` locates the field in errors."""
    if Path(name).is_absolute() or name.startswith("~"):
        raise ScenarioError(f"{where}: {name!r} is an absolute path; give a path inside the scenario's folder "
                            f"{base} (or MODELPICK_DOCS_DIR)")
    target = Path(os.path.normpath(base.resolve() / name))
    for root in _allowed_roots(base):
        if target.is_relative_to(root) and target != root:
            return root, target.relative_to(root)
    raise ScenarioError(f"{where}: {name!r} leads outside the scenario's folder {base} (through '..'); "
                        "documents must live inside it or in MODELPICK_DOCS_DIR")


def read_confined(base: Path, name: str, where: str) -> str:
    """The text of a document a scenario names, opened once, safely (`safefile.read_under`)."""
    root, relative = confined(base, name, where)
    try:
        data = read_under(root, relative, MAX_DOCUMENT_BYTES)
    except UnsafeFile as exc:
        raise ScenarioError(f"{where}: {exc} (documents must be regular files inside the scenario's folder "
                            "or MODELPICK_DOCS_DIR)") from None
    try:
        return data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise ScenarioError(f"{where}: {base / name} is not UTF-8 text") from None


def check_confined(base: Path, name: str, where: str) -> Path:
    """The path of a regular file a scenario names (a check's database), checked as a document is."""
    root, relative = confined(base, name, where)
    try:
        os.close(open_under(root, relative))
    except UnsafeFile as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    return root / relative




class ScenarioError(ValueError):
    """A scenario could not be found or is invalid; the message names file, case and field."""


def scenarios_dir() -> Path:
    """The shipped scenarios (part of the app; an update may replace them)."""
    return Path(os.environ.get("MODELPICK_SCENARIOS_DIR", SCENARIOS_DIR))


def user_scenarios_dir() -> Path:
    """Where scenarios a user saves from the dashboard live, apart from the app's own files:
    $MODELPICK_USER_SCENARIOS_DIR, else ~/.modelpick/scenarios."""
    return Path(os.environ.get("MODELPICK_USER_SCENARIOS_DIR") or Path.home() / ".modelpick" / "scenarios")


def _scenario_file(scenario_id: str) -> Path | None:
    for folder in (scenarios_dir(), user_scenarios_dir()):
        path = folder / f"{scenario_id}.yaml"
        if path.is_file():
            return path
    return None


class _Strict(BaseModel):
    # NaN and infinity are refused in every number (a NaN weight or an infinite temperature)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Check(_Strict):
    type: str
    value: Any = None
    weight: float = Field(1.0, ge=0)
    ignore_case: bool = True
    negate: bool = False  # passes where the check fails (promptfoo's not-...); an echo still scores 0
    critical: bool = False  # failing it scores the whole case 0 (a wrong refund, an invented price)

    @model_validator(mode="after")
    def _known_and_valid(self):
        if self.type not in CHECKS:
            raise ValueError(f"unknown check type {self.type!r} (known: {', '.join(sorted(CHECKS))})")
        self.value = CHECKS[self.type].validate(self.value)
        return self


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class Turn(_Strict):
    user: str
    checks: list[Check] = []


class Needle(_Strict):
    """A long-context probe: `fact` hidden at `depth` (0 = start, 1 = end) of filler text
    grown to about `tokens` tokens, or to `context_fraction` of each model's context limit
    (so the same probe grows toward every model's own limit)."""
    fact: str
    depth: float = Field(ge=0, le=1)
    tokens: int | None = Field(None, ge=100)
    context_fraction: float | None = Field(None, gt=0, le=4)
    filler_file: str

    @model_validator(mode="after")
    def _one_size(self):
        if (self.tokens is None) == (self.context_fraction is None):
            raise ValueError("a needle needs exactly one of tokens or context_fraction")
        return self


class Case(_Strict):
    id: str
    category: str
    lang: str | None = None
    description: str | None = None  # what the case tests (an imported suite's test description)
    metadata: dict[str, str] | None = None  # kept from an imported suite, shown with the case
    # the document (a context_file) or passage (<document>#<n>) that answers it: whether retrieval
    # gave it to the model is recorded, so a wrong answer is told apart from an answer never shown
    source: str | None = None
    system: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    turns: list[Turn] | None = None
    context_file: str | list[str] | None = None
    needle: Needle | None = None
    checks: list[Check] = []
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    # "completion" sends the prompt raw (no chat template), as /v1/completions does.
    mode: Literal["chat", "completion"] = "chat"
    # Tools the model may call (replacing the scenario's), the environment's state this case starts from
    # (replacing the scenario's), how many times the model is asked before the case ends (engine.tools).
    tools: list[Any] | None = None
    tool_choice: Literal["auto", "required", "none"] | None = None
    state: dict[str, Any] | None = None
    max_steps: int | None = Field(None, ge=1, le=MAX_STEPS_LIMIT)
    # Filled in on load from tools and the scenario's environment; not written by users.
    offered: list[Any] = Field(default_factory=list, exclude=True)
    environment_code: str | None = Field(None, exclude=True)
    # Filled in on load from context_file and needle; not written by users.
    context: str | None = Field(None, exclude=True)
    filler: str | None = Field(None, exclude=True)
    # (file name, text) of each context_file, and the folder they are in (for retrieval's chunks)
    sources: list[tuple[str, str]] = Field(default_factory=list, exclude=True)
    sources_dir: str | None = Field(None, exclude=True)

    @property
    def sized_by_context(self) -> bool:
        """Whether the prompt is built per model, from that model's context limit."""
        return bool(self.needle and self.needle.context_fraction)

    @model_validator(mode="after")
    def _one_input(self):
        given = [k for k in ("prompt", "messages", "turns") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a case needs exactly one of prompt, messages or turns"
                             + (f" (has {', '.join(given)})" if given else ""))
        if self.messages and self.messages[-1].role != "user":
            raise ValueError("messages must end with a user message")
        return self

    def documents(self) -> list[str]:
        """The files this case puts in front of its question."""
        return [self.context_file] if isinstance(self.context_file, str) else list(self.context_file or [])

    def questions(self) -> list[tuple[str, list[Check]]]:
        """Each user input as written, without the documents and probes it is sent with
        (for showing a case; `turn_inputs` builds what is sent)."""
        if self.turns:
            out = [(t.user, list(t.checks)) for t in self.turns]
            out[-1] = (out[-1][0], out[-1][1] + list(self.checks))
            return out
        return [(self.messages[-1].content if self.messages else self.prompt or "", list(self.checks))]

    def turn_inputs(self, context_tokens: int | None = None,
                    context: str | None = None) -> list[tuple[list[dict], list[Check]]]:
        """The user inputs in order, each as the messages it adds and the checks on its answer.

        Multi-turn cases add one user message per turn; the runner appends the model's
        own answers between them. Case-level checks apply to the last answer.
        `context_tokens` (the model's context limit) sizes a needle given as a fraction;
        `context` replaces the documents' text (the passages retrieval chose).
        """
        context, needle = (self.context if context is None else context), self.needle
        if needle is not None and needle.context_fraction:  # sized_by_context
            probe = haystack(self.filler or "", needle.fact, needle.depth,
                             int(needle.context_fraction * context_tokens)) if context_tokens else ""
            context = "\n\n".join(p for p in (self.context, probe) if p)
        head = [{"role": "system", "content": self.system}] if self.system else []
        if self.turns:
            out = [([{"role": "user", "content": _with_context(t.user, context if i == 0 else None)}],
                    list(t.checks))
                   for i, t in enumerate(self.turns)]
            out[-1] = (out[-1][0], out[-1][1] + list(self.checks))
            out[0] = (head + out[0][0], out[0][1])
            return out
        if self.messages:
            msgs = [m.model_dump() for m in self.messages]
            msgs[-1]["content"] = _with_context(msgs[-1]["content"], context)
            return [(head + msgs, list(self.checks))]
        return [(head + [{"role": "user", "content": _with_context(self.prompt or "", context)}],
                 list(self.checks))]


def _with_context(text: str, context: str | None) -> str:
    if "{context}" in text:
        return text.replace("{context}", context or "")
    return f"{context}\n\n{text}" if context else text


class Defaults(_Strict):
    max_tokens: int = Field(256, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.0, ge=0, le=MAX_TEMPERATURE)
    seed: int | None = Field(42, ge=0, le=2**63 - 1)


SCENARIO_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


class Scenario(_Strict):
    id: str = Field(pattern=rf"^{SCENARIO_ID.pattern}$")
    name: str
    description: str
    name_zh: str | None = None
    description_zh: str | None = None
    weights: dict[str, float]
    defaults: Defaults = Defaults()
    # Tools every case may call (a case's own `tools` replace them), the Python file in the scenario's
    # folder whose functions answer them, and the state each case starts from (engine.environment).
    tools: list[Any] | None = None
    environment: str | None = None
    state: dict[str, Any] | None = None
    max_steps: int = Field(DEFAULT_MAX_STEPS, ge=1, le=MAX_STEPS_LIMIT)
    cases: list[Case] = Field(min_length=1)
    # Where it was loaded from; not part of the file.
    source_path: str | None = Field(None, exclude=True)

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]):
        unknown = set(weights) - set(CRITERIA)
        if unknown:
            raise ValueError(f"unknown criteria {sorted(unknown)} (known: {', '.join(CRITERIA)})")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        return weights

    @model_validator(mode="after")
    def _unique_ids(self):
        seen = set()
        for case in self.cases:
            if case.id in seen:
                raise ValueError(f"duplicate case id {case.id!r}")
            seen.add(case.id)
        return self

    def title(self, lang: str = "en") -> str:
        return (self.name_zh if lang == "zh" and self.name_zh else self.name).strip()

    def purpose(self, lang: str = "en") -> str:
        return (self.description_zh if lang == "zh" and self.description_zh else self.description).strip()

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(c.category for c in self.cases))


def haystack(filler: str, fact: str, depth: float, tokens: int) -> str:
    """Filler repeated to about `tokens` tokens (4 characters each) with `fact` placed at
    `depth`, on a sentence boundary."""
    target_chars = tokens * 4
    sentences = [s.strip() + "." for s in filler.split(".") if s.strip()]
    text: list[str] = []
    size = 0
    for sentence in itertools.cycle(sentences):
        if size >= target_chars:
            break
        text.append(sentence)
        size += len(sentence) + 1
    text.insert(round(depth * len(text)), fact)
    return " ".join(text)


def _describe(err: dict, raw: Any) -> str:
    loc = list(err["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        cases = raw.get("cases") if isinstance(raw, dict) else None
        case = cases[loc[1]] if isinstance(cases, list) and loc[1] < len(cases) else None
        case_id = case.get("id") if isinstance(case, dict) else None
        where = f"case {case_id!r}: " if case_id else f"case #{loc[1] + 1}: "
        loc = loc[2:]
    field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "missing required field"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{where}field {field or '(top level)'}: {msg}"


def parse_scenario(text: str, source: str, base_dir: Path | None = None) -> Scenario:
    """Validate YAML text; `source` names the file in errors."""
    try:
        raw = yamlsafe.load(text, source)
    except yamlsafe.YamlError as exc:
        raise ScenarioError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: expected a mapping with id, name, cases, ...")
    if isinstance(raw.get("cases"), list) and len(raw["cases"]) > MAX_CASES:
        raise ScenarioError(f"{source}: field cases: {len(raw['cases'])} cases is over the limit of {MAX_CASES}; "
                            "split it into several scenarios")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(dict(e), raw) for e in exc.errors()]
        raise ScenarioError(f"{source}: " + "; ".join(lines)) from None
    base = base_dir or scenarios_dir()
    _load_tools(scenario, source, base)
    for case in scenario.cases:
        files = [case.context_file] if isinstance(case.context_file, str) else (case.context_file or [])
        parts = []
        for i, name in enumerate(files):
            field = "context_file" + (f"[{i}]" if isinstance(case.context_file, list) else "")
            where = f"{source}: case {case.id!r}: field {field}"
            parts.append(read_confined(base, name, where))
        case.sources = list(zip(files, parts))
        if files:
            case.sources_dir = str((base / files[0]).parent)
        for j, check in enumerate(case.checks):
            if check.type == "sql_result" and isinstance(check.value, dict) and check.value.get("database"):
                check_confined(base, check.value["database"],
                               f"{source}: case {case.id!r}: field checks[{j}].value.database")
        if case.needle:
            where = f"{source}: case {case.id!r}: field needle.filler_file"
            filler = read_confined(base, case.needle.filler_file, where)
            if case.needle.tokens:
                parts.append(haystack(filler, case.needle.fact, case.needle.depth, case.needle.tokens))
            else:
                case.filler = filler  # sized per model when the case runs
        if parts:
            case.context = "\n\n".join(parts)
    scenario.source_path = source
    return scenario


def _load_tools(scenario: Scenario, source: str, base: Path) -> None:
    """Each case's tools parsed (BFCL's types converted, names a server refuses mapped) and its environment
    read and checked: a ScenarioError names the file, the case, the tool and the field."""
    from .environment import environment_functions
    from .tools import ToolSchemaError, parse_tools

    shared = None
    if scenario.tools is not None:
        try:
            shared = parse_tools(scenario.tools, "field tools")
        except ToolSchemaError as exc:
            raise ScenarioError(f"{source}: {exc}") from None
    code: str | None = None
    functions: set[str] = set()
    if scenario.environment:
        where = f"{source}: field environment"
        if not scenario.environment.endswith(".py"):
            raise ScenarioError(f"{where}: {scenario.environment!r} is not a Python file (.py)")
        code = read_confined(base, scenario.environment, where)
        try:
            functions = environment_functions(code, str(base / scenario.environment))
        except ValueError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
    for case in scenario.cases:
        at = f"{source}: case {case.id!r}"
        if case.tools is not None:
            try:
                case.offered = parse_tools(case.tools, "field tools")
            except ToolSchemaError as exc:
                raise ScenarioError(f"{at}: {exc}") from None
        else:
            case.offered = list(shared or [])
        kinds = {c.type for c in case.checks} | {c.type for t in case.turns or [] for c in t.checks}
        needs = sorted(kinds & {"tool_calls", "valid_tool_calls", "tool_call_f1"})
        if needs and not case.offered:
            raise ScenarioError(f"{at}: a {needs[0]} check, but the case offers no tools (give tools: in the "
                                "case or the scenario)")
        if case.mode == "completion" and case.offered:
            raise ScenarioError(f"{at}: field mode: tools need a chat (mode: completion sends no tools)")
        if case.state is not None and not scenario.environment:
            raise ScenarioError(f"{at}: field state: a state needs the scenario's environment (field environment)")
        if "final_state" in kinds and not scenario.environment:
            raise ScenarioError(f"{at}: a final_state check needs the scenario's environment (field environment)")
        if code is not None and case.offered:
            missing = [t.name for t in case.offered if t.name not in functions]
            if missing:
                raise ScenarioError(f"{source}: field environment: {scenario.environment} has no function for "
                                    f"the tool(s) {', '.join(missing)} (case {case.id!r}); define "
                                    f"def {missing[0]}(state, ...) in it")
            case.environment_code = code
            if case.state is None:
                case.state = scenario.state or {}
            try:
                json.dumps(case.state, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"{at}: field state: not JSON data ({exc}); quote dates and times") from None
        if case.max_steps is None:
            case.max_steps = scenario.max_steps


def decode_scenario(data: bytes, source: str) -> str:
    """Scenario bytes as text: UTF-8 (a BOM is allowed) within the size limit, else a
    ScenarioError naming the file."""
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{source}: {len(data) / 2**20:.1f} MiB is over the limit of "
                            f"{MAX_SCENARIO_BYTES // 2**20} MiB for a scenario file; split it into several scenarios")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                            "save the file as UTF-8") from None


def scenario_title(scenario_id: str, lang: str = "en") -> str:
    """A scenario's name in `lang`, read without loading its documents; the id if unreadable."""
    path = _scenario_file(scenario_id)
    try:
        data = yamlsafe.load(read_under(path.parent, path.name, MAX_SCENARIO_BYTES).decode("utf-8-sig"),
                             str(path)) if path else None
    except (UnsafeFile, UnicodeDecodeError, yamlsafe.YamlError):
        data = None
    if not isinstance(data, dict):
        return scenario_id
    name = data.get("name_zh") if lang == "zh" and data.get("name_zh") else data.get("name")
    return str(name).strip() if name else scenario_id


def load_scenario(id_or_path: str | Path) -> Scenario:
    """Load a scenario by id (a file in scenarios/) or by path to a YAML file."""
    path = Path(id_or_path)
    by_id = False
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        found = _scenario_file(str(id_or_path))
        if found is None:
            known = ", ".join(s for s in list_scenario_ids()) or "none"
            raise ScenarioError(f"unknown scenario {str(id_or_path)!r} (known: {known})")
        path, by_id = found, True
    try:
        if by_id:  # a file of the scenarios folders: a regular file there, never a link to elsewhere
            data = read_under(path.parent, path.name, MAX_SCENARIO_BYTES + 1)
        else:  # a path the user named (a link they made is theirs to follow)
            data = read_regular(path, MAX_SCENARIO_BYTES + 1)  # a FIFO is refused, not waited on
    except UnsafeFile as exc:
        shown = str(exc) if not by_id or "symbolic link" in str(exc) else \
            f"{exc} (a scenario in {path.parent} must be a regular file there)"
        raise ScenarioError(shown) from None
    return parse_scenario(decode_scenario(data, str(path)), str(path), base_dir=path.parent)


def list_scenario_ids() -> list[str]:
    """The shipped scenarios and the user's own."""
    folders = [scenarios_dir(), user_scenarios_dir()]
    return sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})


def list_scenarios() -> list[Scenario]:
    return [load_scenario(i) for i in list_scenario_ids()]


def save_scenario_text(text: str, source: str, overwrite: bool = False) -> Scenario:
    """Validate a user's scenario YAML and save it as <user scenarios folder>/<id>.yaml,
    never into the app's own scenarios/ (an update of the app must not clash with it).

    Nothing is written unless the file is valid; an existing scenario is not replaced
    unless `overwrite` is set, and a shipped one never.
    """
    folder = user_scenarios_dir()
    scenario = parse_scenario(text, source, base_dir=folder)
    target = folder / f"{scenario.id}.yaml"
    existing = _scenario_file(scenario.id)
    if existing is not None and (existing != target or not overwrite):
        raise ScenarioError(f"{source}: field id: a scenario {scenario.id!r} exists already "
                            f"({existing}); choose another id")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    scenario.source_path = str(target)
    return scenario


def scenario_yaml_from_form(scenario_id: str, name: str, description: str,
                            weights: dict[str, float], max_tokens: int, rows: list[dict]) -> str:
    """YAML for a scenario built in the dashboard's form. Each row is a case with `id`,
    `category`, `prompt`, and optional `must_contain` (comma-separated), `max_chars`."""
    cases = []
    for i, row in enumerate(rows, start=1):
        if not any(str(row.get(k) or "").strip() for k in ("id", "prompt")):
            continue  # an empty row the editor left behind
        checks: list[dict[str, Any]] = []
        words = [w.strip() for w in str(row.get("must_contain") or "").replace("，", ",").split(",") if w.strip()]
        if words:
            checks.append({"type": "contains", "value": words})
        max_chars = row.get("max_chars")
        if max_chars not in (None, "") and max_chars == max_chars:  # NaN: left empty
            checks.append({"type": "max_chars", "value": int(max_chars)})
        cases.append({"id": str(row.get("id") or f"case-{i}").strip(),
                      "category": str(row.get("category") or "").strip(),
                      "prompt": str(row.get("prompt") or "").strip() or None, "checks": checks})
    data = {"id": scenario_id.strip(), "name": name.strip(), "description": description.strip(),
            "weights": {k: float(v) for k, v in weights.items() if v},
            "defaults": {"max_tokens": int(max_tokens), "temperature": 0.0, "seed": 42},
            "cases": cases}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
