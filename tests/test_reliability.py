"""Runs that survive faults and signals, resume, and bad input that never gives a
traceback: each class of fault from the command line or the runner, as a user meets it."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from engine.runner import RunConfig, Runner
from engine.scenarios import load_scenario
from engine.store import Store, StoreError
from tests.conftest import ROOT, hold_file, host_load
from tests.fakeservers import FakeServer, OpenAIHandler, SilentServer
from tests.test_cli import cli

CASES = ["knowledge-en", "knowledge-zh", "coding-en", "coding-zh"]


def popen(*args, env):
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(db, sql="SELECT count(*) FROM generations", wait_s=10):
    """A query on a file a running process may be writing: retried while it holds the lock."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with duckdb.connect(str(db), read_only=True) as con:
                return con.execute(sql).fetchall()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_rows(db, n, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if rows(db, wait_s=0)[0][0] >= n:
                return
        except duckdb.Error:
            pass
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} generations after {timeout_s} s")


# --- nothing measured is lost ----------------------------------------------------------
@pytest.mark.slow
def test_a_reader_holding_the_database_loses_no_finished_generation(store, tmp_path):
    holder = None

    def on_progress(p):
        nonlocal holder
        if p.done == 1 and holder is None:  # another program opens the file and keeps it 6 s
            holder = hold_file(store.path, 6)

    config = RunConfig(load_scenario("standard"), ["fake/slow"], case_ids=CASES, repeats=2)
    run_id = Runner(store, on_progress=on_progress).run(config)
    holder.wait(timeout=30)
    g = store.generations(run_id)
    assert len(g) == 8 and g.ok.all()  # every generation written, none twice
    assert store.get_run(run_id)["status"] == "done"
    assert not store.journal_path(run_id).exists()


