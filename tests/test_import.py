"""A sheet of the company's own questions (CSV, JSONL, Excel) becomes a scenario that runs."""
import json
import os

import pytest

from engine import RunConfig, Runner, Store, load_scenario
from engine.importer import SheetError, import_file, preview
from engine.scenarios import ScenarioError
from tests.test_cli import cli

CSV = """id,prompt,reference,category,lang,contains,number,expected
leave,How many days of paid leave?,15 days of paid leave per year,policy,en,15|days,15,
refund,退款多久到账？,3 到 5 个工作日,policy,zh,,5 ± 2,contains: 工作日
greet,Say hello,,tone,en,,,"llm-rubric: friendly and short"
"""


def test_a_csv_becomes_a_scenario_with_the_checks_its_columns_name(tmp_path):
    path = tmp_path / "Support Questions.csv"
    path.write_text(CSV, encoding="utf-8")
    sc = import_file(path)
    assert sc.id == "support-questions" and sc.name == "Support Questions"
    assert sc.source_path.startswith(os.environ["MODELPICK_USER_SCENARIOS_DIR"])  # the user's folder
    leave, refund, greet = sc.cases
    assert (leave.id, leave.category, leave.lang) == ("leave", "policy", "en")
    kinds = {c.type: c.value for c in leave.checks}
    assert kinds["f1"] == {"answer": ["15 days of paid leave per year"], "min": 0.5}
    assert kinds["contains"] == ["15", "days"] and kinds["number"]["value"] == 15
    refund_checks = {c.type: c for c in refund.checks}
    assert refund_checks["number"].value == {"value": 5.0, "tolerance": 0.0, "abs": 2.0}
    assert refund_checks["contains"].value == ["工作日"] and refund_checks["contains"].ignore_case is False
    assert [c.type for c in greet.checks] == ["llm_judge"]
    # and it runs like any scenario
    run_id = Runner(Store()).run(RunConfig(load_scenario(sc.id), ["fake/echo"]))
    assert len(Store().check_results(run_id)) == 6


def test_jsonl_and_excel_give_the_same_cases(tmp_path):
    from openpyxl import Workbook

    rows = [{"prompt": "2+2?", "exact": "4|four", "category": "math"}, {"prompt": "Capital of France?",
                                                                         "reference": "Paris"}]
    jsonl = tmp_path / "qs.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    book = Workbook()
    sheet = book.active
    sheet.append(["prompt", "exact", "category", "reference"])
    for r in rows:
        sheet.append([r.get("prompt"), r.get("exact"), r.get("category"), r.get("reference")])
    book.save(tmp_path / "qs.xlsx")
    a = preview("qs.jsonl", jsonl.read_bytes())
    b = preview("qs.xlsx", (tmp_path / "qs.xlsx").read_bytes())
    dump = [[c.model_dump() for c in sc.cases] for sc in (a, b)]
    assert dump[0] == dump[1]
    assert a.cases[0].checks[0].value == ["4", "four"] and a.cases[1].id == "case-2"


@pytest.mark.parametrize("name,content,message", [
    ("q.csv", "prompt,contians\nhi,x\n", "q.csv: row 2: column 'contians': unknown"),
    ("q.csv", "prompt,number\nhi,x\nho,about 5\n", "q.csv: row 2: column 'number': 'x' is not a number"),
    ("q.csv", "prompt,category\nhi,a\n,b\n", "q.csv: row 3: column 'prompt': empty"),
    ("q.csv", "id,prompt\na,hi\na,ho\n", "q.csv: row 3: column 'id': 'a' is used again (first on row 2)"),
    ("q.csv", "prompt,regex\nhi,([a-z\n", "q.csv: row 2: column 'regex': invalid regular expression"),
    ("q.csv", "prompt,lang\nhi,en,extra\n", "q.csv: row 2: more cells than the header has columns"),
    ("q.jsonl", '{"prompt": "hi"}\n[1, 2]\n', "q.jsonl: line 2: a JSON object per line is needed"),
    ("q.jsonl", '{"prompt": "hi"\n', "q.jsonl: line 1: not JSON"),
    ("q.xlsx", "not a workbook", "q.xlsx: not an Excel workbook"),
    ("q.pdf", "x", "unknown file type .pdf"),
    ("q.csv", "prompt\n", "q.csv: no rows with a prompt"),
])
def test_a_sheet_that_does_not_fit_is_named_by_row_and_column(tmp_path, name, content, message):
    with pytest.raises(SheetError) as err:
        preview(name, content.encode())
    assert message in str(err.value)


def test_a_gbk_csv_from_excel_is_read():
    sc = preview("q.csv", "prompt,contains\n退款多久到账？,工作日\n".encode("gb18030"))
    assert sc.cases[0].prompt == "退款多久到账？"


