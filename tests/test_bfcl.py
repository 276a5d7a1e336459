"""The BFCL pack: BFCL's own cases and answers from PyPI's bfcl-eval (data only), scored by the
tool_calls check, which agrees with BFCL's AST checker on the same calls (bench/bfcl_agreement.py
measures it on every entry; here on the first few of each category)."""
import importlib.util

import pytest

from engine.packs import BFCL_CATEGORIES, bfcl_cases, install_pack
from engine.scenarios import ScenarioError, load_scenario
from tests.conftest import ROOT
from tests.test_cli import cli


def test_the_pack_takes_bfcl_ids_categories_and_answers(shipped_scenarios):
    sc, skipped = install_pack("bfcl", limit=3)
    assert len(sc.cases) == 15 and not skipped
    assert [c.id for c in sc.cases[:3]] == ["simple_python_0", "simple_python_1", "simple_python_2"]
    assert {c.category for c in sc.cases} == {"simple_python", "multiple", "parallel", "parallel_multiple",
                                              "irrelevance"}
    first = sc.cases[0]
    assert first.offered[0].name == "calculate_triangle_area" and first.offered[0].parameters["type"] == "object"
    check = first.checks[0]
    assert check.type == "tool_calls" and check.value["calls"][0]["arguments"]["unit"] == ["units", ""]
    factorial = sc.cases[1]
    assert factorial.offered[0].wire_name == "math_factorial"  # sent as a server takes it, scored as BFCL's name
    irrelevant = [c for c in sc.cases if c.category == "irrelevance"]
    assert all(c.checks[0].value["calls"] == [] for c in irrelevant)
    with pytest.raises(ScenarioError, match="unknown BFCL categories nope"):
        bfcl_cases(["nope"])
    live, _ = bfcl_cases(["live_relevance"], limit=2)
    assert live[0]["checks"][0]["value"] == {"calls": "any"}
    assert set(BFCL_CATEGORIES) >= {"live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
                                     "live_irrelevance"}


def test_pack_bfcl_on_the_command_line(cli_env, tmp_path):
    env = {**cli_env, "MODELPICK_USER_SCENARIOS_DIR": str(tmp_path / "mine")}
    out = cli("pack", "bfcl", "--category", "parallel", "--category", "irrelevance", "--limit", "2", env=env)
    assert out.returncode == 0, out.stderr
    assert "saved scenario 'bfcl' with 4 cases" in out.stdout
    bad = cli("pack", "bfcl", "--category", "simple", env=env)
    assert bad.returncode == 2 and "unknown BFCL categories simple" in bad.stderr
    saved = load_scenario(str(tmp_path / "mine" / "bfcl.yaml"))
    assert [c.id for c in saved.cases] == ["parallel_0", "parallel_1", "irrelevance_0", "irrelevance_1"]


def test_our_checker_agrees_with_bfcl_s_own_on_the_same_calls():
    spec = importlib.util.spec_from_file_location("bfcl_agreement", ROOT / "bench" / "bfcl_agreement.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    checker, python = bench.official_checker()
    from engine.packs import _bfcl_file

    compared = passed = 0
    for category in bench.CATEGORIES:
        name = f"BFCL_v4_{category}.json"
        answers = {a["id"]: a["ground_truth"] for a in _bfcl_file(f"possible_answer/{name}")}
        for entry in _bfcl_file(name)[:6]:
            answer = answers[entry["id"]]
            for kind, calls in bench.variants(answer, entry["function"]).items():
                theirs = checker.ast_checker(entry["function"], calls, answer, python, category, "bench")["valid"]
                assert bench.ours(calls, entry["function"], answer, category) == theirs, (entry["id"], kind, calls)
                compared += 1
                passed += theirs
    assert compared > 300 and 0.2 < passed / compared < 0.6  # right calls pass and wrong ones fail, in both