def test_a_journal_left_by_a_stopped_run_is_written_when_the_file_is_next_opened(store, tmp_path):
    run_id = store.create_run("standard", {}, {}, 1)
    row = {"run_id": run_id, "model_spec": "fake/echo", "case_id": "c1", "repeat": 0, "turn": 0, "ok": True,
           "started_at": __import__("datetime").datetime(2026, 1, 1)}
    store.journal(run_id, row, [])
    store.journal(run_id, row, [])  # the same generation twice (a crash between write and delete)
    again = Store(store.path)
    assert len(again.generations(run_id)) == 1 and not again.journal_path(run_id).exists()


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"\x00garbage" * 500), "not a readable DuckDB results file"),
    (lambda p: duckdb.connect(str(p)).execute("CREATE TABLE generations (x INT)").close(),
     "not a ModelPick results file"),
])
@pytest.mark.slow
def test_foreign_and_corrupt_files_are_refused_and_left_unchanged(cli_env, tmp_path, make, message):
    db = tmp_path / "theirs.duckdb"
    make(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (["summary"], ["recommend", "--scenario", "standard"],
                 ["run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en"]):
        res = cli(*args, "--db", str(db), env=cli_env)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_truncated_results_file_is_a_clear_error(cli_env, tmp_path):
    db = tmp_path / "cut.duckdb"
    res = cli("run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en", "--db", str(db),
              env=cli_env)
    assert res.returncode == 0
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    res = cli("summary", "--db", str(db), env=cli_env)
    assert res.returncode == 2 and str(db) in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_reading_commands_create_nothing_and_change_nothing(cli_env, tmp_path):
    for args in (["summary"], ["recommend", "--scenario", "standard"],
                 ["report", "--scenario", "standard", "--format", "md", "--out", str(tmp_path / "r.md")]):
        res = cli(*args, "--db", str(tmp_path / "typo.duckdb"), env=cli_env)
        assert res.returncode == 2 and "no results database" in res.stderr
    assert not list(tmp_path.glob("typo*"))
    db = tmp_path / "r.duckdb"
    assert cli("run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en", "--db", str(db),
               env=cli_env).returncode == 0
    os.chmod(db, 0o444)
    before = (db.stat().st_mtime_ns, hashlib.sha256(db.read_bytes()).hexdigest())
    assert cli("summary", "--db", str(db), env=cli_env).returncode == 0
    assert (db.stat().st_mtime_ns, hashlib.sha256(db.read_bytes()).hexdigest()) == before
    # a bad model spec never creates the file the run was to write
    res = cli("run", "--scenario", "standard", "--model", "nope/x", "--db", str(tmp_path / "new.duckdb"),
              env=cli_env)
    assert res.returncode == 2 and not (tmp_path / "new.duckdb").exists()


# --- runs that tell the truth about their state ----------------------------------------
@pytest.mark.slow
def test_kill_9_leaves_no_run_running_and_resume_finishes_it(cli_env, tmp_path):
    db = tmp_path / "k.duckdb"
    proc = popen("run", "--scenario", "standard", "--model", "fake/slow", "--case", "knowledge-en",
                 "--case", "coding-en", "--repeats", "3", "--db", str(db), "--quiet", env=cli_env)
    wait_rows(db, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert rows(db, "SELECT status FROM runs")[0][0] == "running"  # nobody could say otherwise
    res = cli("summary", "--db", str(db), "--json", env=cli_env)
    assert json.loads(res.stdout)["status"] == "interrupted"  # the reader sees the truth, writes nothing
    run_id = rows(db, "SELECT run_id FROM runs")[0][0]
    res = cli("resume", run_id, "--db", str(db), env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "marked interrupted" in res.stderr and res.stdout.strip() == run_id
    status, error = rows(db, "SELECT status, error FROM runs")[0]
    assert status == "done" and error is None
    cells = rows(db, "SELECT model_spec, case_id, repeat, turn, count(*) FROM generations GROUP BY ALL")
    assert len(cells) == 6 and all(c[-1] == 1 for c in cells)  # every cell once, nothing duplicated


def test_a_cancelled_run_resumes_in_the_same_run_without_duplicates(store):
    from threading import Event

    cancel = Event()

    def on_progress(p):
        if p.done == 3:
            cancel.set()

    config = RunConfig(load_scenario("standard"), ["fake/echo", "fake/mirror"], case_ids=CASES)
    run_id = Runner(store, on_progress=on_progress, cancel=cancel).run(config)
    assert store.get_run(run_id)["status"] == "interrupted"
    assert len(store.generations(run_id)) < 8
    assert Runner(store).resume(run_id) == run_id
    g = store.generations(run_id)
    assert store.get_run(run_id)["status"] == "done" and len(g) == 8 and g.ok.all()
    assert not g.error.fillna("").str.contains("cancelled").any()
    assert (g.groupby("model_spec").load_ms.count() == 1).all()  # load timed once per model
    assert json.loads(store.get_run(run_id)["config_json"])["schedule"]["mode"] == "interleaved"


def test_run_id_of_an_existing_run_points_to_resume(cli_env, tmp_path):
    db = tmp_path / "x.duckdb"
    args = ["run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en", "--db", str(db)]
    run_id = cli(*args, env=cli_env).stdout.strip()
    res = cli(*args, "--run-id", run_id, env=cli_env)
    assert res.returncode == 2 and f"python -m engine resume {run_id}" in res.stderr
    assert "Traceback" not in res.stderr
    res = cli("resume", "no-such-run", "--db", str(db), env=cli_env)
    assert res.returncode == 2 and "no run 'no-such-run'" in res.stderr


def test_sigterm_stops_a_run_waiting_on_a_server_that_never_answers(cli_env, tmp_path):
    db = tmp_path / "s.duckdb"
    with SilentServer() as silent:
        proc = popen("run", "--scenario", "standard", "--model", f"openai/x@{silent.url}/v1",
                     "--case", "knowledge-en", "--db", str(db), env=cli_env)
        deadline = time.monotonic() + 30
        while not silent.conns and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        stopped_s = time.monotonic() - t0
    assert stopped_s < 3, f"took {stopped_s:.1f} s to stop"
    assert proc.returncode == 0
    assert rows(db, "SELECT status FROM runs")[0][0] == "interrupted"


def test_a_dead_server_costs_one_timeout_not_one_per_case(cli_env, tmp_path):
    db = tmp_path / "t.duckdb"
    with SilentServer() as silent:
        t0 = time.monotonic()
        res = cli("run", "--scenario", "standard", "--model", f"openai/x@{silent.url}/v1", "--timeout", "1",
                  "--db", str(db), env=cli_env)
        took = time.monotonic() - t0
    assert res.returncode == 0 and took < 20
    errors = {e for (e,) in rows(db, "SELECT error FROM generations")}
    assert len(errors) == 1 and "timeout" in errors.pop()
    assert res.stderr.count("could not be loaded") == 1  # the reason said once, not per case


@pytest.mark.slow
def test_first_token_timeout_ends_a_stalled_stream(store):
    with FakeServer(OpenAIHandler) as server:
        config = RunConfig(load_scenario("standard"), [f"openai/fault-stall@{server.url}/v1"],
                           case_ids=["knowledge-en"], warmup=False, first_token_timeout_s=5,
                           request_timeout_s=1.5)
        t0 = time.monotonic()
        run_id = Runner(store).run(config)
        assert time.monotonic() - t0 < 6
    g = store.generations(run_id).iloc[0]
    assert not g.ok and "timeout: the answer took longer than 1.5 s" in g.error
    assert g.output_text == "Newton's first"  # what arrived is kept


def test_a_model_that_fails_to_load_says_why_once(cli_env, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    res = cli("run", "--scenario", "standard", "--model", f"llamacpp/{bad}", "--case", "knowledge-en",
              "--case", "coding-en", "--db", str(tmp_path / "b.duckdb"), env=cli_env)
    assert res.returncode == 0
    assert res.stderr.count("could not be loaded") == 1 and "broken.gguf" in res.stderr


# --- bad input gets a clear, located message ---------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--max-tokens", "0"], "argument --max-tokens: must be at least 1, got 0"),
    (["--max-tokens", "-3"], "argument --max-tokens: must be at least 1, got -3"),
    (["--temperature", "-0.5"], "argument --temperature: must be at least 0, got -0.5"),
    (["--threads", "0"], "argument --threads: must be at least 1"),
    (["--threads", "-2"], "argument --threads: must be at least 1"),
    (["--n-ctx", "5"], "--n-ctx 5 is smaller than the scenario's shortest prompt"),
    (["--repeats", "0"], "argument --repeats: must be at least 1"),
    (["--timeout", "0"], "argument --timeout: must be at least 0.001"),
    # past what the engine takes (llama.cpp crashed at --threads 100000), or not finite
    (["--threads", "100000"], "argument --threads: must be at most 1024, got 100000"),
    (["--repeats", "3000000000"], "argument --repeats: must be at most 1000"),
    (["--temperature", "inf"], "argument --temperature: must be a finite number, got inf"),
    (["--temperature", "nan"], "argument --temperature: must be a finite number"),
    (["--seed", "1e23"], "argument --seed: must be a whole number, got '1e23'"),
    (["--seed", "99999999999"], "argument --seed: must be at most 4294967295"),
    (["--max-tokens", "1e309"], "argument --max-tokens: must be a whole number"),
])
def test_values_the_run_cannot_honour_are_refused_before_anything_runs(cli_env, tmp_path, args, message):
    db = tmp_path / "v.duckdb"
    res = cli("run", "--scenario", "standard", "--model", "fake/echo", "--db", str(db), *args, env=cli_env)
    assert res.returncode == 2 and message in res.stderr and not db.exists()


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not UTF-8 text (byte 0x89 at offset 0)"),
    ("id: caf\u00e9\nname: x\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 7)"),
])
def test_scenario_files_that_are_not_utf8_name_the_file(cli_env, tmp_path, content, message):
    path = tmp_path / "mine.yaml"
    path.write_bytes(content)
    res = cli("run", "--scenario", str(path), "--model", "fake/echo", "--db", str(tmp_path / "s.duckdb"), env=cli_env)
    assert res.returncode == 2 and str(path) in res.stderr and message in res.stderr


