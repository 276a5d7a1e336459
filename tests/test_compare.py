"""The Compare page's tables on hand-made frames with known answers."""
import pandas as pd
import pytest

from engine import compare
from tests.conftest import make_run


def frames(rows):
    """gens and checks from (model, case, repeat, score, ttft_ms, ok) tuples."""
    gens, checks = [], []
    for model, case, repeat, score, ttft, ok in rows:
        gens.append({"run_id": "r", "model_spec": model, "case_id": case, "category": case.split("-")[0],
                     "repeat": repeat, "turn": 0, "ok": ok, "ttft_ms": ttft, "e2e_ms": ttft * 4,
                     "decode_tok_per_s": 1000 / ttft, "output_tokens": 10, "load_ms": None, "rss_mb": 100.0,
                     "vram_mb": None, "exceeds_context": False, "output_text": "x"})
        checks.append({"run_id": "r", "model_spec": model, "case_id": case, "repeat": repeat, "turn": 0,
                       "check_type": "contains", "passed": score > 0.5, "score": score, "weight": 1.0,
                       "detail": ""})
    return pd.DataFrame(gens), pd.DataFrame(checks)


def test_metrics_name_the_faster_model_and_call_a_noisy_quality_gap_a_tie():
    rows = []
    for i in range(12):
        rows.append(("fast", f"coding-{i}", 0, [1.0, 0.0][i % 2], 100 + i, True))
        rows.append(("slow", f"coding-{i}", 0, [0.0, 1.0][i % 2] if i < 11 else 0.0, 300 + i, True))
    gens, checks = frames(rows)
    out = compare.metrics(gens, checks, "standard")
    wide = out["wide"].set_index("row")
    assert wide.loc["ttft_ms", "winner"] == "fast"  # 3x faster on every case
    assert wide.loc["ttft_ms", "fast"] == "106 (102-108)"  # median of 100..111 with its interval
    assert wide.loc["coding", "winner"] == "tie"  # 6/12 vs 5/12 correct: within noise
    cats = out["categories"].set_index("model_spec")
    assert cats.score["fast"] == pytest.approx(0.5) and cats.score["slow"] == pytest.approx(5 / 12)


def test_failed_generations_count_in_the_ok_rate_and_score_zero():
    rows = [("a", f"knowledge-{i}", 0, 1.0, 100, True) for i in range(20)]
    rows += [("b", f"knowledge-{i}", 0, 0.0 if i < 15 else 1.0, 100, i >= 15) for i in range(20)]
    out = compare.metrics(*frames(rows), "standard")
    table = out["table"].set_index(["row", "model_spec"])
    assert table.value["ok_rate", "b"] == pytest.approx(0.25) and table.winner["ok_rate", "a"] == "a"
    assert table.value["knowledge", "a"] == 1.0 and table.winner["knowledge", "a"] == "a"


def test_repeats_are_one_case_in_the_interval():
    # one case repeated 10 times is one observation: no interval can be claimed from it
    rows = [("a", "knowledge-0", r, 1.0, 100 + r, True) for r in range(10)]
    rows += [("b", "knowledge-0", r, 0.0, 100 + r, True) for r in range(10)]
    table = compare.metrics(*frames(rows), "standard")["table"].set_index(["row", "model_spec"])
    assert table.n["knowledge", "a"] == 1 and str(table.winner["knowledge", "a"]).startswith("—, did not decide: too few")


def test_scenario_view_takes_the_latest_run_of_each_model(store):
    old = make_run(store, "standard", {"m": {"c1": [(1.0, 100, 400, 10)]}})
    new = make_run(store, "standard", {"m": {"c1": [(0.0, 900, 1000, 10)]},
                                       "n": {"c1": [(0.5, 500, 800, 10)]}})
    store.query("UPDATE runs SET started_at = started_at - INTERVAL 1 HOUR WHERE run_id = ?", [old])
    gens, checks = compare.load_results(store, scenario_id="standard")
    assert set(zip(gens.model_spec, gens.run_id)) == {("m", new), ("n", new)}
    assert checks.score.tolist() == [0.0, 0.5]
    hist = compare.history(store, ["m"], "standard").set_index("run_id")
    assert hist.quality[old] == 1.0 and hist.quality[new] == 0.0 and hist.ttft_ms_p50[new] == 900
    assert list(hist.index) == [old, new] and set(hist.runs_in_all) == {2}  # oldest first
    latest = compare.history(store, ["m"], "standard", last=1)  # the chart keeps the latest runs only
    assert latest.run_id.tolist() == [new] and latest.runs_in_all.tolist() == [2]


def test_each_answer_carries_its_own_checks_and_the_context_flag():
    rows = [("a", "coding-1", r, s, 100.0, True) for r, s in [(0, 1.0), (1, 0.0)]]
    rows += [("b", "coding-1", 0, 0.0, 200.0, True)]
    gens, checks = frames(rows)
    gens.loc[gens.model_spec == "b", "exceeds_context"] = True
    (item,) = compare.answers(gens, checks)
    a, b = item["models"]
    assert [c["passed"] for c in a["checks"]] == [True]  # the first repeat's check, not both repeats'
    assert not a["exceeds_context"] and b["exceeds_context"] and len(b["checks"]) == 1


