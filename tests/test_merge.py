"""Merging another ModelPick results file: idempotent by id, the source never changed, a file
of another schema or program refused with a clear message."""
import hashlib

import duckdb
import pytest

from engine import RunConfig, Runner, Store, load_scenario, ratings
from engine.merge import merge
from engine.store import StoreError, release
from tests.test_cli import cli


def _run(store: Store, model: str, cases=("knowledge-en", "coding-en")) -> str:
    return Runner(store).run(RunConfig(load_scenario("standard"), [model], case_ids=list(cases)))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_overlapping_and_new_runs_merge_once(tmp_path):
    import shutil

    mine = Store(tmp_path / "mine.duckdb")
    shared = _run(mine, "fake/echo")
    shutil.copy(mine.path, tmp_path / "colleague.duckdb")  # the colleague started from my file
    theirs = Store(tmp_path / "colleague.duckdb")
    new = _run(theirs, "fake/mirror")
    ratings.add_stars(theirs, new, "fake/mirror", "knowledge-en", 0, 0, "overall", 4, "Mei")
    pair = {"scenario_id": "standard", "case_id": "knowledge-en", "turn": 0,
            "left": {"run_id": shared, "model_spec": "fake/echo"},
            "right": {"run_id": new, "model_spec": "fake/mirror"}}
    ratings.add_vote(theirs, pair, "right", "Mei")
    before = _digest(tmp_path / "colleague.duckdb")

    added = merge(mine, tmp_path / "colleague.duckdb")
    assert added["runs"] == 1 and added["generations"] == 2 and added["ratings"] == 1 and added["ab_votes"] == 1
    assert added["check_results"] == len(theirs.check_results(new)) > 0
    runs = mine.query("SELECT run_id FROM runs ORDER BY run_id").run_id.tolist()
    assert runs == sorted([shared, new])
    assert _digest(tmp_path / "colleague.duckdb") == before  # the source is only read

    again = merge(mine, tmp_path / "colleague.duckdb")  # the same file twice: nothing new
    assert set(again.values()) == {0}
    assert len(mine.query("SELECT * FROM generations")) == 4


def test_sweeps_and_decisions_merge_by_id(tmp_path):
    from engine.recommend import recommend, save_decision
    from engine.sweep import SweepConfig, run_sweep
    from tests.fakeservers import FakeServer, OpenAIHandler

    other = Store(tmp_path / "box.duckdb")
    _run(other, "fake/echo")
    _run(other, "fake/flaky")
    with FakeServer(OpenAIHandler) as srv:
        run_sweep(other, SweepConfig(f"openai/echo@{srv.url}/v1", load_scenario("standard"), [1, 2], requests=2))
    save_decision(other, recommend(other, "standard", n_boot=50), "from the box")
    mine = Store(tmp_path / "mine.duckdb")
    added = merge(mine, other.path)
    assert added["sweeps"] == 1 and added["sweep_levels"] == 2 and added["sweep_requests"] == 4
    assert added["decisions"] == 1
    assert set(merge(mine, other.path).values()) == {0}


def test_a_foreign_file_another_schema_and_itself_are_refused(tmp_path):
    mine = Store(tmp_path / "mine.duckdb")
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="is not a ModelPick results file"):
        merge(mine, foreign)
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database")
    with pytest.raises(StoreError, match="not a DuckDB file"):
        merge(mine, text)
    older = tmp_path / "older.duckdb"
    Store(older)
    release(older)  # edited below by another connection, as another program would
    with duckdb.connect(str(older)) as con:
        con.execute("DELETE FROM migrations WHERE name = '010_prompt_cache'")
    digest = _digest(older)
    with pytest.raises(StoreError, match="older ModelPick .*lacks 010_prompt_cache"):
        merge(mine, older)
    assert _digest(older) == digest
    newer = tmp_path / "newer.duckdb"
    Store(newer)
    release(newer)
    with duckdb.connect(str(newer)) as con:
        con.execute("INSERT INTO migrations VALUES (99, '099_future', now())")
    with pytest.raises(StoreError, match="newer ModelPick"):
        merge(mine, newer)
    with pytest.raises(StoreError, match="the database being merged into"):
        merge(mine, mine.path)
    with pytest.raises(StoreError, match="no such file"):
        merge(mine, tmp_path / "missing.duckdb")


def test_the_merge_command(cli_env, tmp_path):
    other = Store(tmp_path / "other.duckdb")
    _run(other, "fake/echo")
    res = cli("merge", str(tmp_path / "other.duckdb"), "--db", str(tmp_path / "mine.duckdb"), env=cli_env)
    assert res.returncode == 0 and "merged" in res.stdout and "1 runs" in res.stdout, res.stderr
    res = cli("merge", str(tmp_path / "other.duckdb"), "--db", str(tmp_path / "mine.duckdb"), env=cli_env)
    assert res.returncode == 0 and "nothing new" in res.stdout
    res = cli("merge", str(tmp_path / "nope.duckdb"), "--db", str(tmp_path / "mine.duckdb"), env=cli_env)
    assert res.returncode == 2 and "no such file" in res.stderr
