"""A hostile user and a hostile server, second round (docs/security.md): secrets masked by the
values the process holds, no way out of the URL policy or the scenario's folder, nothing that
hangs or crashes on a crafted file or stream, and data that is not ours shown as text."""
import io
import os
import re
import socket
import struct
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest

from engine import RunConfig, Runner, Store, load_scenario
from engine.backends import BackendError, internal_host_problem, resolve
from engine.backends import http as policy
from engine.redact import guard_streams, hold
from engine.scenarios import ScenarioError, parse_scenario
from engine.store import StoreBusy, StoreError
from tests.conftest import ROOT, hold_file, make_run
from tests.fakeservers import MALFORMED, FakeServer, OpenAIHandler
from tests.test_cli import cli

KEY = "zq-test-secret-4d1c9b7e2a"
HEAD = "id: x\nname: x\ndescription: d\nweights: {quality: 1}\n"


# --- secrets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["fault-500-echo", "fault-sse-echo", "fault-401-echo", "says-key"])
def test_a_key_in_any_variable_a_spec_names_is_masked_wherever_it_is_echoed(model, cli_env, tmp_path):
    env = dict(cli_env, LLM_AUTH=KEY)  # a name that ends in none of KEY, TOKEN, SECRET, PASSWORD
    db = tmp_path / "k.duckdb"
    with FakeServer(OpenAIHandler) as oa:
        res = cli("run", "--scenario", "standard", "--case", "knowledge-en", "--no-warmup", "--model",
                  f"openai/{model}@{oa.url}/v1?api_key_env=LLM_AUTH", "--db", str(db), env=env)
        assert oa.httpd.auth and all(a == f"Bearer {KEY}" for a in oa.httpd.auth)  # it was sent
    report = tmp_path / "r.md"
    rep = cli("report", "--scenario", "standard", "--format", "md", "--out", str(report), "--db", str(db), env=env)
    # a server that failed every request leaves nothing to decide on (its cells are missing): then the
    # report's refusal is what is read for the key
    written = report.read_text() if report.exists() else rep.stdout + rep.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        stored = str(con.execute("SELECT * FROM generations").fetchall())
    assert res.returncode == 0 and "[redacted]" in stored + res.stderr
    assert KEY not in stored + res.stdout + res.stderr + written


def test_the_journal_kept_while_the_file_is_busy_holds_no_secret(store, monkeypatch):
    monkeypatch.setenv("LLM_AUTH", KEY)
    from engine.redact import hold_env

    hold_env("LLM_AUTH")
    store.journal("r1", {"run_id": "r1", "error": f"HTTP 500: token {KEY}", "output_text": f"the key is {KEY}"}, [])
    text = store.journal_path("r1").read_text()
    assert KEY not in text and text.count("[redacted]") == 2


def test_what_a_run_prints_to_its_log_is_masked_even_in_pieces(capfd):
    import sys

    hold("s3cr3t-dashboard-pw")
    saved = sys.stdout, sys.stderr
    guard_streams()
    try:
        sys.stdout.write("password: s3cr3t-")  # a secret split across two writes
        sys.stdout.write("dashboard-pw\n")
        print("Traceback ... s3cr3t-dashboard-pw", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdout, sys.stderr = saved
    out, err = capfd.readouterr()
    assert "s3cr3t" not in out + err and out.count("[redacted]") == 1 and "[redacted]" in err


def test_documents_are_read_as_regular_files_only_and_symlinks_are_refused_by_name(tmp_path, monkeypatch):
    from engine.documents import DocumentError, documents_in
    from engine.importer import import_file

    monkeypatch.setenv("LLM_AUTH", KEY)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text("Leave is 25 days a year.")
    (docs / "env.txt").symlink_to("/proc/self/environ")
    with pytest.raises(DocumentError, match=r"env\.txt: a symbolic link"):
        documents_in(docs)
    (docs / "env.txt").unlink()
    os.mkfifo(docs / "pipe.md")
    with pytest.raises(DocumentError, match=r"pipe\.md is not a regular file"):
        documents_in(docs)
    (docs / "pipe.md").unlink()
    sheet = tmp_path / "qs.csv"
    sheet.write_text("id,prompt\nq1,How many days?\n")
    saved = import_file(sheet, "handbook", docs_folder=docs)
    assert "Leave is 25 days" in saved.cases[0].context


# --- escapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://[::169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/",
                                 "http://[::ffff:169.254.169.254]/", "http://[2002:a9fe:a9fe::1]/",
                                 "http://[fe80::1]/", "http://169.254.169.254/"])
