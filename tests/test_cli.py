"""The command line as a user runs it: a subprocess, exit codes, messages, the database."""
import json
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import ROOT


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_run_with_a_failing_model_exits_zero_and_summary_reports_both(cli_env, tmp_path):
    db = tmp_path / "x.duckdb"
    # fake/judge-first answers in words of its own (one fixed sentence), which passes some checks;
    # fake/flaky echoes the question (an echo scores 0) and fails every second generation
    res = cli("run", "--scenario", "standard", "--model", "fake/judge-first", "--model", "fake/flaky",
              "--db", str(db), env=cli_env)
    assert res.returncode == 0, res.stderr
    run_id = res.stdout.strip()
    assert "FAILED" in res.stderr  # progress shows the flaky model's failures
    out = cli("summary", "--db", str(db), "--run", run_id, "--json", env=cli_env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["status"] == "done"
    models = {m["model_spec"]: m for m in summary["models"]}
    assert set(models) == {"fake/judge-first", "fake/flaky"}
    steady, flaky = models["fake/judge-first"], models["fake/flaky"]
    with duckdb.connect(str(db), read_only=True) as con:
        failed = con.execute("SELECT count(*) FROM generations WHERE model_spec = 'fake/flaky' AND NOT ok").fetchone()[0]
        details = {d for (d,) in con.execute("SELECT DISTINCT detail FROM check_results WHERE model_spec = 'fake/flaky'"
                                             ).fetchall()}
    assert failed > 0 and flaky["ok_generations"] == flaky["generations"] - failed
    assert steady["ok_generations"] == steady["generations"]
    # the flaky model's failures score 0 ("generation failed"), and so do its echoes: its quality is lower
    assert "generation failed" in details and any(d.startswith("degenerate: an echo") for d in details)
    assert flaky["quality"]["score"] == 0 < steady["quality"]["score"]
    q = steady["quality"]
    assert q["ci_low"] <= q["score"] <= q["ci_high"] and q["ci_high"] - q["ci_low"] > 0
    assert steady["ttft_ms_p95"] >= steady["ttft_ms_p50"] > 0
    assert set(steady["categories"]) == {"knowledge", "coding", "multi_turn", "instruction_following",
                                         "chinese_writing"}
    stars = steady["stars"]["knowledge"]
    assert stars["stars"] == 1 + 4 * stars["score"] and stars["ci_low"] <= stars["score"] <= stars["ci_high"]


def test_db_defaults_to_the_environment_variable(cli_env):
    res = cli("run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en",
              env=cli_env)
    assert res.returncode == 0, res.stderr
    with duckdb.connect(cli_env["MODELPICK_DB"], read_only=True) as con:
        assert con.execute("SELECT count(*) FROM generations").fetchone()[0] == 1


@pytest.mark.slow
def test_bad_input_exits_nonzero_and_writes_no_run(cli_env, tmp_path):
    db = tmp_path / "bad.duckdb"
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("id: broken\nname: [oops\n", encoding="utf-8")
    cases = [
        (["--scenario", "nope", "--model", "fake/echo"], "unknown scenario 'nope'"),
        (["--scenario", str(bad_yaml), "--model", "fake/echo"], "broken.yaml: YAML syntax error"),
        (["--scenario", "standard", "--model", "nope/x"], "unknown backend 'nope'"),
        (["--scenario", "standard", "--model", "fake/echo", "--model", "llamacpp/mystery"],
         "unknown model llamacpp/mystery"),
        (["--scenario", "standard", "--model", "llamacpp/missing.gguf"], "GGUF file not found"),
        (["--scenario", "standard", "--model", "fake/echo", "--case", "no-such-case"], "unknown case"),
        (["--scenario", "standard", "--model", "fake/echo", "--repeats", "0"], "repeats"),
    ]
    for args, message in cases:
        res = cli("run", *args, "--db", str(db), env=cli_env)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    if db.exists():
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_list_models_and_scenarios(cli_env):
    models = cli("list", "models", env=cli_env)
    assert models.returncode == 0
    for mid in ("smollm2-135m", "gemma3-270m", "gpt-oss-20b", "llama3-8b", "llama3-70b"):
        assert mid in models.stdout
    assert "llamacpp/smollm2-135m" in models.stdout
    scen = cli("list", "scenarios", env=cli_env)
    assert scen.returncode == 0 and "standard" in scen.stdout


def test_summary_of_a_missing_or_empty_database_is_a_clear_error_and_creates_nothing(cli_env, tmp_path):
    from engine.store import Store

    res = cli("summary", "--db", str(tmp_path / "typo.duckdb"), env=cli_env)
    assert res.returncode == 2 and "no results database at" in res.stderr
    assert not (tmp_path / "typo.duckdb").exists()  # a reading command creates no file
    Store(tmp_path / "empty.duckdb")
    res = cli("summary", "--db", str(tmp_path / "empty.duckdb"), env=cli_env)
    assert res.returncode == 2 and "no runs" in res.stderr


def test_sigterm_interrupts_the_run_cleanly(cli_env, tmp_path):
    db = tmp_path / "sig.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--scenario", "standard",
                             "--model", "fake/slow", "--repeats", "5", "--db", str(db)],
                            cwd=ROOT, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stderr.readline()  # the first generation has been committed
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        status, planned = con.execute("SELECT status, planned_generations FROM runs").fetchone()
        done = con.execute("SELECT count(*) FROM generations").fetchone()[0]
    assert status == "interrupted" and 1 <= done < planned