def test_an_oversized_scenario_file_is_refused_at_once(cli_env, tmp_path):
    path = tmp_path / "huge.yaml"
    case = "  - {id: c%d, category: k, prompt: 'What is %d?'}\n"
    path.write_text("id: huge\nname: h\ndescription: d\nweights: {quality: 1}\ncases:\n"
                    + "".join(case % (i, i) for i in range(160_000)), encoding="utf-8")
    t0 = time.monotonic()
    res = cli("run", "--scenario", str(path), "--model", "fake/echo", "--db", str(tmp_path / "h.duckdb"), env=cli_env)
    assert res.returncode == 2 and "over the limit of 5 MiB" in res.stderr and time.monotonic() - t0 < 10


@pytest.mark.parametrize("spec, fixed", [
    ("openai/x@not-a-url", "openai/x@http://localhost:8000/v1"),
    ("openai/gpt-oss-20b@gpu-a:8000", "openai/gpt-oss-20b@http://gpu-a:8000/v1"),
    ("ollama/llama3:8b@gpu-b:11434", "ollama/llama3:8b@http://gpu-b:11434"),
])
def test_a_host_that_is_not_a_url_gets_a_corrected_spec(cli_env, tmp_path, spec, fixed):
    res = cli("run", "--scenario", "standard", "--model", spec, "--db", str(tmp_path / "u.duckdb"), env=cli_env)
    assert res.returncode == 2 and fixed in res.stderr
    assert "@not-a-url@" not in res.stderr and "@gpu-a:8000@" not in res.stderr


