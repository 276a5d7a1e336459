"""The rented-GPU session: plans validated by SkyPilot's own parser, the cost guard, and the
task's run step executed here on loopback test servers, its results merged into this database.
No cloud account is used: launching is tested up to `sky check`'s answer."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from engine import Store
from engine.backends import parse_spec
from engine.cloud import CloudError, launch, parse_budget, plan, run_session, write
from engine.cost import price_book
from engine.merge import merge
from tests.conftest import ROOT, free_port, free_ports, require
from tests.test_cli import cli

USE_CASE = ["gpt-oss-20b-vllm", "llama3-8b-ollama"]
ALL = ["standard", "kb-qa", "customer-service", "dev-assistant"]


def _sky():
    """SkyPilot's Task parser; CI installs SkyPilot (make cloud), elsewhere the test says why it skips."""
    try:
        import sky
    except ImportError:
        require(False, "SkyPilot", "make cloud")
    return sky


def test_the_use_case_plan_is_one_gpu_priced_from_the_table_and_skypilot_accepts_it(tmp_path):
    sky = _sky()
    p = plan(ALL, USE_CASE, hours=2)
    (cluster,) = p.clusters
    need = sum(m.need_gb for m in cluster.models)
    book = price_book()
    cheaper = [g for g in book.gpus.values() if g.memory_gb >= need and book.cheapest_offer(g.id)
               and book.cheapest_offer(g.id).price_per_hour < cluster.offer.price_per_hour]
    assert cluster.gpu.memory_gb >= need and not cheaper  # the cheapest that fits both
    assert p.estimated_cost == pytest.approx(cluster.offer.price_per_hour * 2)
    (path,) = write(p, tmp_path / "session.yaml")
    task = sky.Task.from_yaml(str(path))
    (res,) = task.resources
    assert res.accelerators == {"A100-80GB" if cluster.gpu.id == "A100-80GB" else cluster.gpu.id: 1}
    data = yaml.safe_load(path.read_text())
    assert data["resources"]["autostop"] == {"idle_minutes": 10, "down": True}
    assert data["resources"]["disk_size"] >= 40 + 2 * sum(m.weights_gb for m in cluster.models) - 1
    assert "ollama.com/install.sh" in data["setup"] and "pip install -q vllm" in data["setup"]
    assert "make install" in data["setup"] and "timeout 7200" in data["run"]
    session = json.loads(data["envs"]["MODELPICK_SESSION"])
    assert session["scenarios"] == ALL
    vllm = next(s for s in session["servers"] if s["engine"] == "vllm")
    assert "--gpu-memory-utilization" in vllm["serve"]  # vLLM leaves room for Ollama on the same card
    assert "cloud fetch modelpick" in p.summary() and "sky down modelpick" in p.summary()


def test_models_that_do_not_fit_together_get_a_cluster_each_and_a_named_gpu_is_checked(tmp_path):
    sky = _sky()
    big = ["ollama/llama3:70b-instruct", "openai/openai/gpt-oss-120b", "ollama/gpt-oss:20b",
           "ollama/llama3:8b-instruct"]
    p = plan(["standard"], big, gpu=None)
    needs = [m.need_gb for m in p.clusters[0].models + [m for c in p.clusters[1:] for m in c.models]]
    assert sum(needs) > max(g.memory_gb for g in price_book().gpus.values())  # no single GPU holds them all
    assert [c.name for c in p.clusters] == ["modelpick-1", "modelpick-2", "modelpick-3", "modelpick-4"]
    assert all(c.gpu.memory_gb >= c.models[0].need_gb for c in p.clusters)
    paths = write(p, tmp_path / "s.yaml")
    assert [x.name for x in paths] == ["s-1.yaml", "s-2.yaml", "s-3.yaml", "s-4.yaml"]
    for x in paths:
        sky.Task.from_yaml(str(x))
    with pytest.raises(CloudError, match="--gpu T4 has 16 GB; the models need"):
        plan(["standard"], USE_CASE, gpu="T4")
    named = plan(["standard"], ["ollama/llama3:8b-instruct"], gpu="L4", spot=True)
    assert named.clusters[0].gpu.id == "L4" and named.clusters[0].task["resources"]["use_spot"] is True
    sky.Task.from_yaml(str(write(named, tmp_path / "l4.yaml")[0]))


def test_the_cost_guard(tmp_path):
    p = plan(ALL, USE_CASE, hours=2)
    assert p.estimated_cost > 0.1
    with pytest.raises(CloudError, match=r"over the budget of 0.1 USD.*lower --hours"):
        plan(ALL, USE_CASE, hours=2, budget="0.1USD")
    assert plan(ALL, USE_CASE, hours=2, budget="100 usd").budget == 100
    cny = plan(ALL, USE_CASE, hours=2, budget="700CNY")
    assert cny.currency == "CNY" and cny.estimated_cost == pytest.approx(p.estimated_cost * price_book().cny_per_usd)
    for c in plan(["standard"], ["ollama/llama3:8b-instruct"], hours=0.5).clusters:
        assert c.task["resources"]["autostop"]["idle_minutes"] >= 1  # autostop is always set
    assert parse_budget("10") == (10.0, "USD") and parse_budget("5 RMB") == (5.0, "CNY")