def test_every_spelling_of_a_metadata_or_link_local_address_is_refused(url):
    assert "169.254" in (internal_host_problem(url) or "") or "fe80" in (internal_host_problem(url) or "")


def test_the_policy_is_checked_on_the_address_connected_to_not_the_name(monkeypatch):
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "169.254.169.254"])  # a name whose DNS answer changes after the check

    def rebinding(host, *args, **kwargs):
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers, "169.254.169.254"), 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    assert internal_host_problem("http://rebind.test/v1") is None  # first answer: loopback, passes the check
    with policy.client("http://rebind.test") as c, pytest.raises(policy.Refused, match="169.254.169.254"):
        c.get("http://rebind.test/v1/models")


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def _serve(handler):
    srv = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_a_redirect_to_another_host_is_not_followed_by_any_client(monkeypatch):
    from engine import worker
    from engine.backends.ollama import installed_models

    hits = []

    class Target(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    target = _serve(Target)
    _Redirect.target = f"http://localhost:{target.server_port}/secret"  # another host name than the spec's
    source = _serve(_Redirect)
    url = f"http://127.0.0.1:{source.server_port}"
    try:
        with pytest.raises(BackendError, match="redirected to http://localhost"):
            resolve(f"openai/x@{url}/v1").load()
        with pytest.raises(BackendError, match="refused"):
            installed_models(url)
        assert worker.check_reachable(url) is None  # it answers (a 302); the Run page does not follow it
        assert hits == []
    finally:
        source.shutdown()
        target.shutdown()


def test_a_scenario_reads_what_it_checked_even_when_its_folder_is_swapped_for_a_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("inside")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "a.md").write_text("OUTSIDE")
    text = HEAD + "cases: [{id: a, category: k, prompt: '{context}', context_file: docs/a.md}]\n"
    assert parse_scenario(text, "s.yaml", base_dir=tmp_path).cases[0].context == "inside"
    os.rename(tmp_path / "docs", tmp_path / "real")
    os.symlink(outside, tmp_path / "docs")  # the swap an attacker races against the check
    with pytest.raises(ScenarioError, match="symbolic link"):
        parse_scenario(text, "s.yaml", base_dir=tmp_path)
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            os.unlink(tmp_path / "docs")
            os.rename(tmp_path / "real", tmp_path / "docs")
            os.rename(tmp_path / "docs", tmp_path / "real")
            os.symlink(outside, tmp_path / "docs")

    t = threading.Thread(target=swap)
    t.start()
    read = []
    try:
        for _ in range(300):
            try:
                read.append(parse_scenario(text, "s.yaml", base_dir=tmp_path).cases[0].context)
            except ScenarioError:
                pass
    finally:
        stop.set()
        t.join()
    assert "OUTSIDE" not in read


def test_an_import_whose_id_would_leave_the_folder_writes_nothing(tmp_path, cli_env):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text("Leave is 25 days.")
    sheet = tmp_path / "qs.csv"
    sheet.write_text("id,prompt\nq1,How many days?\n")
    users = tmp_path / "a" / "b" / "users"
    res = cli("import", str(sheet), "--scenario", "../../x", "--docs", str(docs),
              env=dict(cli_env, MODELPICK_USER_SCENARIOS_DIR=str(users)))
    assert res.returncode == 2 and "scenario id '../../x'" in res.stderr
    assert not [p for p in tmp_path.rglob("*.txt")]


def test_an_import_that_fails_after_its_documents_were_saved_leaves_none_behind(tmp_path, monkeypatch):
    from engine import importer

    docs = [("handbook.md", b"Leave is 25 days.")]
    monkeypatch.setattr(importer, "save_scenario_text", lambda *a, **k: (_ for _ in ()).throw(ScenarioError("no")))
    with pytest.raises(ScenarioError):
        importer.import_sheet("qs.csv", b"id,prompt\nq1,How many days?\n", "left", documents=docs)
    assert not [p for p in (tmp_path / "user-scenarios").rglob("*") if p.is_file()]


