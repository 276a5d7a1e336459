"""Checks: small functions from (answer text, check) to a score in 0..1 and a readable detail.

Each check type declares how its `value` is validated, so a scenario with a bad value
is rejected when it is loaded, not half-way through a run.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cjk import is_cjk


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    score: float
    detail: str
    raw: str | None = None  # a judge's verdict as it gave it


@dataclass(frozen=True)
class CheckType:
    fn: Callable[[str, Any, dict], CheckResult]
    validate: Callable[[Any], Any]  # returns the normalised value or raises ValueError
    # What the check reads of an answer (engine/checks/copied.py): "added", the answer without long
    # runs copied from the prompt (a check the prompt's own words could pass); "answer", all of it; an
    # echo or a loop scores 0 on both. "executed": code run in the sandbox, which decides by itself.
    reads: str = "added"


CHECKS: dict[str, CheckType] = {}


def check(name: str, validate: Callable[[Any], Any], reads: str = "added"):
    def deco(fn):
        CHECKS[name] = CheckType(fn=fn, validate=validate, reads=reads)
        return fn
    return deco


# --- value validators -------------------------------------------------------------

def _strings(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return value
    raise ValueError("value must be a non-empty string or a list of non-empty strings")


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("value must be a positive integer")
    return value


def _regex(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("value must be a regular expression")
    import regex

    try:
        regex.compile(value)
    except (regex.error, ValueError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


REGEX_TIMEOUT_S = 2.0  # a pattern that backtracks without end is stopped, and the check fails saying so


# --- text helpers -----------------------------------------------------------------

# Sentence ends: CJK full stops and marks, ASCII marks followed by space or end, newlines.
_SENTENCE_END = re.compile(r"[。！？；!?;]+|\.(?=\s|$)|\n+")


_LIST_MARKER = re.compile(r"^\s*(\d+[.)、]|[-*•])\s*", re.MULTILINE)


def sentences(text: str) -> list[str]:
    # Drop list markers ("1.", "-", "•") so a numbered list counts its items, not its numbers.
    text = _LIST_MARKER.sub("", text)
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [p for p in parts if count_chars(p) > 0]


def count_chars(text: str) -> int:
    """Characters a reader counts: letters, digits and CJK ideographs; not spaces or punctuation."""
    return sum(1 for ch in text if unicodedata.category(ch)[0] in "LNS" or is_cjk(ch))




def _fold(text: str, opts: dict) -> str:
    return text.casefold() if opts.get("ignore_case", True) else text


# --- checks ---------------------------------------------------------------------

@check("contains", _strings)
def _contains(output: str, value: list[str], opts: dict) -> CheckResult:
    hay = _fold(output, opts)
    found = [v for v in value if _fold(v, opts) in hay]
    missing = [v for v in value if v not in found]
    score = len(found) / len(value)
    detail = f"found {len(found)}/{len(value)}" + (f"; missing: {', '.join(missing)}" if missing else "")
    return CheckResult(not missing, score, detail)


@check("contains_any", _strings)
def _contains_any(output: str, value: list[str], opts: dict) -> CheckResult:
    hay = _fold(output, opts)
    found = [v for v in value if _fold(v, opts) in hay]
    if found:
        return CheckResult(True, 1.0, f"found: {found[0]}")
    return CheckResult(False, 0.0, f"none of: {', '.join(value)}")


@check("not_contains", _strings, reads="answer")
def _not_contains(output: str, value: list[str], opts: dict) -> CheckResult:
    hay = _fold(output, opts)
    present = [v for v in value if _fold(v, opts) in hay]
    score = 1 - len(present) / len(value)
    if present:
        return CheckResult(False, score, f"must not contain: {', '.join(present)}")
    return CheckResult(True, 1.0, "none present")


@check("regex", _regex)
def _regex_check(output: str, value: str, opts: dict) -> CheckResult:
    import regex  # the same syntax as re, with a time limit on matching

    flags = regex.IGNORECASE if opts.get("ignore_case", True) else 0
    try:
        match = regex.search(value, output, flags | regex.MULTILINE, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        return CheckResult(False, 0.0, f"/{value[:60]}/ ran over {REGEX_TIMEOUT_S:g} s on this answer "
                           "(a pattern that backtracks without end); counted as failed")
    if match:
        return CheckResult(True, 1.0, f"matched {match.group(0)[:60]!r}")
    return CheckResult(False, 0.0, f"no match for /{value}/")


@check("max_sentences", _positive_int, reads="answer")
def _max_sentences(output: str, value: int, opts: dict) -> CheckResult:
    n = len(sentences(output))
    if n == 0:
        return CheckResult(False, 0.0, "no sentences")
    if n <= value:
        return CheckResult(True, 1.0, f"{n} sentences (max {value})")
    return CheckResult(False, value / n, f"{n} sentences (max {value})")


@check("max_chars_per_sentence", _positive_int, reads="answer")
def _max_chars_per_sentence(output: str, value: int, opts: dict) -> CheckResult:
    sents = sentences(output)
    if not sents:
        return CheckResult(False, 0.0, "no sentences")
    lengths = [count_chars(s) for s in sents]
    within = sum(1 for n in lengths if n <= value)
    detail = f"{within}/{len(sents)} sentences within {value} chars (lengths {lengths})"
    return CheckResult(within == len(sents), within / len(sents), detail)


@check("min_chars", _positive_int)
def _min_chars(output: str, value: int, opts: dict) -> CheckResult:
    n = count_chars(output)
    return CheckResult(n >= value, min(1.0, n / value), f"{n} chars (min {value})")


@check("max_chars", _positive_int, reads="answer")
def _max_chars(output: str, value: int, opts: dict) -> CheckResult:
    n = count_chars(output)
    return CheckResult(n <= value, 1.0 if n <= value else value / n, f"{n} chars (max {value})")


# --- language, refusal, latency, JSON ------------------------------------------------

_LATIN = re.compile(r"[A-Za-z]")


def _language_value(value: Any) -> dict:
    if isinstance(value, str):
        value = {"lang": value}
    if not isinstance(value, dict) or value.get("lang") not in ("zh", "en"):
        raise ValueError("value must be zh or en, or {lang: zh|en, min_share: 0..1}")
    share = value.get("min_share", 0.6)
    if not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ValueError("min_share must be in (0, 1]")
    return {"lang": value["lang"], "min_share": float(share)}


def language_share(text: str, lang: str) -> float | None:
    """Share of CJK ideographs (zh) or Latin letters (en) among all letters; None if no letters."""
    cjk = sum(1 for ch in text if is_cjk(ch))
    latin = len(_LATIN.findall(text))
    if cjk + latin == 0:
        return None
    return (cjk if lang == "zh" else latin) / (cjk + latin)


@check("language", _language_value)
def _language(output: str, value: dict, opts: dict) -> CheckResult:
    share = language_share(output, value["lang"])
    if share is None:
        return CheckResult(False, 0.0, "no letters in the answer")
    ok = share >= value["min_share"]
    return CheckResult(ok, min(1.0, share / value["min_share"]),
                       f"{share:.0%} {value['lang']} (need {value['min_share']:.0%})")


REFUSAL_MARKERS = (
    "i don't know", "i do not know", "not mentioned", "does not mention", "doesn't mention",
    "does not say", "doesn't say", "not specified", "not stated", "no information", "not provided",
    "cannot find", "can't find", "unable to find", "not in the document", "i'm not sure", "i am not sure",
    "i cannot", "i can't", "unable to provide", "not able to",
    "不知道", "没有提到", "未提及", "没有提及", "未说明", "没有说明", "文档中没有", "文中没有", "无法确定",
    "无法回答", "无法提供", "不清楚", "没有相关信息", "未找到", "不确定",
)


def is_refusal(text: str) -> str | None:
    low = text.casefold()
    return next((m for m in REFUSAL_MARKERS if m in low), None)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("value must be true (the answer should refuse) or false (it should answer)")
    return value


@check("refusal", _bool)
def _refusal(output: str, value: bool, opts: dict) -> CheckResult:
    marker = is_refusal(output)
    if value:
        return CheckResult(marker is not None, 1.0 if marker else 0.0,
                           f"declined ({marker!r})" if marker else "answered where it should have declined")
    return CheckResult(marker is None, 0.0 if marker else 1.0,
                       f"declined ({marker!r}) where it should have answered" if marker else "answered")


def _latency_value(value: Any) -> dict:
    if not isinstance(value, dict) or not value or set(value) - {"ttft_ms", "e2e_ms"} or not all(
            isinstance(v, (int, float)) and v > 0 for v in value.values()):
        raise ValueError("value must be {ttft_ms: N} and/or {e2e_ms: N}, positive milliseconds")
    return value


@check("latency", _latency_value, reads="answer")
def _latency(output: str, value: dict, opts: dict) -> CheckResult:
    parts, ok = [], True
    for key, limit in value.items():
        got = opts.get(key)
        if got is None:
            ok = False
            parts.append(f"{key} not measured")
            continue
        ok &= got <= limit
        parts.append(f"{key} {got:.0f} (SLA {limit:.0f})")
    return CheckResult(ok, 1.0 if ok else 0.0, ", ".join(parts))


def _schema(value: Any) -> dict:
    import jsonschema

    if not isinstance(value, dict):
        raise ValueError("value must be a JSON schema (a mapping)")
    try:
        jsonschema.Draft202012Validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON schema: {exc.message}") from None
    return value


def extract_json(text: str):
    """The first JSON value in an answer: a fenced block, else the outermost {...} or [...]."""
    import json

    fenced = re.search(r"```(?:json)?\s*\n(.*?)```", text, re.DOTALL)
    candidates = [fenced.group(1)] if fenced else []
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if start != -1 and end > start:
            candidates.append(text[start:end + 1])
    for cand in candidates:
        try:
            return json.loads(cand)
        except ValueError:
            continue
    raise ValueError("no JSON found in the answer")


@check("json_schema", _schema)
def _json_schema(output: str, value: dict, opts: dict) -> CheckResult:
    import jsonschema

    try:
        data = extract_json(output)
    except ValueError as exc:
        return CheckResult(False, 0.0, str(exc))
    errors = sorted(jsonschema.Draft202012Validator(value).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        return CheckResult(False, 0.0, f"{len(errors)} schema error(s); at {where}: {errors[0].message[:120]}")
    return CheckResult(True, 1.0, "valid JSON matching the schema")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("value must be a non-empty text")
    return value


@check("equals", _text)
def _equals(output: str, value: str, opts: dict) -> CheckResult:
    """The whole answer is the text (surrounding spaces aside); case counts unless ignore_case."""
    same = _fold(output.strip(), opts) == _fold(value.strip(), opts)
    return CheckResult(same, 1.0 if same else 0.0, "equals the expected text" if same else "not the expected text")


@check("starts_with", _text)
def _starts_with(output: str, value: str, opts: dict) -> CheckResult:
    ok = _fold(output.lstrip(), opts).startswith(_fold(value, opts))
    return CheckResult(ok, 1.0 if ok else 0.0, f"starts with {value[:60]}" if ok else
                       f"does not start with {value[:60]}")


def _levenshtein_value(value: Any) -> dict:
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise ValueError("value must be the expected text, or {text: ..., max: N}")
    limit = value.get("max", 5)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("max must be a whole number of edits, 0 or more")
    return {"text": value["text"], "max": limit}


@check("levenshtein", _levenshtein_value)
def _levenshtein(output: str, value: dict, opts: dict) -> CheckResult:
    """Edit distance from the expected text at most `max` (promptfoo's default: 5)."""
    from rapidfuzz.distance import Levenshtein

    d = Levenshtein.distance(output.strip(), value["text"].strip(), score_cutoff=value["max"] + 1)
    ok = d <= value["max"]
    said = f"edit distance {d}" if ok else f"edit distance over {value['max']}"
    return CheckResult(ok, 1.0 if ok else 0.0, f"{said} (max {value['max']})")


def _optional_schema(value: Any) -> dict:
    return {} if value in (None, "", {}) else _schema(value)


@check("is_json", _optional_schema)
def _is_json(output: str, value: dict, opts: dict) -> CheckResult:
    """The whole answer is JSON (not JSON inside text: that is json_schema), matching the schema if given."""
    import json

    import jsonschema

    try:
        data = json.loads(output.strip())
    except ValueError as exc:
        return CheckResult(False, 0.0, f"not JSON: {str(exc)[:80]}")
    if value:
        errors = list(jsonschema.Draft202012Validator(value).iter_errors(data))
        if errors:
            return CheckResult(False, 0.0, f"JSON, {len(errors)} schema error(s): {errors[0].message[:120]}")
    return CheckResult(True, 1.0, "valid JSON" + (" matching the schema" if value else ""))


def run_check(check_type: str, output: str, value: Any, opts: dict | None = None) -> CheckResult:
    """Score one check. With opts["prompt_parts"] (the system and user messages the answer was
    given), an answer that echoes its prompt or loops scores 0 with the reason, and checks that
    read "added" text do not see long runs copied from the prompt; opts["marker"] (the cold-cache
    marker) is taken out of the answer first, so an echo of it earns nothing."""
    opts = opts or {}
    kind = CHECKS[check_type]
    value = kind.validate(value)
    marker = opts.get("marker")
    if marker:
        output = output.replace(marker, "")
    if opts.get("prompt_parts") and kind.reads != "executed":
        from .copied import assess

        parts = tuple(p.replace(marker, "") if marker else p for p in opts["prompt_parts"])
        seen = assess(output, parts)
        if seen.degenerate:
            return CheckResult(False, 0.0, seen.degenerate)
        if kind.reads == "added":
            output = seen.added_text
    res = kind.fn(output, value, opts)
    if opts.get("negate"):  # a negated check (promptfoo's not-...): an echo still scores 0 above
        return CheckResult(not res.passed, 1.0 - res.score, f"not: {res.detail}", raw=res.raw)
    return res


# Checks that execute code or call a judge live in their own modules and register here.
from . import code, judge, reference, toolcalls  # noqa: E402,F401
