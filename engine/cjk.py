"""What counts as a Chinese character, in one place: the CJK ideograph blocks (unified, extension A,
compatibility). Checks count them as words, the token estimate as tokens; the PDF writer's font test
(engine.report) asks a wider question (any East Asian glyph) and keeps its own range."""
from __future__ import annotations

import re

RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CHAR = re.compile(f"[{RANGES}]")


def is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


_NOT_CJK = re.compile(f"[^{RANGES}]+")


def count(text: str) -> int:
    return len(_NOT_CJK.sub("", text))


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, one per 4 other characters (the runner's
    context checks and retrieval's budget)."""
    n = count(text)
    return n + (len(text) - n) // 4