def test_markdown_that_is_not_ours_is_shown_as_text():
    from engine.textsafe import code_span, csv_cell, fence, markdown_text

    shown = markdown_text("![t](http://host/track) [x](javascript:1) <img src=x> :red[hi] $x$\n# h\n1. a")
    assert shown == "\\!\\[t\\](http://host/track) \\[x\\](javascript:1) \\<img src=x\\> :red\\[hi\\] \\$x\\$\n\\# h\n1\\. a"
    assert markdown_text("smollm2-135m · 1.5 s · knowledge_en") == "smollm2-135m · 1.5 s · knowledge\\_en"
    assert code_span("openai/x\n\n![t](http://h/t)`") == "`openai/x ![t](http://h/t)'`"
    assert fence("a\n````\nb").startswith("`````text\n")
    assert [csv_cell(v) for v in ["=1+1", "@SUM(1)", "+1", "-1+2", "\tx", "ok", -3]] == \
        ["'=1+1", "'@SUM(1)", "'+1", "'-1+2", "'\tx", "ok", -3]


def test_a_case_id_and_a_spec_with_markdown_render_as_text_on_compare_and_rate(store):
    from streamlit.testing.v1 import AppTest

    evil_case = "![t](http://127.0.0.1:9/track)"
    evil_model = "fake/x\n\n![m](http://127.0.0.1:9/spec)"
    make_run(store, "standard", {"fake/echo": {evil_case: [(1, 100, 200, 50)]},
                                 evil_model: {evil_case: [(0, 100, 200, 50)]}})
    for page in ("pages/compare.py", "pages/rate.py"):
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
        at.run()
        at.switch_page(page).run()
        assert not at.exception
        values = [str(e.value) for kind in ("markdown", "caption", "info", "success", "warning", "error")
                  for e in getattr(at, kind)] + [str(e.label) for e in at.expander]
        live = [v for v in values if re.search(r"(?<![\\`])!\[[tm]\]\(", v) and "`" not in v]
        assert not live, (page, live)


def test_csv_downloads_quote_formula_cells():
    import pandas as pd

    from pages._shared import csv

    out = csv(pd.DataFrame({"case_id": ['=HYPERLINK("http://x")', "@SUM(1+1)", "ok"], "n": [-1, 2, 3]})).decode()
    assert "'=HYPERLINK" in out and "'@SUM" in out and "\nok," in out and ",-1" in out