def test_the_across_runs_chart_labels_each_run_by_a_readable_start():
    from engine import charts

    hist = pd.DataFrame({"run_id": ["20261128-101500-aaaaaa", "20261128-101200-bbbbbb"],
                         "started_at": pd.to_datetime(["2026-11-28 10:15:00", "2026-11-28 10:12:00"]),
                         "model_spec": ["m", "m"], "ttft_ms_p50": [120.0, 80.0]})
    spec = charts.history_chart(hist, "ttft_ms_p50", "en").to_dict()
    (data,) = spec["datasets"].values()
    assert [d["run_label"] for d in data] == ["2026-11-28 10:12 · bbbbbb", "2026-11-28 10:15 · aaaaaa"]
    assert spec["encoding"]["x"]["field"] == "run_label" and spec["encoding"]["x"]["sort"] is None


def test_the_decision_uses_cold_runs_unless_warm_is_chosen_and_compare_shows_both(store):
    from engine import RunConfig, Runner, load_scenario
    from engine.recommend import RecommendError, recommend

    sc = load_scenario("standard")
    cases = ["knowledge-en", "coding-en"]
    cold = Runner(store).run(RunConfig(sc, ["fake/echo"], case_ids=cases))
    with pytest.raises(RecommendError, match="no warm runs .*choose"):
        recommend(store, "standard", cache_mode="warm")
    warm = Runner(store).run(RunConfig(sc, ["fake/echo"], case_ids=cases, cache_mode="warm"))
    # the newer warm run is not used unless asked for
    assert set(recommend(store, "standard", n_boot=100).evidence.gens.run_id) == {cold}
    assert set(recommend(store, "standard", n_boot=100, cache_mode="warm").evidence.gens.run_id) == {warm}
    both = compare.cold_and_warm(store, "standard")
    assert both.model_spec.tolist() == ["fake/echo"] and {"ttft_ms_cold", "ttft_ms_warm", "warm_over_cold"} <= set(both)


def test_the_decision_summary_shows_cold_and_warm_ttft_side_by_side(store):
    from engine import RunConfig, Runner, load_scenario
    from engine.recommend import recommend
    from engine.report import render

    sc = load_scenario("standard")
    for mode in ("cold", "warm"):
        Runner(store).run(RunConfig(sc, ["fake/echo", "fake/mirror"], case_ids=["knowledge-en"], cache_mode=mode))
    d = recommend(store, "standard", n_boot=100)
    assert sorted(d.cold_warm.model_spec) == ["fake/echo", "fake/mirror"]
    md = render(d, "md").decode()
    assert "Time to first token, cold and warm" in md and "The ranking uses the cold (default) runs." in md
    html = render(recommend(store, "standard", n_boot=100, cache_mode="warm"), "html").decode()
    assert "The ranking uses the warm runs." in html and "TTFT warm (ms)" in html


def test_the_engines_own_figures_stand_beside_ours():
    import pandas as pd

    from engine.compare import engine_beside_client

    gens = pd.DataFrame({"model_spec": ["a", "a", "b"], "ok": [True, True, True],
                         "ttft_ms": [100.0, 120.0, 50.0], "engine_prompt_ms": [80.0, 90.0, None],
                         "stream_decode_tok_per_s": [45.0, 47.0, 30.0], "engine_decode_ms": [1000.0, 1000.0, None],
                         "decode_tok_per_s": [50.0, 50.0, 30.0], "output_tokens": [51, 51, 20]})
    t = engine_beside_client(gens).set_index("model_spec")
    assert list(t.index) == ["a"]  # b's engine says nothing of its own
    assert t.loc["a", "engine_decode_tok_per_s"] == 50.0 and t.loc["a", "decode_ratio"] == pytest.approx(46 / 50)
    assert t.loc["a", "ttft_ms"] == 110.0 and t.loc["a", "engine_prompt_ms"] == 85.0


def test_rows_that_did_not_decide_say_so_in_every_table_and_both_languages(store):
    """A category of fewer than 10 cases names no winner in the metrics table (as the category table says),
    and the timing rows of a busy run's decision table say they did not decide, in English and 中文."""
    from engine import compare, report
    from engine.i18n import say
    from engine.recommend import recommend
    from tests.conftest import make_run

    busy = {"gpus": [], "load": {"busy": True, "others_cpu_pct_median": 74.0}}
    cases = [f"c{i:02d}" for i in range(14)]
    run = make_run(store, "standard", {"fake/a": {c: [(0.9, 100.0, 500.0, 60.0)] for c in cases},
                                       "fake/b": {c: [(0.1, 900.0, 5000.0, 10.0)] for c in cases}},
                   host=busy, category=lambda c: "coding" if c < "c03" else "knowledge")
    g = store.generations(run)
    checks = store.query("SELECT * FROM check_results WHERE run_id = ?", [run])
    wide = compare.metrics(g, checks, "standard")["wide"].set_index("row")
    assert str(wide.winner["coding"]).startswith("—, did not decide: too few cases")  # 3 coding cases
    assert wide.winner["knowledge"] == "fake/a"  # 11 knowledge cases: enough to name one
    d = recommend(store, "standard")
    t = d.table.drop_duplicates("row").set_index("row").winner
    assert "did not decide" in say(t["ttft_ms"], "en") and "未参与决定" in say(t["ttft_ms"], "zh")
    md = report.render(d, "md").decode()
    assert "| —, did not decide: the timings cannot decide" in md
    assert "—，未参与决定" in report.render(d, "md", "zh").decode()