# --- secrets ------------------------------------------------------------------------------
def test_a_key_echoed_by_a_server_is_never_stored(cli_env, tmp_path):
    db = tmp_path / "k.duckdb"
    env = dict(cli_env, OPENAI_API_KEY="sk-test-0123456789abcdef")
    with FakeServer(OpenAIHandler) as server:
        res = cli("run", "--scenario", "standard", "--model", f"openai/fault-401-echo@{server.url}/v1",
                  "--case", "knowledge-en", "--db", str(db), env=env)
        assert server.httpd.auth and all(a == "Bearer sk-test-0123456789abcdef" for a in server.httpd.auth)
    assert res.returncode == 0
    stored = json.dumps(rows(db, "SELECT * FROM generations") + rows(db, "SELECT * FROM runs"), default=str)
    assert "sk-test-0123456789abcdef" not in stored and "0123456789abcdef" not in res.stderr
    assert "[redacted]" in stored


# --- every page renders any valid scenario ---------------------------------------------------
@pytest.mark.slow
def test_compare_and_recommend_render_a_custom_scenario_without_known_categories_or_lang(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    path = tmp_path / "ours.yaml"
    path.write_text("id: ours\nname: Ours\ndescription: d\nweights: {quality: 1}\ncases:\n"
                    "  - {id: a, category: billing, prompt: 'Refund?', checks: [{type: contains, value: [refund]}]}\n"
                    "  - {id: b, category: tone, prompt: 'Hello?'}\n", encoding="utf-8")
    store = Store()
    Runner(store).run(RunConfig(load_scenario(str(path)), ["fake/echo", "fake/mirror"]))
    for page in ("pages/compare.py", "pages/recommend.py", "pages/home.py"):
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
        at.run()
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)


def test_store_errors_name_the_file(tmp_path):
    with pytest.raises(StoreError, match="no results database at .*missing.duckdb"):
        Store(tmp_path / "missing.duckdb", read_only=True)


