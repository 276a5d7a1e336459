"""Every shipped case's checks pass a hand-written right answer and fail a wrong one
(tests/data/answers/<scenario>.yaml, one answer per turn), so no check is impossible to pass or
impossible to fail. Code checks run in the real sandbox; `llm_judge` needs a judge model and is
left to the judge tests; `latency` judges timings, not text, and is given a fast one."""
from collections import Counter
from pathlib import Path

import pytest
import yaml

from engine import list_scenario_ids, load_scenario
from engine.checks import run_check
from engine.power import min_detectable_difference
from tests.conftest import ROOT

ANSWERS = ROOT / "tests" / "data" / "answers"
SHIPPED = ["standard", "kb-qa", "customer-service", "dev-assistant"]
BUSINESS = ["kb-qa", "customer-service", "dev-assistant"]
FAST = {"ttft_ms": 100.0, "e2e_ms": 1000.0}
pytestmark = pytest.mark.skipif(__import__("shutil").which("bwrap") is None and not __import__("os").environ.get("CI"),
                                reason="code checks need bubblewrap: `sudo apt-get install bubblewrap` enables these (`make test` runs it when root)")


def _verdicts(scenario, case, answers: list[str]) -> list[tuple[str, bool, str]]:
    base = Path(scenario.source_path).parent
    questions = case.questions()
    assert len(answers) == len(questions), f"{case.id}: {len(questions)} turns, {len(answers)} answers"
    out = []
    for (question, checks), answer in zip(questions, answers):
        for c in checks:
            if c.type == "llm_judge":
                continue
            res = run_check(c.type, answer, c.value, {"ignore_case": c.ignore_case, "base_dir": base,
                                                       "question": question, **FAST})
            out.append((c.type, res.passed, res.detail))
    return out


@pytest.mark.parametrize("scenario_id", [pytest.param(s, marks=pytest.mark.slow) if s == "dev-assistant" else s
                                         for s in SHIPPED])  # dev-assistant runs 80 sandboxed programs
def test_every_case_passes_its_right_answer_and_fails_its_wrong_one(scenario_id):
    sc = load_scenario(scenario_id)
    answers = yaml.safe_load((ANSWERS / f"{scenario_id}.yaml").read_text(encoding="utf-8"))
    # every case has answers, none is stale; cases with tools are judged by what the model did, through the
    # runner and the environment (tests/test_tool_cases.py, tests/data/answers/actions.yaml)
    text_cases = [c for c in sc.cases if not c.offered]
    assert set(answers) == {c.id for c in text_cases}
    problems = []
    for case in text_cases:
        good = _verdicts(sc, case, answers[case.id]["good"])
        bad = _verdicts(sc, case, answers[case.id]["bad"])
        assert good, f"{case.id}: no check a text answer can be judged by"
        problems += [f"{case.id}: right answer fails {t}: {d}" for t, ok, d in good if not ok]
        if all(ok for _, ok, _ in bad):
            problems.append(f"{case.id}: the wrong answer passes every check")
    assert not problems, "\n".join(problems)


def test_shipped_scenarios_are_deep_enough_to_decide_on():
    assert set(SHIPPED) <= set(list_scenario_ids())
    for sid in BUSINESS:
        real = [c for c in load_scenario(sid).cases if not c.needle]
        langs = Counter(c.lang for c in real)
        assert len(real) >= 40, (sid, len(real))
        assert min(langs["en"], langs["zh"]) >= 0.4 * len(real), (sid, langs)  # about half and half
        # 40 cases tell apart a quality difference of about 0.18 at the assumed spread (0.4)
        assert min_detectable_difference(len(real), 0.4) < 0.18
    cats = {sid: {c.category for c in load_scenario(sid).cases} for sid in BUSINESS}
    assert {"extraction", "multi_fact", "whole_document", "format", "refusal", "long_context"} <= cats["kb-qa"]
    assert {"knowledge", "tone", "honesty", "escalation", "multi_turn"} <= cats["customer-service"]
    assert {"sql", "explanation", "testing", "bugfix", "library", "coding"} <= cats["dev-assistant"]
    executed = {"python_tests", "python_testgen", "sql_result", "python_output"}
    acted = {"tool_calls", "final_state"}  # a case with tools: scored by the calls it made and what they did
    for case in load_scenario("dev-assistant").cases:  # every one is scored by running code or by its actions
        if case.offered:
            assert acted & {c.type for _, checks in case.questions() for c in checks}, case.id
            continue
        assert executed & {c.type for _, checks in case.questions() for c in checks}, case.id
