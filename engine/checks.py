"""Checks: small functions from (answer text, check) to a score in 0..1 and a readable detail.

Each check type declares how its `value` is validated, so a scenario with a bad value
is rejected when it is loaded, not half-way through a run.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    score: float
    detail: str


@dataclass(frozen=True)
class CheckType:
    fn: Callable[[str, Any, dict], CheckResult]
    validate: Callable[[Any], Any]  # returns the normalised value or raises ValueError


CHECKS: dict[str, CheckType] = {}


def check(name: str, validate: Callable[[Any], Any]):
    def deco(fn):
        CHECKS[name] = CheckType(fn=fn, validate=validate)
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
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


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
    return sum(1 for ch in text if unicodedata.category(ch)[0] in "LNS" or _is_cjk(ch))


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


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


@check("not_contains", _strings)
def _not_contains(output: str, value: list[str], opts: dict) -> CheckResult:
    hay = _fold(output, opts)
    present = [v for v in value if _fold(v, opts) in hay]
    score = 1 - len(present) / len(value)
    if present:
        return CheckResult(False, score, f"must not contain: {', '.join(present)}")
    return CheckResult(True, 1.0, "none present")


@check("regex", _regex)
def _regex_check(output: str, value: str, opts: dict) -> CheckResult:
    flags = re.IGNORECASE if opts.get("ignore_case", True) else 0
    match = re.search(value, output, flags | re.MULTILINE)
    if match:
        return CheckResult(True, 1.0, f"matched {match.group(0)[:60]!r}")
    return CheckResult(False, 0.0, f"no match for /{value}/")


@check("max_sentences", _positive_int)
def _max_sentences(output: str, value: int, opts: dict) -> CheckResult:
    n = len(sentences(output))
    if n == 0:
        return CheckResult(False, 0.0, "no sentences")
    if n <= value:
        return CheckResult(True, 1.0, f"{n} sentences (max {value})")
    return CheckResult(False, value / n, f"{n} sentences (max {value})")


@check("max_chars_per_sentence", _positive_int)
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


@check("max_chars", _positive_int)
def _max_chars(output: str, value: int, opts: dict) -> CheckResult:
    n = count_chars(output)
    return CheckResult(n <= value, 1.0 if n <= value else value / n, f"{n} chars (max {value})")


def run_check(check_type: str, output: str, value: Any, opts: dict | None = None) -> CheckResult:
    kind = CHECKS[check_type]
    return kind.fn(output, kind.validate(value), opts or {})