def test_the_import_command(cli_env, tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(CSV, encoding="utf-8")
    res = cli("import", str(path), "--scenario", "our-faq", "--name", "Our FAQ", env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "saved scenario 'our-faq' with 3 cases (policy: 2, tone: 1)" in res.stdout
    again = cli("import", str(path), "--scenario", "our-faq", env=cli_env)
    assert again.returncode == 2 and "exists already" in again.stderr  # nothing replaced unasked
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,number\nhi,lots\n", encoding="utf-8")
    res = cli("import", str(bad), env=cli_env)
    assert res.returncode == 2 and "bad.csv: row 2: column 'number'" in res.stderr


def test_the_companys_documents_become_the_cases_context(tmp_path):
    import docx
    from weasyprint import HTML

    from engine.importer import import_file

    docs = tmp_path / "docs"
    docs.mkdir()
    HTML(string="<h1>Travel policy</h1><p>Economy class is booked for flights under 6 hours.</p>"
                "<p>差旅每日餐补为 120 元。</p>").write_pdf(docs / "travel.pdf")
    word = docx.Document()
    word.add_paragraph("Returns are accepted within 30 days of delivery.")
    table = word.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Warranty", "2 years"
    word.save(docs / "returns.docx")
    (docs / "faq.md").write_text("# FAQ\nThe office opens at 09:00.\n", encoding="utf-8")
    (docs / "notes.xyz").write_text("ignored: not a document type", encoding="utf-8")
    sheet = tmp_path / "kb.csv"
    sheet.write_text("id,prompt,lang,context_file,number,contains\n"
                     "flight,Which class for a 4-hour flight?,en,travel.pdf,,economy\n"
                     "meal,每日餐补多少？,zh,travel.pdf,120,\n"
                     "warranty,How long is the warranty?,en,,2,years\n", encoding="utf-8")
    sc = import_file(sheet, "our-kb", docs_folder=docs)
    flight, meal, warranty = sc.cases
    assert flight.context_file == "docs/our-kb/travel.txt" and "Economy class is booked" in flight.context
    assert "差旅每日餐补为 120 元" in meal.context and meal.system.startswith("只根据文档回答")
    assert warranty.context_file == ["docs/our-kb/faq.txt", "docs/our-kb/returns.txt", "docs/our-kb/travel.txt"]
    assert "Warranty | 2 years" in warranty.context and "opens at 09:00" in warranty.context
    assert "Answer only from the documents" in warranty.system
    assert "{context}" not in warranty.turn_inputs()[0][0][-1]["content"]  # the documents go in front


def test_a_document_that_cannot_be_read_is_named_and_nothing_is_saved(tmp_path):
    from pypdf import PdfWriter

    from engine.importer import import_file

    docs = tmp_path / "docs"
    docs.mkdir()
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    blank.write(docs / "scan.pdf")
    sheet = tmp_path / "kb.csv"
    sheet.write_text("prompt\nWhat does the scan say?\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"scan.pdf: no text in it \(a scanned PDF has no text layer"):
        import_file(sheet, "scan-kb", docs_folder=docs)
    (docs / "scan.pdf").write_bytes(b"%PDF-1.4 broken")
    with pytest.raises(ScenarioError, match="scan.pdf: not a readable PDF"):
        import_file(sheet, "scan-kb", docs_folder=docs)
    mine = os.environ["MODELPICK_USER_SCENARIOS_DIR"]
    assert not os.path.exists(os.path.join(mine, "docs", "scan-kb"))
    assert not os.path.exists(os.path.join(mine, "scan-kb.yaml"))


def test_the_humaneval_pack_installs_and_its_tests_judge_answers():
    from engine.checks import run_check
    from engine.packs import humaneval_tasks, install_pack

    tasks = humaneval_tasks()
    assert len(tasks) == 164
    sc, _ = install_pack("humaneval", limit=3)
    assert sc.id == "humaneval" and len(sc.cases) == 3 and sc.cases[0].id == "humaneval-0"
    for task, case in zip(tasks, sc.cases):
        check = case.checks[0]
        good = f"```python\n{task['prompt']}{task['canonical_solution']}```"
        bad = f"```python\ndef {task['entry_point']}(*args):\n    return None\n```"
        assert run_check("python_tests", good, check.value).passed, task["task_id"]
        assert not run_check("python_tests", bad, check.value).passed, task["task_id"]
    with pytest.raises(ScenarioError, match="exists already"):
        install_pack("humaneval", limit=3)
    with pytest.raises(ScenarioError, match="unknown case pack"):
        install_pack("mmlu")


def test_the_pack_and_docs_commands(cli_env, tmp_path):
    docs = tmp_path / "handbook"
    docs.mkdir()
    (docs / "leave.md").write_text("Employees get 15 days of paid leave.\n", encoding="utf-8")
    sheet = tmp_path / "hr.csv"
    sheet.write_text("prompt,number\nHow many days of paid leave?,15\n", encoding="utf-8")
    res = cli("import", str(sheet), "--docs", str(docs), env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "saved scenario 'hr' with 1 cases" in res.stdout
    res = cli("import", str(sheet), "--scenario", "hr2", "--docs", str(tmp_path / "nowhere"), env=cli_env)
    assert res.returncode == 2 and "nowhere: not a folder" in res.stderr
    res = cli("pack", "humaneval", "--limit", "5", env=cli_env)
    assert res.returncode == 0 and "saved scenario 'humaneval' with 5 cases" in res.stdout, res.stderr


def test_a_formula_cell_without_a_saved_value_is_said_to_be_a_formula(tmp_path):
    from openpyxl import Workbook

    from engine.importer import SheetError, import_file

    wb = Workbook()
    ws = wb.active
    ws.append(["id", "prompt", "expected"])
    ws.append(["a", '=CONCAT("What is ","2+2?")', "4"])  # openpyxl saves the formula, not its value
    ws.append(["b", "Capital of France?", "Paris"])
    wb.save(tmp_path / "f.xlsx")
    with pytest.raises(SheetError) as err:
        import_file(tmp_path / "f.xlsx")
    assert "row 2: column 'prompt': a formula (=CONCAT(" in str(err.value) and "save it" in str(err.value)
    assert "empty" not in str(err.value)
