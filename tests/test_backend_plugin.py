"""A backend of one's own, added without changing a file of ModelPick: a throwaway module that
registers `toy/`, named in $MODELPICK_BACKENDS, runs on the command line, in a load sweep, in the
cost table of a recommendation and from the Run page (whose run is a worker process)."""
import json
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from engine import Store, worker
from engine.backends import BackendError, resolve
from tests.conftest import ROOT

TOY = textwrap.dedent('''
    """A throwaway backend: a fixed answer of its own, streamed word by word, in process."""
    import asyncio
    import contextlib

    from engine.backends import register_backend
    from engine.backends.base import Backend, EngineReport

    ANSWER = "Paris is the capital of France, and water boils at 100 degrees Celsius."


    class ToyBackend(Backend):
        streams_async = True

        def __init__(self, spec, **_options):
            self.model = spec.model

        def stream(self, messages, params):
            words = ANSWER.split()[: params.max_tokens]
            for w in words:
                yield w + " "
            yield EngineReport(prompt_tokens=len(messages[-1]["content"].split()), output_tokens=len(words),
                               finish_reason="stop")

        def async_client(self, max_connections):
            return contextlib.nullcontext()

        async def astream(self, messages, params, client=None):
            for chunk in self.stream(messages, params):
                await asyncio.sleep(0)
                yield chunk


    register_backend("toy", ToyBackend)
''')


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_backend.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MODELPICK_BACKENDS", "toy_backend")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{ROOT}")  # the worker processes find it too
    import os

    return dict(os.environ)


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_registered_module_runs_sweeps_and_is_costed_from_the_command_line(toy, tmp_path):
    db = str(tmp_path / "toy.duckdb")
    res = cli("run", "--scenario", "standard", "--model", "toy/a", "--model", "toy/b", "--case", "knowledge-en",
              "--case", "coding-en", "--repeats", "2", "--db", db, env=toy)
    assert res.returncode == 0, res.stderr
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute("SELECT model_spec, ok, output_tokens FROM generations").fetchall()
    assert len(rows) == 8 and all(ok and n > 0 for _, ok, n in rows)
    sweep = cli("sweep", "--model", "toy/a", "--scenario", "standard", "--concurrency", "1,2", "--requests", "4",
                "--db", db, env=toy)
    assert sweep.returncode == 0, sweep.stderr
    with duckdb.connect(db, read_only=True) as con:
        levels = con.execute("SELECT concurrency, ok_requests FROM sweep_levels ORDER BY concurrency").fetchall()
    assert levels == [(1, 4), (2, 4)]
    rec = cli("recommend", "--scenario", "standard", "--db", db, "--json", "--gpu", "L4", env=toy)
    assert rec.returncode == 0, rec.stderr
    cost = {row["model_spec"]: row for row in json.loads(rec.stdout)["cost"]}
    assert set(cost) == {"toy/a", "toy/b"}
    # priced on the chosen GPU; its capacity there was not measured, and the row says so rather than guess
    assert all(r["gpu"] == "L4" and r["price_per_hour"] > 0 and r["session_cost"] > 0 for r in cost.values())
    assert all(r["cost_per_1k_requests"] is None and "capacity unknown" in r["notes"] for r in cost.values())
    from engine.catalog import model_identity

    assert model_identity("toy/a") == {"spec": "toy/a", "server_model_id": "a", "host": "local"}


def test_the_run_page_starts_a_run_of_the_new_backend(toy):
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
    at.run()
    at.switch_page("pages/run.py").run()
    at.multiselect(key="bundled").set_value([]).run()
    at.text_area(key="extra_specs").set_value("toy/a").run()
    at.multiselect(key="cases-standard").set_value(["knowledge-en"]).run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.error, [e.value for e in at.error]
    run_id = at.session_state.active_run
    deadline = time.monotonic() + 60
    while not (status := worker.run_status(Store(), run_id)).finished and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.status == "done" and status.done == status.total == 1, (status, worker.log_tail(Store().path, run_id))


def test_a_module_that_cannot_be_imported_is_named(monkeypatch):
    monkeypatch.setenv("MODELPICK_BACKENDS", "no_such_backend_module")
    with pytest.raises(BackendError, match="backend module 'no_such_backend_module'"):
        resolve("mystery/x")