@pytest.mark.parametrize("kwargs,message", [
    (dict(models=["llamacpp/smollm2-135m"]), "serves models over HTTP"),
    (dict(models=[]), "at least one --model"),
    (dict(scenarios=["nope"]), "unknown scenario 'nope'"),
    (dict(hours=0), "--hours must be > 0"),
    (dict(budget="ten dollars"), "give an amount and a currency"),
    (dict(gpu="TPU-v5"), "unknown GPU 'TPU-v5'"),
    (dict(models=["openai/some-private-model"]), "not in the catalog: name the GPU with --gpu"),
])
def test_bad_plans_are_refused_with_the_reason(kwargs, message):
    args = {"scenarios": ["standard"], "models": USE_CASE, **kwargs}
    with pytest.raises(ValueError, match=message):
        plan(**args)


@pytest.mark.slow
def test_the_tasks_run_step_runs_here_on_loopback_servers_and_the_results_merge(tmp_path, store):
    base = free_ports(2)  # the two servers listen on base and base + 1
    models = ["openai/gpt-oss-20b", "openai/meta-llama/Meta-Llama-3-8B-Instruct"]
    p = plan(["standard"], models, gpu="A100-80GB", hours=0.1, sweep="1,2", port_base=base)
    task = p.clusters[0].task
    session = json.loads(task["envs"]["MODELPICK_SESSION"])
    serve = {s["spec"]: f"{sys.executable} -m tests.fakeservers openai {s['url'].split(':')[-1].split('/')[0]} "
                        f"{parse_spec(s['spec']).model}" for s in session["servers"]}
    home = tmp_path / "box"
    home.mkdir()
    env = dict(os.environ, **task["envs"], HOME=str(home), MODELPICK_WORKDIR=str(ROOT),
               MODELPICK_SERVE_COMMANDS=json.dumps(serve), PYTHONPATH=str(ROOT))
    env.pop("MODELPICK_DB", None)
    done = subprocess.run(["bash", "-c", task["run"]], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "answers at" in done.stderr and "running standard" in done.stderr
    remote = home / "modelpick-results" / "results.duckdb"
    box = Store(remote)
    assert box.query("SELECT count(*) AS n FROM runs WHERE status = 'done'").n[0] == 1
    gens = box.query("SELECT model_spec, ok FROM generations")
    assert set(gens.model_spec) == set(serve) and gens.ok.all()
    assert len(box.query("SELECT * FROM sweeps WHERE status = 'done'")) == 2
    added = merge(store, remote)  # what `cloud fetch` does once the file is copied back
    assert added["runs"] == 1 and added["sweeps"] == 2 and added["generations"] > 0


def test_a_session_whose_server_never_answers_stops_with_the_reason(tmp_path):
    port = free_port()
    session = {"scenarios": ["standard"], "sweep": None,
               "servers": [{"spec": f"openai/x@http://127.0.0.1:{port}/v1", "engine": "vllm", "serve": "true",
                            "url": f"http://127.0.0.1:{port}/v1"}]}
    with pytest.raises(CloudError, match="did not answer .* within 1 s"):
        run_session(str(tmp_path / "r.duckdb"), session, wait_s=1, log=lambda m: None)


def test_launch_says_what_to_install_or_configure(tmp_path, monkeypatch):
    p = plan(["standard"], USE_CASE)
    (task,) = write(p, tmp_path / "session.yaml")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no sky on it, nor beside this Python:
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    with pytest.raises(CloudError, match="SkyPilot is not installed: run `make cloud`"):
        launch(task)
    with pytest.raises(CloudError, match="no such task file"):
        launch(tmp_path / "missing.yaml")


def test_the_cloud_commands(cli_env, tmp_path):
    out = tmp_path / "session.yaml"
    res = cli("cloud", "plan", "--preset", "gpt-oss-20b-vllm", "--preset", "llama3-8b-ollama",
              *sum((["--scenario", s] for s in ALL), []), "--hours", "2", "--out", str(out), env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "estimated cost:" in res.stdout and "USD for 2 h" in res.stdout and out.is_file()
    assert "source" in res.stdout and "seen" in res.stdout  # the price's source and date
    res = cli("cloud", "plan", "--preset", "gpt-oss-20b-vllm", "--scenario", "standard", "--budget", "0.05USD",
              "--out", str(tmp_path / "x.yaml"), env=cli_env)
    assert res.returncode == 2 and "over the budget" in res.stderr and not (tmp_path / "x.yaml").exists()


@pytest.mark.slow
def test_launch_with_skypilot_but_no_cloud_names_sky_check(tmp_path):
    _sky()
    (task,) = write(plan(["standard"], USE_CASE), tmp_path / "session.yaml")
    try:
        with pytest.raises(CloudError, match="`sky check` finds no cloud"):
            launch(task)
    finally:
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "sky"), "api", "stop"], capture_output=True,
                       timeout=120)  # the API server sky check started


def test_a_price_seen_more_than_30_days_ago_is_said_to_be_old():
    import datetime as dt

    from engine.cloud import price_age_days

    assert price_age_days("2026-01-21", dt.date(2026, 12, 7)) == 320
    assert price_age_days("not a date") is None
    from engine.i18n import t

    assert "320 days old: check it before booking" in t("cloud_sum_price_old", "en", days=320)
    assert "320 天" in t("cloud_sum_price_old", "zh", days=320)