def test_an_empty_server_address_is_treated_as_exposed(monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("MODELPICK_PASSWORD", raising=False)
    st.config.set_option("server.address", "")
    try:
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
        at.run()
        assert at.error and "without a password" in at.error[0].value and "every address" in at.error[0].value
        assert not at.dataframe and not at.button
    finally:
        st.config.set_option("server.address", "127.0.0.1")


# --- hangs -----------------------------------------------------------------------------------

def test_a_backtracking_regex_check_is_stopped_and_fails_with_the_reason():
    from engine.checks import REGEX_TIMEOUT_S, run_check

    t0 = time.monotonic()
    result = run_check("regex", "a" * 40 + "!", "^(a|aa)+$")
    assert time.monotonic() - t0 < REGEX_TIMEOUT_S + 3
    assert not result.passed and "backtracks" in result.detail


def test_a_run_with_a_backtracking_regex_check_finishes_and_stores_it(tmp_path, cli_env):
    scen = tmp_path / "rx.yaml"
    scen.write_text(HEAD + "cases: [{id: a, category: k, prompt: 'Shout.', checks: [{type: regex, value: "
                    "'^(a|aa)+$'}]}]\n")
    db = tmp_path / "rx.duckdb"
    with FakeServer(OpenAIHandler) as oa:
        res = cli("run", "--scenario", str(scen), "--no-warmup", "--model", f"openai/a40@{oa.url}/v1",
                  "--db", str(db), env=cli_env)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchone()[0] == "done"
        assert con.execute("SELECT passed, detail FROM check_results").fetchall()[0][0] is False
    assert res.returncode == 0


def _laughs() -> str:
    """A scenario whose check value holds 8 levels of 10 aliases: 10^8 values once expanded."""
    levels = ", ".join(f"&{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]"
                       for i in range(8))
    return (HEAD + "cases: [{id: a, category: k, prompt: p, checks: [{type: json_schema, value: {examples: "
            "[&a [x, x, x, x, x, x, x, x, x, x], " + levels + "], enum: *i}}]}]\n")


def test_yaml_aliases_cannot_blow_up_and_keys_cannot_repeat():
    t0 = time.monotonic()
    with pytest.raises(ScenarioError, match="aliases expand"):
        parse_scenario(_laughs(), "lol.yaml")
    assert time.monotonic() - t0 < 2
    with pytest.raises(ScenarioError, match=r"lol\.yaml: at line \d+.*'cases' is given twice"):
        parse_scenario(HEAD + "cases: [{id: a, category: k, prompt: p}]\ncases: [{id: b, category: k, prompt: q}]\n",
                       "lol.yaml")
    with pytest.raises(ScenarioError, match="contains itself"):
        parse_scenario(HEAD + "x: &r [*r]\ncases: [{id: a, category: k, prompt: p}]\n", "loop.yaml")
    # anchors used as they are meant to be still work
    shared = HEAD + "cases:\n - {id: a, category: k, prompt: p, checks: &c [{type: contains, value: x}]}\n" \
        " - {id: b, category: k, prompt: q, checks: *c}\n"
    assert [len(c.checks) for c in parse_scenario(shared, "ok.yaml").cases] == [1, 1]


def test_list_scenarios_names_a_bad_user_file_and_lists_the_others(tmp_path, cli_env):
    users = tmp_path / "users"
    users.mkdir()
    (users / "lol.yaml").write_text(_laughs().replace("id: x", "id: lol"))
    res = cli("list", "scenarios", env=dict(cli_env, MODELPICK_USER_SCENARIOS_DIR=str(users)))
    assert res.returncode == 2 and "standard" in res.stdout and "lol.yaml" in res.stderr


def test_a_fifo_is_refused_wherever_a_file_is_read(tmp_path):
    os.mkfifo(tmp_path / "s.yaml")
    with pytest.raises(ScenarioError, match="is a FIFO"):
        load_scenario(tmp_path / "s.yaml")
    os.mkfifo(tmp_path / "doc.md")
    with pytest.raises(ScenarioError, match="not a regular file"):
        parse_scenario(HEAD + "cases: [{id: a, category: k, prompt: p, context_file: doc.md}]\n", "s.yaml",
                       base_dir=tmp_path)


def _bomb(kind: str, times: int) -> bytes:
    buf = io.BytesIO()
    member, head, body = ("xl/worksheets/sheet1.xml", b"<worksheet><sheetData>", b"<row/>") if kind == "xlsx" else \
        ("word/document.xml", b"<w:document><w:body>", b"<w:p><w:r><w:t>text</w:t></w:r></w:p>")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, z.open(member, "w", force_zip64=True) as f:
        f.write(head + body * times)
    return buf.getvalue()


def test_office_zip_bombs_are_refused_before_they_are_unpacked_and_leave_nothing(tmp_path):
    from engine.documents import DocumentError, extract_text
    from engine.importer import SheetError, import_sheet

    with pytest.raises(SheetError, match=r"bomb\.xlsx: its content unpacks to \d+ MiB"):
        import_sheet("bomb.xlsx", _bomb("xlsx", 6_000_000), "bomb")
    with pytest.raises(DocumentError, match=r"bomb\.docx: its content unpacks to \d+ MiB"):
        extract_text("bomb.docx", _bomb("docx", 1_000_000))
    with pytest.raises(DocumentError):
        import_sheet("qs.csv", b"prompt\nhi\n", "docbomb", documents=[("bomb.docx", _bomb("docx", 1_000_000))])
    assert not [p for p in (tmp_path / "user-scenarios").rglob("*") if p.is_file()]


def test_a_second_interrupt_stops_waiting_for_a_database_another_process_holds(tmp_path):

    path = tmp_path / "held.duckdb"
    store = Store(path)
    holder = hold_file(path, 60)
    try:
        store.give_up = threading.Event()
        threading.Timer(0.5, store.give_up.set).start()
        t0 = time.monotonic()
        with pytest.raises(StoreBusy, match="stopped waiting"), store.connect(lock_timeout_s=60):
            pass
        assert time.monotonic() - t0 < 5
    finally:
        holder.kill()
        holder.wait()


# --- crashes and malformed answers -----------------------------------------------------------

@pytest.mark.parametrize("model", MALFORMED)
def test_a_stream_with_the_wrong_types_fails_that_generation_and_the_run_goes_on(model, store):
    with FakeServer(OpenAIHandler) as oa:
        run_id = Runner(store).run(RunConfig(load_scenario("standard"), [f"openai/{model}@{oa.url}/v1", "fake/echo"],
                                             case_ids=["knowledge-en"], warmup=False))
    rows = {r["model_spec"]: r for r in store.generations(run_id).to_dict("records")}
    bad = rows[f"openai/{model}@{oa.url}/v1"]
    assert not bad["ok"] and "malformed" in bad["error"] and rows["fake/echo"]["ok"]
    assert store.get_run(run_id)["status"] == "done"


@pytest.mark.parametrize("name, data", [("q.csv", b"prompt,max_tokens\nhi,1e309\n"),
                                        ("q.jsonl", b'{"prompt": "hi", "max_tokens": 1e400}\n'),
                                        ("q.csv", b"prompt,max_tokens\nhi,-4\n")])
def test_absurd_max_tokens_in_a_sheet_are_named(name, data):
    from engine.importer import SheetError, preview

    with pytest.raises(SheetError, match=r"column 'max_tokens': .* is not a whole number from 1"):
        preview(name, data)


def test_a_docx_with_one_huge_text_run_is_refused_by_name():
    import docx

    from engine.documents import DocumentError, extract_text

    word = docx.Document()
    word.add_paragraph("x" * 30_000_000)
    buf = io.BytesIO()
    word.save(buf)
    with pytest.raises(DocumentError, match=r"long\.docx: not a readable Word \.docx file"):
        extract_text("long.docx", buf.getvalue())


def test_the_sandbox_caps_what_code_may_write_in_all():
    from engine.sandbox import Limits, isolation, run_python
    from tests.conftest import require

    require(isolation() == "bwrap", "bubblewrap", "apt-get install bubblewrap")
    prog = "\n".join(["n = 0", "for d in ('/tmp', '.'):", "    try:", "        for i in range(40):",
                      "            with open(f'{d}/f{i}', 'wb') as f: f.write(b'x' * 15 * 2**20)",
                      "            n += 15", "    except OSError: pass", "print(n)"])
    res = run_python(prog, {"given.txt": "kept"}, Limits(wall_s=60, cpu_s=60, scratch_mb=32))
    assert res.returncode == 0 and int(res.stdout.split()[-1]) <= 64  # 32 MB each for /tmp and its folder


def test_a_sql_check_runs_in_a_process_of_its_own_with_a_memory_limit():
    from engine.checks.code import SqlError, run_sql, sample_database

    db = sample_database(ROOT / "scenarios" / "data" / "shop.sql")
    assert run_sql(db, "SELECT 1 + 1", 10) == [(2,)]
    with pytest.raises(SqlError, match="(?i)memory"):
        run_sql(db, "SELECT length(repeat('x', 2500000000))", 60)
    with pytest.raises(SqlError, match="more than 10,000 rows"):
        run_sql(db, "SELECT * FROM range(20000)", 10)


# --- messages --------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ("weights: {quality: .nan}\ncases: [{id: a, category: k, prompt: p}]\n", "weights.quality: Input should be a "
     "finite number"),
    ("weights: {quality: 1}\ndefaults: {temperature: .inf}\ncases: [{id: a, category: k, prompt: p}]\n",
     "defaults.temperature"),
    ("weights: {quality: 1}\ndefaults: {temperature: 7}\ncases: [{id: a, category: k, prompt: p}]\n",
     "defaults.temperature"),
    ("weights: {quality: 1}\ncases: [{id: a, category: k, prompt: p, checks: [{type: python_tests, value: "
     "{tests: 'assert True', timeout_s: -5}}]}]\n", "timeout_s must be a number of seconds above 0"),
    ("weights: {quality: 1}\ncases: [{id: a, category: k, prompt: p, max_tokens: 100000000}]\n", "max_tokens"),
])
def test_numbers_a_scenario_cannot_mean_are_refused_with_the_field(body, message):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_scenario("id: x\nname: x\ndescription: d\n" + body, "n.yaml")


