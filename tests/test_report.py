"""The decision summary read back: the expected winner and figures, model output escaped,
the same report for the same database and weights, and the command line."""
import json
import shutil
import subprocess

import pytest

from engine import load_scenario, report
from engine.recommend import recommend
from tests.conftest import make_run, require
from tests.test_cli import cli

EVIL = "<script>alert('x')</script> <img src=x onerror=alert(1)> | ~~~~~~~~ ```"


def seed(store):
    cases = [f"c{i:02d}" for i in range(24)]
    make_run(store, "standard", {
        "a": {c: [(0.9, 200, 900, 60)] for c in cases},
        "b": {c: [(0.3 if i < 12 else 0.9, 450, 2000, 30)] for i, c in enumerate(cases)}},
        load_ms={"a": 1200, "b": 3400}, rss_mb={"a": 900, "b": 4000},
        text=lambda m, c: EVIL if m == "b" else f"a's answer to {c}")
    return recommend(store, "standard")


def test_markdown_and_html_carry_the_verdict_figures_and_escaped_output(store):
    d = seed(store)
    md = report.render(d, "md").decode()
    assert "**Recommended: a (ranks first in 100% of resamples" in md
    assert "| Load time (s) | 1.20 | 3.40 | a |" in md
    # model output sits in fenced blocks (shown literally, the fence cannot be closed by it);
    # outside them nothing of it is raw
    import re
    outside = re.sub(r"^(`{3,})text\n.*?\n\1$", "", md, flags=re.S | re.M)
    assert "<script>" in md and "<script>" not in outside and "<img" not in outside
    html = report.render(d, "html").decode()
    assert "<script" not in html.lower() and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert html.count("<svg") >= 2  # contribution and sensitivity charts embedded, no external files
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "Recommended: a" in html and "Where the answers differ most" in html


def test_json_report_reads_back(store):
    d = seed(store)
    data = json.loads(report.render(d, "json"))
    assert data["verdict"] == "a" and data["winner"] == "a"
    rank = {r["model_spec"]: r for r in data["ranking"]}
    assert rank["a"]["p_first"] == 1.0 and rank["b"]["p_first"] == 0.0
    rows = {(r["row"], r["model_spec"]): r for r in data["decision_table"]}
    assert rows[("ttft_ms", "a")]["value"] == 200 and rows[("ttft_ms", "a")]["winner"] == "a"
    assert data["examples"][0]["answers"]["b"] == EVIL  # kept as data, escaped only where rendered
    assert data["reproducibility"]["runs"][0]["run_id"] == d.reproducibility["runs"][0]["run_id"]
    assert data["weights"] == {"quality": 0.5, "ttft": 0.2, "latency": 0.15, "throughput": 0.15}


def test_same_database_and_weights_give_the_same_report(store):
    d1 = seed(store)
    d2 = recommend(store, "standard")
    for fmt in ("md", "html", "json"):
        assert report.render(d1, fmt, generated_at="T") == report.render(d2, fmt, generated_at="T")
    assert report.render(d1, "md", generated_at="T") != report.render(d1, "md", generated_at="U")


def test_chinese_report(store):
    md = report.render(seed(store), "md", "zh").decode()
    assert "推荐：a" in md and "决策表" in md


