"""Tools a model may call: their schemas as a scenario writes them, the form a server takes them
in, and the calls a model made, assembled from a stream and read back.

A tool is written as in OpenAI's API (`name`, `description`, `parameters` as JSON Schema, bare or
inside `{"type": "function", "function": ...}`); BFCL's spellings of types (`dict`, `float`,
`tuple`, `any`) are taken and converted. A name a server refuses (OpenAI allows letters, digits,
`_` and `-`, at most 64) is sent in that form and mapped back, so checks and stored calls keep the
scenario's name (`math.factorial`, not `math_factorial`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# BFCL's types to JSON Schema's
_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "int": "integer", "bool": "boolean",
               "str": "string", "list": "array"}
_WIRE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_JSON_TYPES = {"object", "number", "array", "integer", "boolean", "string", "null"}


class ToolSchemaError(ValueError):
    """A tool that is not a function with a JSON Schema; the message names the tool and the field."""


def _convert(schema: Any, where: str) -> Any:
    """A parameter schema with BFCL's type names turned into JSON Schema's (recursively)."""
    if isinstance(schema, list):
        return [_convert(s, where) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key, value in schema.items():
        if key == "type":
            if isinstance(value, str):
                if value == "any":
                    continue  # any type: no constraint
                value = _BFCL_TYPES.get(value, value)
                if value not in _JSON_TYPES:
                    raise ToolSchemaError(f"{where}: type {value!r} is not a JSON Schema type "
                                          f"(known: {', '.join(sorted(_JSON_TYPES | set(_BFCL_TYPES)))}, any)")
            elif isinstance(value, list):
                value = [_BFCL_TYPES.get(v, v) for v in value if v != "any"]
        elif key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(value, dict):
            value = {k: _convert(v, f"{where}.{key}.{k}") for k, v in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "prefixItems"):
            value = _convert(value, f"{where}.{key}")
        out[key] = value
    return out


@dataclass(frozen=True)
class Tool:
    name: str  # as the scenario writes it
    wire_name: str  # as it is sent to the server
    description: str
    parameters: dict

    def as_openai(self) -> dict:
        return {"type": "function", "function": {"name": self.wire_name, "description": self.description,
                                                 "parameters": self.parameters}}


def parse_tools(raw: Any, where: str = "tools") -> list[Tool]:
    """Tools as a scenario, a BFCL file or a promptfoo config writes them; ToolSchemaError naming the
    tool where one is not a function with a JSON Schema."""
    import jsonschema

    if not isinstance(raw, list):
        raise ToolSchemaError(f"{where}: a list of functions (name, description, parameters), not {type(raw).__name__}")
    tools: list[Tool] = []
    taken: set[str] = set()
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if isinstance(item, dict) and item.get("type") == "function" and isinstance(item.get("function"), dict):
            item = item["function"]
        if not isinstance(item, dict):
            raise ToolSchemaError(f"{at}: a function (name, description, parameters), not {type(item).__name__}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ToolSchemaError(f"{at}: field name: a function needs a name")
        at = f"{where}[{i}] ({name})"
        unknown = set(item) - {"name", "description", "parameters", "strict", "response"}
        if unknown:
            raise ToolSchemaError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        description = item.get("description") or ""
        if not isinstance(description, str):
            raise ToolSchemaError(f"{at}: field description: text, not {type(description).__name__}")
        params = item.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise ToolSchemaError(f"{at}: field parameters: a JSON Schema object, not {type(params).__name__}")
        params = _convert(params, f"{at}: field parameters")
        params.setdefault("type", "object")
        if params.get("type") != "object":
            raise ToolSchemaError(f"{at}: field parameters: the arguments must be an object (type: object), "
                                  f"not {params.get('type')!r}")
        try:
            jsonschema.Draft202012Validator.check_schema(params)
        except jsonschema.SchemaError as exc:
            path = ".".join(str(p) for p in exc.path) or "(top)"
            raise ToolSchemaError(f"{at}: field parameters is not JSON Schema: at {path}: "
                                  f"{exc.message[:160]}") from None
        required = params.get("required", [])
        props = params.get("properties", {})
        missing = [r for r in required if r not in props]
        if missing:
            raise ToolSchemaError(f"{at}: field parameters.required names {', '.join(missing)}, "
                                  "which properties does not define")
        wire = name if _WIRE_NAME.match(name) else re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "tool"
        base, n = wire, 2
        while wire in taken:
            wire = f"{base[:60]}_{n}"
            n += 1
        if name in {t.name for t in tools}:
            raise ToolSchemaError(f"{at}: a second tool named {name!r}")
        taken.add(wire)
        tools.append(Tool(name, wire, description, params))
    return tools


def tools_payload(tools: list[Tool]) -> list[dict]:
    return [t.as_openai() for t in tools]


def original_name(tools, wire: str) -> str:
    """The scenario's name of a tool a server called by its wire name (the name itself if unknown)."""
    for t in tools or ():
        if t.wire_name == wire:
            return t.name
    return wire