@pytest.mark.slow
def test_the_dashboard_watching_a_command_line_run_leaves_it_running(cli_env, tmp_path):
    from engine import worker

    db = tmp_path / "w.duckdb"
    proc = popen("run", "--scenario", "standard", "--model", "fake/slow", *sum((["--case", c] for c in CASES), []),
                 "--db", str(db), "--quiet", env=cli_env)
    wait_rows(db, 1)
    run_id = rows(db, "SELECT run_id FROM runs")[0][0]
    # no live file and no child of this process: the owner recorded in the run tells it lives
    assert worker.run_status(Store(db), run_id).status == "running"
    assert proc.wait(timeout=60) == 0
    assert worker.run_status(Store(db), run_id).status == "done"


def test_a_full_disk_is_a_clear_message_and_the_run_is_marked(cli_env, tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    # room for the database and the 1 MiB the runner sets aside, not for a whole run
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3000k", "tmpfs", str(mount)], capture_output=True)
    if res.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to mount a small tmpfs to test a full disk: {res.stderr!r}")
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {res.stderr.decode().strip()}")
    try:
        db = mount / "r.duckdb"
        res = cli("run", "--scenario", "standard", "--model", "fake/echo", "--db", str(db), "--quiet", env=cli_env)
        assert res.returncode == 2 and "the disk is full" in res.stderr and "Traceback" not in res.stderr
        assert rows(db, "SELECT status FROM runs")[0][0] == "failed"  # the space set aside made room for it
        assert not list((mount / "r.duckdb.runs").glob("*.reserve"))
    finally:
        subprocess.run(["umount", str(mount)])


def test_busy_is_the_median_of_the_samples_beyond_the_threshold():
    from engine.hostinfo import BUSY_OTHERS_PCT, load_summary

    quiet = load_summary([2.0, 90.0, 3.0], [0.4])  # one spike is not a busy host
    assert not quiet["busy"] and quiet["others_cpu_pct_max"] == 90.0 and quiet["others_cpu_pct_median"] == 3.0
    busy = load_summary([BUSY_OTHERS_PCT + 1, 80.0, 5.0], [])
    assert busy["busy"] and busy["load_avg_1m_max"] is None
    assert load_summary([], [])["busy"] is False and load_summary([], [])["samples"] == 0


@pytest.mark.slow
def test_a_run_on_a_busy_host_is_flagged_on_compare_and_in_the_decision(store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from engine.recommend import recommend

    host_load(monkeypatch, 74.0)
    config = RunConfig(load_scenario("standard"), ["fake/slow", "fake/mirror"], case_ids=CASES, repeats=2)
    run_id = Runner(store).run(config)
    load = json.loads(store.get_run(run_id)["host_json"])["load"]
    assert load["samples"] >= 2 and load["busy"] and load["others_cpu_pct_median"] == 74.0
    assert any("timings are not trustworthy" in c for c in recommend(store, "standard").caveats)
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
    at.run()
    at.switch_page("pages/compare.py").run()
    assert any("timings are not" in w.value for w in at.warning)


def test_a_run_on_a_quiet_host_is_not_flagged(store, monkeypatch):
    from engine.recommend import recommend

    host_load(monkeypatch, 3.0)
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/slow"], case_ids=CASES))
    load = json.loads(store.get_run(run_id)["host_json"])["load"]
    assert load["samples"] >= 1 and not load["busy"] and load["others_cpu_pct_median"] == 3.0
    assert not any("timings are not trustworthy" in c for c in recommend(store, "standard").caveats)


def test_a_killed_run_whose_process_is_a_zombie_is_dead_and_can_be_resumed(store):
    import psutil

    from engine import worker
    from engine.store import stale_reason

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_id = store.create_run("standard", {"models": ["fake/echo"]}, {"gpus": []}, 0)
        with store.connect() as con:
            con.execute("UPDATE runs SET owner_pid = ? WHERE run_id = ?", [child.pid, run_id])
        assert stale_reason(store.get_run(run_id)) is None  # alive: still running
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(100):  # killed and not reaped: a zombie until wait() below
            if psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.02)
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
        assert stale_reason(store.get_run(run_id)) == f"the process that ran it (pid {child.pid}) is gone"
        assert not worker._alive(child.pid, "not-started-here")
    finally:
        child.kill()
        child.wait()