def test_pdf_is_a_printable_document_with_the_verdict(store, tmp_path):
    pdf = report.render(seed(store), "pdf")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    require(bool(shutil.which("pdftotext")), "pdftotext", "sudo apt-get install poppler-utils")
    (tmp_path / "r.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True).stdout
    assert "Recommended: a" in text and "<script>" in text  # shown as text, not run


def test_a_chinese_pdf_has_real_glyphs_or_is_refused_naming_the_font(store, tmp_path, monkeypatch):
    require(report.cjk_font() is not None, "a CJK font", "sudo apt-get install fonts-wqy-zenhei")
    require(bool(shutil.which("pdftotext")), "pdftotext", "sudo apt-get install poppler-utils")
    d = seed(store)
    (tmp_path / "zh.pdf").write_bytes(report.render(d, "pdf", "zh"))
    text = subprocess.run(["pdftotext", str(tmp_path / "zh.pdf"), "-"], capture_output=True, text=True).stdout
    assert "选型决策报告" in text and "决策表" in text  # the glyphs' text reads back, not boxes
    monkeypatch.setattr(report, "cjk_font", lambda: None)
    with pytest.raises(report.ReportError, match="fonts-wqy-zenhei"):
        report.render(d, "pdf", "zh")
    assert report.render(d, "pdf", "en").startswith(b"%PDF")  # no Chinese in it: no font needed


@pytest.mark.slow
def test_report_and_recommend_from_the_command_line(store, cli_env, tmp_path):
    seed(store)
    out = tmp_path / "decision.html"
    res = cli("report", "--db", store.path, "--scenario", "standard", "--format", "html", "--out", str(out),
              env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "Recommended: a" in out.read_text(encoding="utf-8")
    md = tmp_path / "decision.md"
    res = cli("report", "--db", store.path, "--scenario", "standard", "--format", "md", "--out", str(md), env=cli_env)
    assert res.returncode == 0, res.stderr
    sidecar = tmp_path / "decision.reproducibility.json"  # the full record beside the summary, named in it
    assert sidecar.name in md.read_text(encoding="utf-8") and json.loads(sidecar.read_text())["runs"]
    res = cli("recommend", "--db", store.path, "--scenario", "standard", "--json", env=cli_env)
    assert res.returncode == 0 and json.loads(res.stdout)["verdict"] == "a"
    res = cli("recommend", "--db", store.path, "--scenario", "standard", "--weights", "ttft=1,bogus=2", env=cli_env)
    assert res.returncode == 2 and "unknown criterion 'bogus'" in res.stderr
    res = cli("report", "--db", store.path, "--scenario", "standard", "--format", "md",
              "--out", str(tmp_path / "no" / "such" / "dir.md"), env=cli_env)
    assert res.returncode == 2 and "cannot write" in res.stderr
    res = cli("recommend", "--db", str(tmp_path / "missing.duckdb"), "--scenario", "standard", env=cli_env)
    assert res.returncode == 2 and "no results database" in res.stderr
    assert not (tmp_path / "missing.duckdb").exists()


def test_constraints_are_named_in_words_in_both_languages(store):
    from engine.recommend import Constraints

    seed(store)
    d = recommend(store, "standard", constraints=Constraints(min_quality=0.5, max_vram_gb=24))
    zh, en = report.to_markdown(d, "zh"), report.to_markdown(d, "en")
    assert "最低质量分: 0.5" in zh and "显存预算: 24" in zh and "minimum quality: 0.5" in en
    assert "min_quality" not in zh.split("```json")[0] and "max_vram_gb" not in en.split("```json")[0]


def test_an_excluded_model_shows_no_score_beside_the_winners(store):
    from engine.recommend import Constraints

    seed(store)
    d = recommend(store, "standard", constraints=Constraints(min_quality=0.8))  # b (quality ~0.6) is excluded
    assert not d.ranking.set_index("model_spec").eligible["b"]
    row = next(line for line in report.to_markdown(d, "en").splitlines() if line.startswith("| b |"))
    assert row.split("|")[2].strip() == "–"  # not 1.5 beside the winner's 1.000


def _pdf_text(pdf: bytes, tmp_path, first: int | None = None, last: int | None = None) -> str:
    require(bool(shutil.which("pdftotext")), "pdftotext", "sudo apt-get install poppler-utils")
    path = tmp_path / "memo.pdf"
    path.write_bytes(pdf)
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    return subprocess.run(["pdftotext", *pages, str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_memo_leads_with_one_page_a_board_reads(store, tmp_path, lang):
    """Page 1: the scenario (description, cases, repeats), the verdict, why, cost, risks and what would
    change it; the evidence starts on page 2; no raw keys, counts as counts, the run order not printed."""
    if lang == "zh":
        require(report.cjk_font() is not None, "a CJK font", "sudo apt-get install fonts-wqy-zenhei")
    from engine.i18n import t

    d = seed(store)
    pdf = report.render(d, "pdf", lang)
    first = _pdf_text(pdf, tmp_path, 1, 1)
    heads = ("rep_verdict", "rep_why", "rep_cost_lead", "rep_risks", "rep_changes")
    for key in heads:
        assert t(key, lang) in first, key
    assert t("rep_evidence", lang) not in first  # the evidence follows, on its own page
    line = t("rep_scenario_line", lang, name=report.scenario_facts(d, lang)["name"], cases=24, repeats=1, models=2)
    assert line.replace(" ", "") in first.replace(" ", "").replace("\n", "")  # what was measured, by the verdict
    # why: the criterion that put a ahead, by its label, with both figures
    assert t("crit_quality", lang) in first and "0.900" in first and "0.600" in first
    everything = _pdf_text(pdf, tmp_path)
    assert t("rep_evidence", lang) in everything
    for raw in ("multi_turn", "ttft ", "honesty", "95% low" if lang == "zh" else "ci_low", '"schedule"',
                "model_spec", "4.00 "):
        assert raw not in everything, raw
    assert "24 |" not in everything and "24.00" not in everything


def test_the_full_record_is_attached_not_printed(store, tmp_path):
    """PDF: an embedded JSON file; HTML: a collapsed section; Markdown: a sidecar file in the download."""
    import io
    import zipfile

    d = seed(store)
    require(bool(shutil.which("pdfdetach")), "pdfdetach", "sudo apt-get install poppler-utils")
    pdf = tmp_path / "memo.pdf"
    pdf.write_bytes(report.render(d, "pdf"))
    listed = subprocess.run(["pdfdetach", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert report.sidecar_name("standard") in listed
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "record.json"), str(pdf)], check=True)
    record = json.loads((tmp_path / "record.json").read_text(encoding="utf-8"))
    assert record == json.loads(json.dumps(d.reproducibility, default=str))
    assert record["generation_parameters"] and record["runs"][0]["run_id"] == d.reproducibility["runs"][0]["run_id"]

    html = report.render(d, "html").decode()
    details = html.split("<details>", 1)[1]
    assert "<summary>" in details and "generation_parameters" in details
    assert "generation_parameters" not in html.split("<details>", 1)[0]

    md = report.render(d, "md").decode()
    assert "```json" not in md and "generation_parameters" not in md and report.sidecar_name("standard") in md
    with zipfile.ZipFile(io.BytesIO(report.markdown_bundle(d))) as z:
        names = sorted(z.namelist())
        assert names == sorted(["modelpick-standard.md", report.sidecar_name("standard")])
        assert json.loads(z.read(report.sidecar_name("standard"))) == record
        assert z.read("modelpick-standard.md").decode() == md
    assert report.markdown_bundle(d, generated_at="T") == report.markdown_bundle(recommend(store, "standard"),
                                                                                 generated_at="T")


def test_the_answers_that_differ_most_show_what_was_asked(store):
    from engine import load_scenario

    cases = load_scenario("customer-service").cases
    make_run(store, "customer-service", {
        "a": {c.id: [(0.9, 200, 900, 60)] for c in cases},
        "b": {c.id: [(0.2 if c.id == "return-en" else 0.9, 200, 900, 60)] for c in cases}})
    md = report.render(recommend(store, "customer-service"), "md").decode()
    example = md.split("## Where the answers differ most", 1)[1].split("###", 2)[1]
    assert example.startswith(" return-en") and "**What the user asked**" in example
    # both turns of the conversation, as the user said them
    assert "I bought shoes 10 days ago. Can I still return them?" in example
    assert "And if I lost the receipt?" in example


def test_chinese_memo_says_the_engines_caveats_in_chinese(store):
    from engine.recommend import Constraints

    seed(store)
    d = recommend(store, "standard", constraints=Constraints(min_quality=0.8))
    zh = report.to_markdown(d, "zh")
    assert "质量分" in zh and "低于最低要求 0.8" in zh  # why b is out, in words
    assert "quality 0." not in zh and "estimated:" not in zh and "cost for " not in zh


def test_a_too_close_verdict_is_not_shown_in_the_winner_s_green_and_names_who_is_ahead(store):
    from engine.recommend import TOO_CLOSE, recommend
    from tests.conftest import make_run

    cases = [c.id for c in load_scenario("standard").cases]
    make_run(store, "standard", {m: {c: [(0.5, 100.0, 900.0, 30.0)] for c in cases} for m in ("fake/a", "fake/b")})
    d = recommend(store, "standard", weights={"quality": 1.0})
    assert d.verdict == TOO_CLOSE
    html = report.render(d, "html").decode()
    assert "<div class='verdict open'>" in html and "Ahead for now:" in html and "a verdict needs 90%" in html
    assert "暂时领先" in report.render(d, "html", "zh").decode()
