"""Models that only repeat their prompt earn nothing: two parrots on a loopback OpenAI-compatible
server (one answers with the user's last message, one with the system message and the question
three times) score at most 0.10 on every shipped scenario and on a scenario imported from a sheet
with documents, through the real runner and checks."""
from pathlib import Path

import pytest
import yaml

from engine import load_scenario
from engine.checks import run_check
from engine.runner import RunConfig, Runner
from engine.scoring import case_scores
from tests.conftest import ROOT
from tests.fakeservers import FakeServer, OpenAIHandler

SHIPPED = ["standard", "kb-qa", "customer-service", "dev-assistant"]
ANSWERS = ROOT / "tests" / "data" / "answers"


@pytest.fixture(scope="module")
def parrots():
    with FakeServer(OpenAIHandler, delay_s=0.0) as server:
        base = f"{server.url}/v1"
        yield [f"openai/parrot@{base}", f"openai/parrot-all-3@{base}"]


def _checks(store, run_id):
    return store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id])


def _mean_quality(store, run_id) -> dict[str, float]:
    scores = case_scores(store.generations(run_id), _checks(store, run_id))
    return scores.groupby("model_spec").score.mean().to_dict()


@pytest.mark.slow
@pytest.mark.parametrize("scenario_id", SHIPPED)
def test_a_parrot_scores_at_most_a_tenth_on_every_shipped_scenario(scenario_id, parrots, store):
    sc = load_scenario(scenario_id)
    run_id = Runner(store).run(RunConfig(sc, parrots, max_tokens=64))
    g = store.generations(run_id)
    assert (g.ok | g.exceeds_context).all(), g[~g.ok].error.head().tolist()  # long probes past 16k: unscored
    quality = _mean_quality(store, run_id)
    assert set(quality) == set(parrots)
    assert all(q <= 0.10 for q in quality.values()), quality
    # text checks show the reason (executed code checks fail by running the echo, as they always did)
    c = _checks(store, run_id)
    text = c[~c.check_type.isin(["python_tests", "python_output", "python_testgen", "sql_result"])]
    if not text.empty:
        assert text.detail.str.startswith("degenerate:").mean() > 0.5, text.detail.value_counts().head()


def test_every_shipped_case_fails_its_echo_and_its_padded_right_answer_but_passes_the_right_one():
    """Offline, case by case: the echo of the question, the echo of the system message and the question
    three times, and the right answer with a copy of the prompt appended all fail every text check;
    the right answer itself passes (as in test_shipped_cases)."""
    problems = []
    for sid in SHIPPED:
        sc = load_scenario(sid)
        answers = yaml.safe_load((ANSWERS / f"{sid}.yaml").read_text(encoding="utf-8"))
        base = Path(sc.source_path).parent
        # cases with tools are judged by what the model did (tests/test_tool_cases.py runs an echo there)
        for case in [c for c in sc.cases if not c.offered]:
            given: list[dict] = []
            for turn, (msgs, checks) in enumerate(case.turn_inputs(4096)):
                given += msgs
                parts = tuple(m["content"] for m in given)
                good = answers[case.id]["good"][turn]
                last = msgs[-1]["content"]
                system = "\n".join(m["content"] for m in given if m["role"] == "system")
                twins = {"echo": last, "echo x3": "\n".join([system, last] * 3), "padded": good + "\n\n" + "\n".join(parts)}
                opts = {"ignore_case": True, "base_dir": base, "question": last, "prompt_parts": parts,
                        "ttft_ms": 100.0, "e2e_ms": 1000.0}
                scored = [c for c in checks if c.type not in ("llm_judge", "python_tests", "python_output",
                                                              "python_testgen", "sql_result")]
                for c in scored:
                    if not run_check(c.type, good, c.value, {**opts, "ignore_case": c.ignore_case}).passed:
                        problems.append(f"{sid}/{case.id} turn {turn}: the right answer fails {c.type}")
                for name, twin in twins.items():
                    passed = [c.type for c in scored
                              if run_check(c.type, twin, c.value, {**opts, "ignore_case": c.ignore_case}).passed]
                    if passed:
                        problems.append(f"{sid}/{case.id} turn {turn}: the {name} passes {passed}")
                given.append({"role": "assistant", "content": good})
    assert not problems, "\n".join(problems[:30])


@pytest.mark.slow
def test_a_parrot_scores_at_most_a_tenth_on_a_sheet_imported_with_documents(parrots, store, tmp_path):
    import docx

    from engine.importer import import_file

    docs = tmp_path / "docs"
    docs.mkdir()
    word = docx.Document()
    word.add_paragraph("Returns are accepted within 30 days of delivery. Refunds reach the card in 5 working days.")
    table = word.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Warranty", "2 years"
    word.save(docs / "returns.docx")
    (docs / "faq.md").write_text("# FAQ\nThe office opens at 09:00.\n\n# 餐补\n差旅每日餐补为 120 元。\n", encoding="utf-8")
    sheet = tmp_path / "kb.csv"
    sheet.write_text("id,prompt,lang,context_file,number,contains\n"
                     "returns,How many days do I have to return an order?,en,returns.docx,30,\n"
                     "refund,How long does a refund take?,en,returns.docx,,5 working days\n"
                     "meal,每日餐补多少？,zh,faq.md,120,\n"
                     "warranty,How long is the warranty?,en,,2,years\n"
                     "office,When does the office open?,en,faq.md,,09:00\n", encoding="utf-8")
    sc = import_file(sheet, "our-kb", docs_folder=docs)
    run_id = Runner(store).run(RunConfig(sc, parrots, max_tokens=64))
    quality = _mean_quality(store, run_id)
    assert set(quality) == set(parrots) and all(q <= 0.10 for q in quality.values()), quality
