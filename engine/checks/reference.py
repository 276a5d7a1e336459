"""Reference-answer checks, for questions with one right answer that a rubric would judge
too loosely: normalised exact match, token F1 (each CJK character a token) and numbers
within a tolerance."""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any

from ..cjk import is_cjk
from . import CheckResult, check

_ARTICLES = {"a", "an", "the"}
_NUMBER = re.compile(r"(?<![\w.])[-−]?\d{1,3}(?:[,，]\d{3})+(?:\.\d+)?|[-−]?\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    """NFKC, case-folded, punctuation and English articles removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PZS" else ch for ch in text)
    return " ".join(w for w in text.split() if w not in _ARTICLES)


def tokens(text: str) -> list[str]:
    """Words for alphabetic scripts, one token per CJK character (Chinese has no spaces)."""
    out: list[str] = []
    for word in normalise(text).split():
        run = ""
        for ch in word:
            if is_cjk(ch):
                if run:
                    out.append(run)
                    run = ""
                out.append(ch)
            else:
                run += ch
        if run:
            out.append(run)
    return out


def f1(answer: str, reference: str) -> float:
    got, want = tokens(answer), tokens(reference)
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def numbers(text: str) -> list[float]:
    """The numbers written in a text: 1,250 and 1250 alike, full-width digits too."""
    text = unicodedata.normalize("NFKC", text)
    return [float(m.replace(",", "").replace("，", "").replace("−", "-")) for m in _NUMBER.findall(text)]


# --- value validators -------------------------------------------------------------

def _references(value: Any) -> list[str]:
    if isinstance(value, str) and value.strip():
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return value
    raise ValueError("value must be the reference answer, or a list of acceptable answers")


def _f1_value(value: Any) -> dict:
    if isinstance(value, dict):
        unknown = set(value) - {"answer", "min"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} (known: answer, min)")
        threshold = value.get("min", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise ValueError("min must be a number in (0, 1]")
        return {"answer": _references(value.get("answer")), "min": float(threshold)}
    return {"answer": _references(value), "min": 0.5}


def _number_value(value: Any) -> dict:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"value": float(value), "tolerance": 0.0, "abs": 0.0}
    if isinstance(value, dict):
        unknown = set(value) - {"value", "tolerance", "abs"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} (known: value, tolerance, abs)")
        target = value.get("value")
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            raise ValueError("value.value must be the expected number")
        out = {"value": float(target)}
        for key in ("tolerance", "abs"):
            v = value.get(key, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                meaning = "relative, 0.01 = 1%" if key == "tolerance" else "absolute"
                raise ValueError(f"{key} must be a number >= 0 ({meaning})")
            out[key] = float(v)
        return out
    raise ValueError("value must be the expected number, or {value, tolerance (relative), abs}")


# --- checks ---------------------------------------------------------------------

@check("exact", _references)
def _exact(output: str, value: list[str], opts: dict) -> CheckResult:
    got = normalise(output)
    for ref in value:
        if got == normalise(ref):
            return CheckResult(True, 1.0, f"matches {ref!r}")
    return CheckResult(False, 0.0, f"{output.strip()[:60]!r} is not {' / '.join(repr(r) for r in value)}")


@check("f1", _f1_value)
def _f1(output: str, value: dict, opts: dict) -> CheckResult:
    best, ref = max((f1(output, r), r) for r in value["answer"])
    detail = f"token F1 {best:.2f} against {ref[:40]!r} (pass at {value['min']:.2f})"
    return CheckResult(best >= value["min"], best, detail)


@check("number", _number_value)
def _number(output: str, value: dict, opts: dict) -> CheckResult:
    target = value["value"]
    allowed = max(value["abs"], abs(target) * value["tolerance"])
    found = numbers(output)
    if not found:
        return CheckResult(False, 0.0, f"no number in the answer (expected {target:g})")
    closest = min(found, key=lambda n: abs(n - target))
    if abs(closest - target) <= allowed:
        return CheckResult(True, 1.0, f"{closest:g} is within {allowed:g} of {target:g}")
    return CheckResult(False, 0.0, f"closest number {closest:g}, expected {target:g} ± {allowed:g}")