@pytest.mark.slow
def test_real_model_run_from_the_command_line(cli_env, tmp_path):
    db = tmp_path / "real.duckdb"
    res = cli("run", "--scenario", "standard", "--model", "llamacpp/smollm2-135m",
              "--case", "coding-en", "--case", "instruction-zh", "--max-tokens", "32",
              "--repeats", "2", "--n-ctx", "2048", "--db", str(db), env=cli_env)
    assert res.returncode == 0, res.stderr
    summary = json.loads(cli("summary", "--db", str(db), "--json", env=cli_env).stdout)
    m = summary["models"][0]
    assert m["model_spec"] == "llamacpp/smollm2-135m" and m["generations"] == 4
    assert m["decode_tok_per_s_p50"] > 1 and m["load_ms"] > 0


def test_a_run_configuration_round_trips_through_its_json_file(cli_env, tmp_path):
    db, conf = tmp_path / "c.duckdb", tmp_path / "run.json"
    printed = cli("run", "--scenario", "standard", "--model", "fake/echo", "--case", "knowledge-en",
                  "--repeats", "2", "--seed", "7", "--temperature", "0.3", "--max-context", "4096",
                  "--print-config", "--db", str(db), env=cli_env)
    assert printed.returncode == 0, printed.stderr
    assert not db.exists()  # printing the configuration runs nothing
    conf.write_text(printed.stdout)
    d = json.loads(printed.stdout)
    assert d["models"] == ["fake/echo"] and d["case_ids"] == ["knowledge-en"] and d["repeats"] == 2
    assert d["seed"] == 7 and d["temperature"] == 0.3 and d["backend_options"]["max_context"] == 4096
    again = cli("run", "--config", str(conf), "--print-config", env=cli_env)
    assert again.stdout == printed.stdout  # the file reads back to the same configuration
    res = cli("run", "--config", str(conf), "--db", str(db), env=cli_env)
    assert res.returncode == 0, res.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        recorded = json.loads(con.execute("SELECT config_json FROM runs").fetchone()[0])
        assert con.execute("SELECT count(*) FROM generations").fetchone()[0] == 2
    assert {k: recorded[k] for k in d} == d  # the run records the file's configuration


def test_a_bad_configuration_file_names_the_file_and_the_field(cli_env, tmp_path):
    db = tmp_path / "c.duckdb"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"scenario_id": "standard", "models": ["fake/echo"], "repeats": 0,
                               "backend_options": {"n_ctx": "big"}, "colour": "red"}))
    res = cli("run", "--config", str(bad), "--db", str(db), env=cli_env)
    assert res.returncode == 2
    assert str(bad) in res.stderr and "field repeats" in res.stderr
    assert "field backend_options.n_ctx" in res.stderr and "field colour: unknown field" in res.stderr
    bad.write_text("{not json")
    assert "not a JSON configuration file" in cli("run", "--config", str(bad), env=cli_env).stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"scenario_id": "standard", "models": ["fake/echo"]}))
    beside = cli("run", "--config", str(good), "--repeats", "3", "--model", "fake/x", "--db", str(db), env=cli_env)
    assert beside.returncode == 2 and "leave out --model, --repeats" in beside.stderr
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"scenario_id": "standard", "model": "openai/m@http://127.0.0.1:9/v1",
                                 "concurrency": [1, "two"], "slo": {"ttft": 5}}))
    res = cli("sweep", "--config", str(sweep), "--db", str(db), env=cli_env)
    assert res.returncode == 2 and "field concurrency[1]" in res.stderr and "field slo.ttft" in res.stderr
    assert not db.exists()  # nothing was created for any of them
