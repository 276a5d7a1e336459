"""The dashboard on a rented GPU box or a shared machine: loopback by default, a password
before anything else when served wider, scenario files confined to their folder, no
requests to cloud metadata addresses, error text capped and redacted."""
import os
import subprocess
import sys
import time

import psutil
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine.backends import BackendError, resolve
from engine.scenarios import ScenarioError, parse_scenario
from engine.store import MAX_ERROR_CHARS
from tests.conftest import ROOT, free_port
from tests.test_cli import cli


@pytest.fixture(autouse=True)
def _fresh():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_the_dashboard_listens_on_loopback_only_by_default(tmp_path):
    port = free_port()
    env = dict(os.environ, MODELPICK_DB=str(tmp_path / "s.duckdb"))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        listening = []
        while time.monotonic() < deadline and not listening:
            listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                         if c.status == psutil.CONN_LISTEN]
            time.sleep(0.2)
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_make_run_on_another_address_without_a_password_is_refused():
    env = {k: v for k, v in os.environ.items() if k != "MODELPICK_PASSWORD"}
    res = subprocess.run(["make", "-s", "run", "HOST=0.0.0.0", "PORT=1"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode != 0 and "refusing to serve on 0.0.0.0 without a password" in res.stdout


def _app(monkeypatch, password=None):
    if password:
        monkeypatch.setenv("MODELPICK_PASSWORD", password)
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
    at.run()
    return at


def test_with_a_password_a_page_shows_only_the_login_until_it_is_given(monkeypatch):
    at = _app(monkeypatch, "correct horse")
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Password"]
    assert not at.sidebar.radio and not at.dataframe and not at.metric  # no navigation, no data
    other = _app(monkeypatch, "correct horse")
    other.switch_page("pages/compare.py").run()  # a bookmarked page is no way round it
    assert [t.label for t in other.text_input] == ["Password"] and not other.dataframe and not other.radio
    at.text_input[0].set_value("wrong horse")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password."
    at.text_input[0].set_value("correct horse")
    at.button[0].click().run()
    assert not at.exception and "No runs yet" in "\n".join(i.value for i in at.info)


def test_served_wider_without_a_password_the_app_shows_nothing(monkeypatch):
    monkeypatch.delenv("MODELPICK_PASSWORD", raising=False)
    st.config.set_option("server.address", "0.0.0.0")
    try:
        at = _app(monkeypatch)
        assert "served on 0.0.0.0 without a password" in at.error[0].value
        assert not at.button and not at.dataframe
    finally:
        st.config.set_option("server.address", "127.0.0.1")


@pytest.mark.parametrize("name, message", [
    ("../../../../etc/passwd", "leads outside the scenario's folder"),
    ("/etc/passwd", "is an absolute path"),
    ("~/.ssh/id_rsa", "is an absolute path"),
    ("link.md", "is a symbolic link, which is not followed"),
])
def test_scenario_files_cannot_read_outside_their_folder(tmp_path, name, message):
    (tmp_path / "link.md").symlink_to("/etc/passwd")
    text = ("id: x\nname: x\ndescription: d\nweights: {quality: 1}\n"
            f"cases: [{{id: leak, category: k, prompt: 'say {{context}}', context_file: '{name}'}}]\n")
    with pytest.raises(ScenarioError, match=message) as err:
        parse_scenario(text, "mine.yaml", base_dir=tmp_path)
    assert "mine.yaml: case 'leak': field context_file" in str(err.value)
    needle = text.replace(f"context_file: '{name}'", f"needle: {{fact: f, depth: 0.5, tokens: 200, filler_file: '{name}'}}")
    with pytest.raises(ScenarioError, match="field needle.filler_file"):
        parse_scenario(needle, "mine.yaml", base_dir=tmp_path)


def test_a_documents_folder_can_be_allowed_explicitly(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text("Leave is 25 days.", encoding="utf-8")
    scen = tmp_path / "scen"
    scen.mkdir()
    text = ("id: x\nname: x\ndescription: d\nweights: {quality: 1}\n"
            "cases: [{id: a, category: k, prompt: 'q {context}', context_file: ../docs/handbook.md}]\n")
    with pytest.raises(ScenarioError):
        parse_scenario(text, "x.yaml", base_dir=scen)
    monkeypatch.setenv("MODELPICK_DOCS_DIR", str(docs))
    assert parse_scenario(text, "x.yaml", base_dir=scen).cases[0].context == "Leave is 25 days."


@pytest.mark.parametrize("spec", [
    "openai/x@http://169.254.169.254/v1", "openai/x@http://[fd00:ec2::254]/v1", "ollama/llama3@http://169.254.1.9:11434",
    "openai/x@http://metadata.google.internal/v1", "openai/x@http://100.100.100.200/v1",
])
def test_metadata_and_link_local_addresses_are_refused(spec, cli_env, tmp_path, monkeypatch):
    with pytest.raises(BackendError, match="refused"):
        resolve(spec)
    res = cli("run", "--scenario", "standard", "--model", spec, "--db", str(tmp_path / "m.duckdb"), env=cli_env)
    assert res.returncode == 2 and "refused" in res.stderr and not (tmp_path / "m.duckdb").exists()
    monkeypatch.setenv("MODELPICK_ALLOW_INTERNAL_HOSTS", "1")
    resolve(spec)  # the documented switch lets it through


def test_the_run_page_refuses_a_metadata_address_before_starting():
    from engine import worker

    problems = worker.preflight(["openai/x@http://169.254.169.254/v1"])
    assert problems and "refused" in problems[0]


def test_error_text_from_a_server_is_capped_and_redacted(store, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "k-0123456789")
    run_id = store.create_run("standard", {}, {}, 1)
    store.add_generation({"run_id": run_id, "model_spec": "m", "case_id": "c", "repeat": 0, "turn": 0, "ok": False,
                          "error": "401 k-0123456789 " + "x" * 50_000,
                          "started_at": __import__("datetime").datetime(2026, 1, 1)}, [])
    error = store.generations(run_id).error[0]
    assert "k-0123456789" not in error and len(error) < MAX_ERROR_CHARS + 100 and error.endswith("characters cut]")


def test_prose_with_a_served_model_spec_sets_the_url_in_a_code_span():
    from engine.textsafe import prose_text

    out = prose_text("not measured for openai/m@http://127.0.0.1:9/v1, [x](y)")
    assert "`openai/m@http://127.0.0.1:9/v1`" in out and "\\[x\\](y)" in out
