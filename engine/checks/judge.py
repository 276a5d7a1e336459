"""A judge model scores answers against a rubric; pairwise judging compares two models'
answers in both orders and averages, so the judge's position bias cancels out."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import CheckResult, check


class CheckSkipped(Exception):
    """The check cannot run in this run (e.g. no judge model was chosen); it is not scored."""


def _judge_value(value: Any) -> dict:
    if isinstance(value, str):
        value = {"rubric": value}
    if not isinstance(value, dict) or not isinstance(value.get("rubric"), str) or not value["rubric"].strip():
        raise ValueError("value must be a rubric, or {rubric: text, scale: N}")
    scale = value.get("scale", 5)
    if not isinstance(scale, int) or scale < 2:
        raise ValueError("scale must be an integer of at least 2")
    return {"rubric": value["rubric"], "scale": scale}


SINGLE_PROMPT = """You are a strict grader. Grade the answer to the question against the rubric.

Rubric: {rubric}

Question:
{question}

Answer:
{answer}

Explain briefly, then end with a line of the form "SCORE: n" where n is an integer from 1 to {scale}."""

PAIR_PROMPT = """You are a strict judge. Two assistants answered the same question. Decide which answer
is better{rubric_clause}.

Question:
{question}

Answer A:
{a}

Answer B:
{b}

Explain briefly, then end with a line "WINNER: A", "WINNER: B" or "WINNER: TIE"."""


def parse_score(verdict: str, scale: int) -> int | None:
    found = re.findall(r"SCORE\s*[:：]\s*(\d+)", verdict, re.IGNORECASE)
    if found:
        n = int(found[-1])
        return n if 1 <= n <= scale else None
    return None


def parse_winner(verdict: str) -> str | None:
    found = re.findall(r"WINNER\s*[:：]\s*(A|B|TIE)\b", verdict, re.IGNORECASE)
    return found[-1].upper() if found else None


@check("llm_judge", _judge_value, reads="answer")
def _llm_judge(output: str, value: dict, opts: dict) -> CheckResult:
    judge: Callable[[str], str] | None = opts.get("judge")
    if judge is None:
        raise CheckSkipped("llm_judge: no judge model chosen for this run (--judge SPEC)")
    verdict = judge(SINGLE_PROMPT.format(rubric=value["rubric"], question=opts.get("question", ""),
                                         answer=output, scale=value["scale"]))
    n = parse_score(verdict, value["scale"])
    if n is None:  # the judge's failing, not the answer's: unscored (a 0 would lower every model it judges)
        raise CheckSkipped("llm_judge: the judge gave no readable score; those checks are left unscored")
    score = (n - 1) / (value["scale"] - 1)
    return CheckResult(score >= 0.5, score, f"judged {n}/{value['scale']}", raw=verdict)


def judge_pair(judge: Callable[[str], str], question: str, answer_1: str, answer_2: str,
               rubric: str | None = None) -> dict:
    """Ask in both orders; score_1 is answer_1's share of the win (1, 0.5 or 0) averaged."""
    clause = f" by this rubric: {rubric}" if rubric else ""
    raw_12 = judge(PAIR_PROMPT.format(rubric_clause=clause, question=question, a=answer_1, b=answer_2))
    raw_21 = judge(PAIR_PROMPT.format(rubric_clause=clause, question=question, a=answer_2, b=answer_1))
    w12, w21 = parse_winner(raw_12), parse_winner(raw_21)
    first = {"A": 1.0, "B": 0.0, "TIE": 0.5}.get(w12 or "")
    second = {"A": 0.0, "B": 1.0, "TIE": 0.5}.get(w21 or "")  # answer_1 was shown as B
    known = [s for s in (first, second) if s is not None]
    return {"score_1": sum(known) / len(known) if known else None, "winner_12": w12, "winner_21": w21,
            "raw_12": raw_12, "raw_21": raw_21}