def test_a_gguf_path_that_is_a_folder_is_named(tmp_path):
    (tmp_path / "m.gguf").mkdir()
    with pytest.raises(BackendError, match="is a folder, not a GGUF file"):
        resolve(f"llamacpp/{tmp_path / 'm.gguf'}").prepare()


def test_a_foreign_duckdb_file_that_lists_our_migrations_is_not_taken_for_ours(tmp_path):
    from engine.store import MIGRATIONS

    path = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE migrations (id INTEGER, name VARCHAR, applied_at TIMESTAMP)")
        for i, (name, _) in enumerate(MIGRATIONS, start=1):
            con.execute("INSERT INTO migrations VALUES (?, ?, now())", [i, name])
    before = path.read_bytes()
    with pytest.raises(StoreError, match="is not a ModelPick results file: its migrations table lists ours"):
        Store(path)
    assert path.read_bytes() == before


# --- the dashboard password ------------------------------------------------------------------

def test_failed_logins_from_one_address_wait_longer_each_time_then_lock_out():
    from pages import _access as access

    access._FAILURES.clear()
    now = 1000.0
    waits = [access.record_failure("203.0.113.9", now + i) for i in range(access.LOCKOUT_AFTER)]
    assert waits[:5] == [1, 2, 4, 8, 16] and waits[-1] == access.LOCKOUT_S
    assert access.wait_left("203.0.113.9", now + 60) > 14 * 60  # locked out
    assert access.wait_left("198.51.100.7", now + 60) == 0  # another address is not
    assert access.wait_left("203.0.113.9", now + access.LOCKOUT_S + access.FORGET_S + 10) == 0  # forgotten later
    access.record_failure("198.51.100.7", now)
    access.record_success("198.51.100.7")
    assert access.wait_left("198.51.100.7", now) == 0


