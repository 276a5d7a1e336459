"""What the model added: an answer measured against the prompt it was given.

A model that repeats its prompt (the question, the documents, the system message) or loops on
one line must not earn the points the prompt's own words would earn it. Two rules, both on
tokens (a word of Latin letters or digits, or one CJK character):

- degenerate: the answer repeats most of a part of the prompt (ECHO_SHARE of a system or user
  message, or of the model's own earlier answer in the conversation, measured by runs of at least
  SPAN tokens copied verbatim; a part shorter than SHORT tokens only when repeated whole), or repeats
  itself (one line or sentence three times or more, covering half the answer, or half its 6-grams
  are repeats).
  Every check of such an answer scores 0, with the reason as its detail.
- added text: the answer without the long runs it copied from the prompt (STRIP words or more: a
  paragraph, not a quoted fact), what the content checks (contains, regex, language, ...) read.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from ..cjk import RANGES

SPAN = 6  # tokens in a run that counts as copied when measuring how much of the prompt is repeated
SHORT = 20  # tokens: a prompt part shorter than this is echoed only when it is repeated whole
ECHO_SHARE = 0.6  # of a prompt part's tokens repeated verbatim: an echo
STRIP = 40  # words (a CJK character counts half) in a copied run the content checks do not read
_TOKEN = re.compile(f"[{RANGES}]|[^\\W_]+", re.UNICODE)
_LINES = re.compile(r"[\n。！？!?]+|\.(?=\s|$)")


@dataclass(frozen=True)
class Assessment:
    degenerate: str | None  # why every check scores 0; None for an answer of its own
    added_text: str  # the answer without long runs copied from the prompt


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end): words case-folded, each CJK character a token of its own."""
    return [(m.group(0).casefold(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _covered(target: list[str], source_grams: set[tuple[str, ...]], n: int) -> list[bool]:
    """Which tokens of `target` lie in a run of n tokens that also stands in the source."""
    mask = [False] * len(target)
    for i in range(len(target) - n + 1):
        if tuple(target[i:i + n]) in source_grams:
            for j in range(i, i + n):
                mask[j] = True
    return mask


def _self_repetition(text: str, words: list[str]) -> str | None:
    lines = [" ".join(t for t, _, _ in _tokens(x)) for x in _LINES.split(text)]
    lines = [x for x in lines if len(x.split()) >= 3 or len(x) >= 6]
    if lines:
        line, n = Counter(lines).most_common(1)[0]
        if n >= 3 and n * len(line.split()) >= 0.5 * len(words):
            shown = line if len(line) <= 40 else line[:40] + "…"
            return f"degenerate: it repeats one line {n} times ({shown!r})"
    if len(words) >= 40:
        grams = [tuple(words[i:i + 6]) for i in range(len(words) - 5)]
        repeats = len(grams) - len(set(grams))
        if repeats >= 0.5 * len(grams):
            return f"degenerate: it loops ({repeats / len(grams):.0%} of its 6-word runs are repeats)"
    return None


@lru_cache(maxsize=4096)
def assess(answer: str, prompt_parts: tuple[str, ...]) -> Assessment:
    """How much of the answer is the model's own; see the module's text for the rules."""
    toks = _tokens(answer)
    words = [t for t, _, _ in toks]
    if not words:
        return Assessment(None, answer)
    for part in prompt_parts:
        p = [t for t, _, _ in _tokens(part)]
        if len(p) < 3:
            continue
        # A short message (a question) counts as echoed only when repeated whole: an answer that restates
        # "Newton's three laws of motion are ..." is not an echo of "What are Newton's three laws of motion?"
        n = len(p) if len(p) < SHORT else SPAN
        repeated = _covered(p, _ngrams(words, n), n)
        share = sum(repeated) / len(p)
        if share >= ECHO_SHARE:
            what = part.strip().replace("\n", " ")
            shown = what if len(what) <= 40 else what[:40] + "…"
            return Assessment(f"degenerate: an echo of the prompt ({share:.0%} of {shown!r} repeated)", "")
    looped = _self_repetition(answer, words)
    if looped:
        return Assessment(looped, "")
    prompt_grams: set[tuple[str, ...]] = set()
    for part in prompt_parts:
        prompt_grams |= _ngrams([t for t, _, _ in _tokens(part)], SPAN)
    copied = _covered(words, prompt_grams, SPAN)
    runs, i = [], 0
    while i < len(words):  # maximal copied runs long enough to be a paragraph rather than a quoted fact
        if copied[i]:
            j = i
            while j < len(words) and copied[j]:
                j += 1
            if sum(_weight(w) for w in words[i:j]) >= STRIP:
                runs.append((toks[i][1], toks[j - 1][2]))
            i = j
        else:
            i += 1
    if not runs:
        return Assessment(None, answer)
    kept, last = [], 0
    for start, end in runs:
        kept += [answer[last:start], " … "]
        last = end
    kept.append(answer[last:])
    added = "".join(kept)
    if len(_tokens(added)) < 3:
        return Assessment("degenerate: nothing added beyond text copied from the prompt", "")
    return Assessment(None, added)


def _weight(token: str) -> float:
    """A word counts 1, a CJK character half (a Chinese word is about two characters)."""
    return 0.5 if len(token) == 1 and "\u3400" <= token <= "\ufaff" else 1.0
