"""Every shipped case with tools, through the real runner, the real environment in the sandbox and the
checks: the steps of a good agent score 1; a model that only talks about acting, one that acts (or
answers) without looking first, and an echo of the prompt all score at most a third
(tests/data/answers/actions.yaml holds the three scripts of each case)."""
import json

import pytest
import yaml

from engine import load_scenario
from engine.backends import fake
from engine.runner import RunConfig, Runner
from engine.scoring import case_scores
from tests.conftest import ROOT

ACTIONS = yaml.safe_load((ROOT / "tests" / "data" / "answers" / "actions.yaml").read_text(encoding="utf-8"))
pytestmark = pytest.mark.skipif(__import__("shutil").which("bwrap") is None and not __import__("os").environ.get("CI"),
                                reason="environments run in the sandbox: `sudo apt-get install bubblewrap` "
                                       "enables these (`make test` installs it)")


def _tool_cases(scenario_id):
    return [c for c in load_scenario(scenario_id).cases if c.offered]


def test_the_shipped_scenarios_have_their_tool_cases_in_both_languages():
    cs, dev = _tool_cases("customer-service"), _tool_cases("dev-assistant")
    assert len(cs) >= 15 and len(dev) >= 10
    for cases in (cs, dev):
        assert {"en", "zh"} <= {c.lang for c in cases}
        assert all(c.environment_code for c in cases)
    # some must not call any tool (a question the policy answers)
    assert any(ch.type == "tool_calls" and ch.value["calls"] == [] for c in cs for ch in c.checks)
    assert {c.id for c in cs + dev} == set(ACTIONS)  # every case has its scripts, none is stale


@pytest.mark.parametrize("scenario_id", ["customer-service", "dev-assistant"])
def test_a_good_agent_passes_and_talkers_hasty_actors_and_echoes_fail(scenario_id, store):
    cases = _tool_cases(scenario_id)
    fake.clear()
    roles = ("good", "talker", "hasty")
    for case in cases:
        for role in roles:
            fake.enqueue(f"{role}-{case.id}", *ACTIONS[case.id][role])
    sc = load_scenario(scenario_id)
    scores = {}
    for case in cases:  # each role's model answers one case (its queue holds that case's steps)
        models = [f"fake/{role}-{case.id}" for role in roles] + ["fake/echo"]
        run_id = Runner(store).run(RunConfig(sc, models, case_ids=[case.id], warmup=False))
        g = store.generations(run_id)
        assert g.ok.all(), g[~g.ok].error.tolist()
        checks = store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id])
        per = case_scores(g, checks).set_index("model_spec").score
        for spec, value in per.items():
            scores[(case.id, spec.split("/")[1].split("-")[0])] = value
        # the calls of the good agent were stored, each with what it sent and the result it got back
        good = g[g.model_spec == models[0]].iloc[0]
        steps = json.loads(good.tool_steps_json)
        made = [c for s in steps for c in s["calls"]]
        assert [c["name"] for c in made] == [c["name"] for s in ACTIONS[case.id]["good"] for c in s.get("calls", [])]
        assert all(r["error"] is None for s in steps for r in s["results"]), steps
        assert good.tool_steps == len(ACTIONS[case.id]["good"])
    bad = {k: v for k, v in scores.items() if k[1] == "good" and v < 1.0}
    assert not bad, bad
    passing = {k: v for k, v in scores.items() if k[1] != "good" and v > 0.34}
    assert not passing, passing