def test_wrong_guesses_in_new_sessions_share_one_count(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from pages import _access as access

    access._FAILURES.clear()
    monkeypatch.setenv("MODELPICK_PASSWORD", "correct horse")
    for _ in range(2):  # a new browser session for each guess
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
        at.run()
        at.text_input[0].set_value("wrong horse")
        at.button[0].click().run()
    assert [f.count for f in access._FAILURES.values()] == [2]  # one address, both failures
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
    at.run()
    at.text_input[0].set_value("correct horse")  # even the right password waits its turn
    at.button[0].click().run()
    assert "try again in" in at.error[0].value and [t.label for t in at.text_input] == ["Password"]
    access._FAILURES.clear()


def test_report_out_to_a_fifo_or_a_device_is_refused_at_once(tmp_path, store):
    import subprocess
    import sys

    figures = {m: {f"c{i:02d}": [(0.5, 100.0, 500.0, 20.0)] for i in range(3)} for m in ("fake/a", "fake/b")}
    make_run(store, "standard", figures)
    fifo = tmp_path / "memo.md"
    os.mkfifo(fifo)
    for target, kind in ((fifo, "a FIFO"), (Path("/dev/null"), "a device")):
        res = subprocess.run([sys.executable, "-m", "engine", "report", "--scenario", "standard", "--format", "html",
                              "--out", str(target), "--db", str(store.path)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 2 and f"--out {target} is {kind}; only a regular file is written" in res.stderr
    good = tmp_path / "memo.html"
    res = subprocess.run([sys.executable, "-m", "engine", "report", "--scenario", "standard", "--format", "html",
                          "--out", str(good), "--db", str(store.path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and good.read_bytes().startswith(b"<!")


def test_a_sqlite_file_given_as_db_is_refused_saying_what_it_is_and_nothing_is_downloaded(tmp_path, cli_env):
    import hashlib
    import sqlite3

    db = tmp_path / "other.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (["summary"], ["recommend", "--scenario", "standard"],
                 ["run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en"]):
        res = cli(*args, "--db", str(db), env=cli_env)
        assert res.returncode == 2, (args, res.stderr)
        assert f"{db} is a SQLite database, not a ModelPick results file" in res.stderr
        assert "extension" not in res.stderr.lower() and "download" not in res.stderr.lower()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_every_connection_has_extension_auto_install_and_load_off(tmp_path):
    from engine.store import connect

    con = connect(tmp_path / "x.duckdb")
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                "('autoinstall_known_extensions', 'autoload_known_extensions')").fetchall())
    con.close()
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


@pytest.mark.parametrize("spec", ["fake/echo\nfake/other", "fake/echo\x1b[31m", "fake/ec\u200eho"])
def test_a_model_spec_with_a_control_character_is_refused_and_nothing_stored(spec, cli_env, tmp_path):
    db = tmp_path / "r.duckdb"
    out = cli("run", "--scenario", "standard", "--model", spec, "--db", str(db), env=cli_env)
    assert out.returncode == 2 and "contains a control character (U+" in out.stderr
    assert not db.exists() or Store(str(db), read_only=True).list_runs().empty


@pytest.mark.parametrize("spec", ["openai/m@user:s3cret-pw@gpu:8000", "openai/m@http://user:s3cret-pw@127.0.0.1:1/v1",
                                  "ollama/llama3@bob:s3cret-pw@host:11434"])
def test_credentials_in_a_model_url_are_never_printed_back_not_even_in_the_suggestion(spec, cli_env, tmp_path):
    out = cli("run", "--scenario", "standard", "--model", spec, "--db", str(tmp_path / "r.duckdb"), env=cli_env)
    assert out.returncode == 2
    assert "s3cret-pw" not in out.stderr + out.stdout and "***" in out.stderr
    assert "api_key_env" in out.stderr


@pytest.mark.parametrize("what, body", [
    ("a string", struct.pack("<QQ", 0, 1) + struct.pack("<Q", 4) + b"name" + struct.pack("<I", 8)
     + struct.pack("<Q", 2**60)),
    ("a key", struct.pack("<QQ", 0, 1) + struct.pack("<Q", 2**60)),
    ("a key/value count", struct.pack("<QQ", 0, 2**62)),
    ("an array", struct.pack("<QQ", 0, 1) + struct.pack("<Q", 4) + b"list" + struct.pack("<IIQ", 9, 4, 2**59)),
])
def test_a_gguf_header_that_claims_more_than_the_file_holds_is_named(what, body, tmp_path):
    """A header claiming a string of 2^60 bytes used to fail with an empty reason (a MemoryError)."""
    from engine.backends.gguf_meta import GGUFError, trained_context

    bad = tmp_path / "huge.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 3) + body + b"\0" * 32)
    with pytest.raises(GGUFError) as err:
        trained_context(bad)
    assert f"malformed header: {what} of " in str(err.value) and "past the end of the file" in str(err.value)
    with pytest.raises(BackendError, match=f"could not read .*huge.gguf: malformed header: {what}"):
        resolve(f"llamacpp/{bad}").trained_context()


def test_a_link_in_the_user_scenarios_folder_is_not_followed_and_a_broken_file_does_not_hide_the_others(
        cli_env, tmp_path):
    mine, outside = tmp_path / "mine", tmp_path / "outside"
    mine.mkdir()
    outside.mkdir()
    (outside / "secret.yaml").write_text((ROOT / "scenarios" / "standard.yaml").read_text(encoding="utf-8")
                                         .replace("id: standard", "id: secret", 1), encoding="utf-8")
    (mine / "secret.yaml").symlink_to(outside / "secret.yaml")
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * 10) + "]")
    (mine / "bomb.yaml").write_text("\n".join(lines) + "\nid: bomb\n", encoding="utf-8")
    env = {**cli_env, "MODELPICK_USER_SCENARIOS_DIR": str(mine)}
    out = cli("list", "scenarios", env=env)
    assert "customer-service\t" in out.stdout and "standard\t" in out.stdout  # the others are listed
    assert "secret\t" not in out.stdout and "secret.yaml is a symbolic link" in out.stderr
    assert "bomb.yaml" in out.stderr and "aliases expand this document" in out.stderr
    run = cli("run", "--scenario", "secret", "--model", "fake/echo", "--db", str(tmp_path / "r.duckdb"), env=env)
    assert run.returncode == 2 and "symbolic link" in run.stderr


@pytest.mark.parametrize("after_s", [0.2, 0.6, 1.5])
def test_two_ctrl_c_at_any_moment_end_the_command_line_without_a_traceback(after_s, cli_env, tmp_path):
    """While Python is still importing the command line, or while it waits for a database another
    process holds: two Ctrl-C half a second apart end it with a line, never a traceback."""
    import signal
    import subprocess
    import sys

    db = tmp_path / "held.duckdb"
    cli("run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en", "--db", str(db),
        env=cli_env)
    holder = hold_file(db, 60)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--scenario", "standard", "--model",
                                 "fake/echo", "--case", "knowledge-en", "--db", str(db)], cwd=ROOT, env=cli_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(after_s)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        holder.kill()
    assert "Traceback" not in err, err
    # -2: the signal came before Python took SIGINT over (it ends the interpreter silently)
    assert proc.returncode == -2 or (proc.returncode in (2, 130) and "interrupted" in err), (proc.returncode, err)