# --- calls -------------------------------------------------------------------------

@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call as a stream carries it: keyed by `index`; the first piece has the id
    and the name, the arguments' text may be cut anywhere. A chunk like text: it is output."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    @property
    def text(self) -> str:
        return (self.name or "") + self.arguments


@dataclass
class ToolCall:
    name: str  # the scenario's name
    arguments: str  # the arguments as the model sent them (JSON text)
    id: str | None = None
    parsed: dict | None = None
    error: str | None = None  # why the arguments could not be read
    wire_name: str | None = None
    step: int = 0  # the model's step of the turn it was made in

    def as_row(self) -> dict:
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "parsed": self.parsed,
                "error": self.error, "step": self.step}


@dataclass
class CallAssembler:
    """Streamed tool-call pieces to whole calls, in the order of their index."""

    tools: list = field(default_factory=list)
    _parts: dict = field(default_factory=dict)

    def add(self, delta: ToolCallDelta) -> None:
        part = self._parts.setdefault(delta.index, {"id": None, "name": "", "arguments": []})
        if delta.id:
            part["id"] = delta.id
        if delta.name:
            # most servers send the name once; a few repeat it whole on later pieces
            part["name"] = delta.name if not part["name"] or delta.name == part["name"] else part["name"] + delta.name
        if delta.arguments:
            part["arguments"].append(delta.arguments)

    def calls(self) -> list[ToolCall]:
        out = []
        for index in sorted(self._parts):
            part = self._parts[index]
            out.append(read_call(part["name"], "".join(part["arguments"]), part["id"], self.tools))
        return out


def read_call(wire_name: str, arguments: Any, call_id: str | None, tools) -> ToolCall:
    """One call as a server sent it (arguments as JSON text, or an object as Ollama sends them)."""
    name = original_name(tools, wire_name)
    if isinstance(arguments, dict):
        return ToolCall(name, json.dumps(arguments, ensure_ascii=False), call_id, parsed=arguments, wire_name=wire_name)
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    if not text.strip():
        return ToolCall(name, text, call_id, parsed={}, wire_name=wire_name)  # no arguments at all
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        return ToolCall(name, text, call_id, error=f"arguments are not valid JSON: {exc}", wire_name=wire_name)
    if isinstance(parsed, str):  # some servers send the arguments' JSON as a JSON string
        try:
            inner = json.loads(parsed)
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            parsed = inner
    if not isinstance(parsed, dict):
        return ToolCall(name, text, call_id, error=f"arguments are {type(parsed).__name__}, not an object",
                        wire_name=wire_name)
    return ToolCall(name, text, call_id, parsed=parsed, wire_name=wire_name)


def assistant_message(text: str, calls: list[ToolCall]) -> dict:
    """The model's turn with its calls, as the OpenAI API writes it back into the conversation."""
    return {"role": "assistant", "content": text or "",
            "tool_calls": [{"id": c.id, "type": "function",
                            "function": {"name": c.wire_name or c.name, "arguments": c.arguments}}
                           for c in calls]}


def tool_message(call: ToolCall, result_json: str) -> dict:
    return {"role": "tool", "tool_call_id": call.id, "name": call.wire_name or call.name, "content": result_json}


def call_ids(calls: list[ToolCall], prefix: str) -> list[ToolCall]:
    """Calls with an id each (a server that sent none, or a model in this process): the tool's answer
    is matched to its call by it."""
    for i, c in enumerate(calls):
        if not c.id:
            c.id = f"call_{prefix}_{i}"
    return calls
