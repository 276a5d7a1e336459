"""A sheet of the company's own questions (CSV, JSONL, Excel) becomes a scenario that runs."""
import json
import os

import pytest

from engine import RunConfig, Runner, Store, load_scenario
from engine.importer import SheetError, import_file, preview
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
