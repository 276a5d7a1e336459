"""Every scoring check with right and wrong answers (Chinese and English), the judge and
pairwise judging with the fake backend, bootstrap intervals, and human ratings."""
import random

import numpy as np
import pandas as pd
import pytest

from engine import RunConfig, Runner, load_scenario
from engine.backends import fake
from engine.checks import extract_json, language_share, run_check
from engine.checks.code import extract_code
from engine.checks.judge import judge_pair
from engine.judging import pairwise
from engine.ratings import add_stars, add_vote, bradley_terry, next_pair, ratings_table, star_summary, votes
from engine.recommend import compare_per_case, decision_table, evidence_from_frames
from engine.scenarios import SCENARIOS_DIR, ScenarioError, parse_scenario
from engine.scoring import case_scores

DEV = load_scenario("dev-assistant")


def check_of(case_id: str, check_type: str):
    case = next(c for c in DEV.cases if c.id == case_id)
    return next(c for c in case.checks if c.type == check_type)


def run(check, answer, **opts):
    return run_check(check.type, answer, check.value, {"base_dir": str(SCENARIOS_DIR), **opts})


# --- code -----------------------------------------------------------------------------

GOOD_MERGE = """Here you go:
```python
def merge_intervals(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out
```
It sorts first."""

BAD_MERGE = """```python
def merge_intervals(intervals):
    return sorted(intervals)
```"""


@pytest.mark.skipif(__import__("shutil").which("bwrap") is None and not __import__("os").environ.get("CI"),
                    reason="bubblewrap is not installed: `sudo apt-get install bubblewrap` enables these (`make test` runs it when root)")
class TestExecutedChecks:
    def test_python_tests_right_and_wrong(self):
        chk = check_of("merge-intervals-en", "python_tests")
        good = run(chk, GOOD_MERGE)
        assert good.passed and good.score == 1.0 and good.detail == "4/4 hidden tests passed"
        bad = run(chk, BAD_MERGE)
        assert not bad.passed and 0 < bad.score < 1 and "test_basic" in bad.detail

    def test_python_output_runs_the_scenarios_snippet_not_the_answer(self):
        from engine.checks.code import snippet_output

        code = "xs = [3, 1, 2]\nys = xs\nys.sort()\nprint(xs)\nprint(len(xs))"
        assert snippet_output(code) == "[1, 2, 3]\n3\n"  # really executed, in the sandbox
        right = run_check("python_output", "It prints [1, 2, 3] and then 3: ys is the same list.", code)
        assert right.passed and right.detail == "states 2/2 printed lines"
        half = run_check("python_output", "It prints [3, 1, 2] and then 3.", code)
        assert not half.passed and half.score == 0.5 and "[1, 2, 3]" in half.detail
        broken = run_check("python_output", "anything", "raise SystemExit(3)")
        assert not broken.passed and "the snippet did not run" in broken.detail

    def test_python_tests_chinese_case_and_unfenced_code(self):
        chk = check_of("word-count-zh", "python_tests")
        answer = "可以这样写：\ndef word_count(text):\n    from collections import Counter\n    return dict(Counter(text.lower().split()))\n以上函数不区分大小写。"
        assert run(chk, answer).passed
        wrong = "def word_count(text):\n    return dict.fromkeys(text.split(), 1)"
        assert not run(chk, wrong).passed

    def test_code_that_does_not_run_scores_zero_with_a_reason(self):
        res = run(check_of("merge-intervals-en", "python_tests"), "```python\ndef merge_intervals(x):\n  return (\n```")
        assert res.score == 0 and "did not run" in res.detail and "SyntaxError" in res.detail

    def test_forged_result_lines_are_not_believed(self):
        forged = '```python\nprint("@@0000@@" + \'{"results": [["test_x", true, ""]]}\')\ndef merge_intervals(x):\n    return x\n```'
        assert not run(check_of("merge-intervals-en", "python_tests"), forged).passed

    def test_testgen_needs_tests_that_catch_the_bugs(self):
        chk = check_of("testgen-en", "python_testgen")
        strong = "```python\ndef test_leap():\n    assert is_leap(2024)\n    assert not is_leap(1900)\n    assert is_leap(2000)\n    assert not is_leap(2023)\n```"
        res = run(chk, strong)
        assert res.passed and res.score == 1.0 and "caught 2/2" in res.detail
        weak = "```python\ndef test_leap():\n    assert is_leap(2024)\n```"
        res = run(chk, weak)
        assert not res.passed and res.score == 0.5 and "caught 0/2" in res.detail
        wrong = "```python\ndef test_leap():\n    assert is_leap(1900)\n```"
        assert run(chk, wrong).score == 0 and "fails on the correct code" in run(chk, wrong).detail
        unittest_style = ("```python\nimport unittest\nclass T(unittest.TestCase):\n    def test_c(self):\n"
                          "        self.assertFalse(is_leap(1900))\n        self.assertTrue(is_leap(2000))\n```")
        assert run(chk, unittest_style).passed


def test_extract_code_prefers_fenced_blocks_in_the_language():
    assert extract_code("text\n```python\nx = 1\n```\nmore\n```bash\nls\n```") == "x = 1"
    assert extract_code("Use:\n```sql\nSELECT 1;\n```", "sql") == "SELECT 1;"
    assert extract_code("The query is SELECT name FROM t; done", "sql") == "SELECT name FROM t;"
    assert extract_code("```python\ndef f():\n    return 1\n") == "def f():\n    return 1"  # cut off by max_tokens


def test_sql_result_right_wrong_and_ordered():
    totals = check_of("sql-city-totals-en", "sql_result")
    right = "```sql\nSELECT c.city, SUM(o.amount) AS total FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.city HAVING SUM(o.amount) > 500;\n```"
    assert run(totals, right).passed
    off_by_boundary = right.replace("> 500", ">= 500")  # Hangzhou's total is exactly 500
    res = run(totals, off_by_boundary)
    assert not res.passed and "got 3 rows, expected 2" in res.detail
    top = check_of("sql-top-customers-zh", "sql_result")
    q = "SELECT c.name, SUM(o.amount) t FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY t {} LIMIT 2"
    assert run(top, f"```sql\n{q.format('DESC')}\n```").passed
    assert not run(top, f"```sql\n{q.format('DESC').replace('LIMIT 2', 'LIMIT 3')}\n```").passed


def test_sql_is_read_only_without_file_access_and_time_limited():
    chk = check_of("sql-city-totals-en", "sql_result")
    for attack in ["DROP TABLE orders", "INSERT INTO customers VALUES (9, 'X', 'Y')",
                   "SELECT * FROM read_csv('/etc/passwd')", "COPY customers TO '/tmp/leak.csv'"]:
        res = run(chk, f"```sql\n{attack}\n```")
        assert not res.passed and "the query failed" in res.detail, attack
    slow = "```sql\nSELECT count(*) FROM range(100000000000) a, range(1000) b\n```"
    res = run_check("sql_result", slow, {**chk.value, "timeout_s": 0.5}, {"base_dir": str(SCENARIOS_DIR)})
    assert not res.passed and "ran over 0.5 s" in res.detail
    assert run(chk, "```sql\nSELECT c.city, SUM(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY 1 HAVING SUM(o.amount) > 500\n```").passed


# --- text checks ------------------------------------------------------------------------

def test_json_schema():
    schema = next(c for c in load_scenario("kb-qa").cases if c.id == "json-en").checks[0].value
    ok = run_check("json_schema", 'Sure:\n```json\n{"lead": "Li Wei", "launch_date": "2027-03-15"}\n```', schema)
    assert ok.passed
    wrong_date = run_check("json_schema", '{"lead": "Li Wei", "launch_date": "March 15, 2027"}', schema)
    assert not wrong_date.passed and "launch_date" in wrong_date.detail
    assert "no JSON" in run_check("json_schema", "The lead is Li Wei.", schema).detail
    assert extract_json('prefix [1, 2] suffix') == [1, 2]
    with pytest.raises(ScenarioError, match="invalid JSON schema"):
        parse_scenario("id: x\nname: x\ndescription: x\nweights: {quality: 1}\ncases:\n  - id: a\n"
                       "    category: c\n    prompt: p\n    checks: [{type: json_schema, value: {type: 12}}]\n", "x.yaml")


def test_language_share_counts_cjk_against_latin():
    assert language_share("秋天的黄昏很美 GPU", "zh") == pytest.approx(7 / 10)
    assert run_check("language", "秋天的黄昏，夕阳如金。", "zh").passed
    assert not run_check("language", "Autumn dusk is golden.", "zh").passed
    assert run_check("language", "Newton's laws describe motion.", "en").passed
    assert not run_check("language", "牛顿定律描述运动。", "en").passed
    assert not run_check("language", "12345", "zh").passed


@pytest.mark.parametrize("answer,refuses", [
    ("The document does not say how much parking costs.", True),
    ("I don't know; I can transfer you to a human agent.", True),
    ("文档中没有提到停车费用。", True),
    ("抱歉，我不清楚高级会员的价格，可以为您转接人工客服。", True),
    ("Parking costs 300 CNY per month.", False),
    ("停车位每月 300 元。", False),
])
def test_refusal_both_ways(answer, refuses):
    assert run_check("refusal", answer, True).passed is refuses
    assert run_check("refusal", answer, False).passed is (not refuses)


def test_latency_sla_uses_the_measured_timings():
    sla = {"ttft_ms": 800, "e2e_ms": 3000}
    assert run_check("latency", "hi", sla, {"ttft_ms": 420, "e2e_ms": 2100}).passed
    late = run_check("latency", "hi", sla, {"ttft_ms": 950, "e2e_ms": 2100})
    assert not late.passed and "ttft_ms 950 (SLA 800)" in late.detail


# --- judge ------------------------------------------------------------------------------

def test_llm_judge_scores_with_the_judge_and_keeps_its_raw_verdict(store):
    fake.enqueue("echo", "GOOD answer", "GOOD answer", "weak answer")  # warm-up, case 1, case 2
    sc = parse_scenario("""
id: judged
name: j
description: d
weights: {quality: 1}
cases:
  - {id: a, category: writing, prompt: p1, checks: [{type: llm_judge, value: "Says GOOD."}]}
  - {id: b, category: writing, prompt: p2, checks: [{type: llm_judge, value: "Says GOOD."}]}
""", "judged.yaml")
    run_id = Runner(store).run(RunConfig(sc, ["fake/echo"], judge="fake/judge-keyword"))
    c = store.check_results(run_id).set_index("case_id")
    assert c.loc["a"].score == 1.0 and c.loc["b"].score == 0.0
    assert c.loc["a"].raw_verdict == "Checked. SCORE: 5"
    # without a judge the check is skipped, not failed
    run_id = Runner(store).run(RunConfig(sc, ["fake/echo"]))
    assert store.check_results(run_id).empty
    # a judge that gives no readable score leaves the check unscored: no 0 for the answer
    fake.enqueue("mumbler", "I cannot say.", "I cannot say.", "I cannot say.")
    run_id = Runner(store).run(RunConfig(sc, ["fake/echo"], judge="fake/mumbler"))
    assert store.check_results(run_id).empty and store.generations(run_id).ok.all()


def test_pairwise_judging_cancels_position_bias_and_rewards_the_better_answer(store):
    first = lambda prompt: "WINNER: A"  # noqa: E731  a judge that always prefers the first answer
    assert judge_pair(first, "q", "GOOD", "bad")["score_1"] == 0.5
    assert judge_pair(first, "q", "bad", "GOOD")["score_1"] == 0.5
    fair = judge_pair(lambda p: "WINNER: " + ("A" if "GOOD" in p.split("Answer B:")[0] else "B"), "q", "GOOD", "bad")
    assert fair["score_1"] == 1.0 and fair["winner_12"] == "A" and fair["winner_21"] == "B"
    fake.enqueue("good", *["GOOD answer"] * 3)
    sc = load_scenario("standard")
    run_id = Runner(store).run(RunConfig(sc, ["fake/good", "fake/echo"], case_ids=["knowledge-en", "coding-en"]))
    rows = pairwise(store, run_id, "fake/judge-keyword", "fake/good", "fake/echo")
    assert len(rows) == 2 and (rows.score_1 == 1.0).all()
    stored = store.query("SELECT * FROM judge_pairs")
    assert len(stored) == 2 and stored.raw_12.str.contains("WINNER").all()
    biased_rows = pairwise(store, run_id, "fake/judge-first", "fake/good", "fake/echo")
    assert (biased_rows.score_1 == 0.5).all()
    from engine.judging import pair_summary

    summary = pair_summary(store, run_id).set_index("judge_spec")
    assert summary.loc["fake/judge-keyword"].model_1_win_share == 1.0
    assert summary.loc["fake/judge-first"].model_1_win_share == 0.5


# --- scores and intervals ----------------------------------------------------------------

def test_case_interval_contains_the_mean_and_narrows_with_more_cases():
    rng = np.random.default_rng(1)
    small = rng.binomial(1, 0.7, 10).astype(float)[None, :]
    large = rng.binomial(1, 0.7, 400).astype(float)[None, :]
    r1, r2 = compare_per_case(small, ["m"], "higher"), compare_per_case(large, ["m"], "higher")
    (lo1, hi1), (lo2, hi2) = r1["ci"]["m"], r2["ci"]["m"]
    assert lo1 <= r1["values"]["m"] <= hi1 and lo2 <= r2["values"]["m"] <= hi2
    assert (hi2 - lo2) < (hi1 - lo1) / 3


def test_case_and_category_scores_weight_checks_and_cover_repeats(store):
    fake.enqueue("echo", *["惯性 加速度 反作用"] * 10)
    sc = load_scenario("standard")
    run_id = Runner(store).run(RunConfig(sc, ["fake/echo"], case_ids=["knowledge-zh", "knowledge-en"], repeats=2))
    gens, checks = store.generations(run_id), store.check_results(run_id)
    scores = case_scores(gens, checks)
    assert len(scores) == 4  # 2 cases x 2 repeats
    zh = scores[scores.case_id == "knowledge-zh"].score.iloc[0]
    assert zh == pytest.approx(1.0)  # all keywords and Chinese: every weighted check passed
    en = scores[scores.case_id == "knowledge-en"].score.iloc[0]
    assert en < 0.5
    # repeats of a case count once: the unit of the interval is the case
    table, cats = decision_table(evidence_from_frames(gens, checks, "standard"))
    row = cats.iloc[0]
    assert row.n == 2 and row.ci_low <= row.score <= row.ci_high
    stars = table[table.kind == "stars"].set_index("row")
    assert stars.loc["chinese_fluency"].stars == pytest.approx(5.0)
    assert stars.loc["english"].stars < 3


def test_exceeding_the_context_is_reported_not_scored(store):
    from engine.backends import Backend, EngineReport, register_backend

    class Small(Backend):
        context_tokens = 2000

        def __init__(self, spec, **_):
            pass

        def stream(self, messages, params):
            yield "7391"
            yield EngineReport(output_tokens=1)

    register_backend("small", Small)
    kb = load_scenario("kb-qa")
    run_id = Runner(store).run(RunConfig(kb, ["small/ctx"], case_ids=["needle-1k-d50", "needle-12k-d50"]))
    g = store.generations(run_id).set_index("case_id")
    assert g.loc["needle-1k-d50"].ok and not g.loc["needle-1k-d50"].exceeds_context
    far = g.loc["needle-12k-d50"]
    assert not far.ok and far.exceeds_context and far.error.startswith("exceeds context")
    checks = store.check_results(run_id)
    assert set(checks.case_id) == {"needle-1k-d50"}  # nothing scored for the probe that did not fit


def test_real_llama_cpp_context_overflow_is_reported_as_such(store):
    kb = load_scenario("kb-qa")
    run_id = Runner(store).run(RunConfig(kb, ["llamacpp/smollm2-135m"], case_ids=["needle-3k-d50"],
                                         max_tokens=8, backend_options={"n_ctx": 2048}))
    g = store.generations(run_id).iloc[0]
    assert g.exceeds_context and "exceeds" in g.error
    assert store.check_results(run_id).empty


# --- human ratings -------------------------------------------------------------------------

def test_star_intervals_resample_cases_and_show_as_stars(store):
    from engine.ratings import stars_text

    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo"],
                                         case_ids=["knowledge-en", "knowledge-zh", "coding-en", "coding-zh"]))
    other = Runner(store).run(RunConfig(load_scenario("kb-qa"), ["fake/echo"], case_ids=["leave-en"]))
    for case, stars in [("knowledge-en", 5), ("knowledge-zh", 5), ("coding-en", 1), ("coding-zh", 1)]:
        for rater in ("Mei", "Tom", "Ana"):  # three raters agree: still one case, not three samples
            add_stars(store, run_id, "fake/echo", case, 0, 0, "overall", stars, rater)
    add_stars(store, other, "fake/echo", "leave-en", 0, 0, "overall", 2, "Mei")
    s = star_summary(store, scenario_id="standard").iloc[0]  # the kb-qa rating is not mixed in
    assert s.stars_mean == 3 and s.cases == 4 and s.ratings == 12 and s.raters == 3
    assert 1 <= s.ci_low < 3 < s.ci_high <= 5 and s.ci_high - s.ci_low >= 2  # four cases, two camps: wide
    assert stars_text(3.0, 1.0, 5.0) == "★★★☆☆ 3.0 (1.0–5.0)"
    assert stars_text(4.6, 4.2, 5.0).startswith("★★★★★ 4.6")


def test_stars_are_stored_with_the_rater_and_validated(store):
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo"], case_ids=["knowledge-en"]))
    add_stars(store, run_id, "fake/echo", "knowledge-en", 0, 0, "fluency", 4, "Mei")
    add_stars(store, run_id, "fake/echo", "knowledge-en", 0, 0, "fluency", 2, "Tom")
    s = star_summary(store, run_id).iloc[0]
    assert s.stars_mean == 3 and s.raters == 2 and s.cases == 1 and s.ci_low is None and s.ci_high is None
    for bad in [dict(stars=6), dict(dimension="vibes"), dict(rater=" ")]:
        kwargs = {"dimension": "fluency", "stars": 3, "rater": "Mei", **bad}
        with pytest.raises(ValueError):
            add_stars(store, run_id, "fake/echo", "knowledge-en", 0, 0, **kwargs)


def test_blind_pairs_are_random_and_votes_become_ratings(store):
    sc = load_scenario("standard")
    Runner(store).run(RunConfig(sc, ["fake/echo", "fake/flaky"], case_ids=["knowledge-en", "coding-en"]))
    rng = random.Random(3)
    pairs = [next_pair(store, "standard", rng) for _ in range(30)]
    assert all(p["left"]["model_spec"] != p["right"]["model_spec"] for p in pairs)
    assert {p["question"] for p in pairs} <= {"What are Newton's three laws of motion?",
                                              "Write a Python function that tests whether a string is a palindrome."}
    lefts = {p["left"]["model_spec"] for p in pairs}
    assert lefts == {"fake/echo", "fake/flaky"}  # either model can be on the left
    for i, p in enumerate(pairs[:12]):  # twelve raters
        add_vote(store, p, "left" if p["left"]["model_spec"] == "fake/echo" else "right", f"rater {i}")
    add_vote(store, pairs[12], "tie", "Tom")
    add_vote(store, pairs[13], "both_bad", "Ann")
    with pytest.raises(ValueError):
        add_vote(store, pairs[14], "maybe", "Tom")
    table = ratings_table(votes(store, "standard")).set_index("model_spec")
    assert table.loc["fake/echo"].rating > table.loc["fake/flaky"].rating
    assert table.loc["fake/echo"].ci_low <= table.loc["fake/echo"].rating <= table.loc["fake/echo"].ci_high
    assert table.loc["fake/echo"].votes == 13  # 'both bad' carries no preference
    assert next_pair(store, "no-such-scenario") is None


def test_a_rater_gets_each_pair_once_and_a_changed_mind_replaces_the_vote(store):
    sc = load_scenario("standard")
    Runner(store).run(RunConfig(sc, ["fake/echo", "fake/judge-first", "fake/mirror"], case_ids=["knowledge-en"]))
    rng = random.Random(5)
    seen = []
    while (p := next_pair(store, "standard", rng, rater="Mei")) is not None:
        seen.append(frozenset({p["left"]["model_spec"], p["right"]["model_spec"]}))
        add_vote(store, p, "left", "Mei")
        assert len(seen) <= 3
    assert len(set(seen)) == len(seen) == 3  # three models: three pairs, each once, then none
    assert next_pair(store, "standard", rng, rater="Tom") is not None  # another rater still has them all
    first = next_pair(store, "standard", rng, rater="Tom")
    add_vote(store, first, "left", "Tom")
    flipped = {**first, "left": first["right"], "right": first["left"]}  # the same pair, shown the other way
    add_vote(store, flipped, "tie", "Tom")
    tom = votes(store, "standard").query("rater == 'Tom'")
    assert len(tom) == 1 and tom.vote.iloc[0] == "tie"  # one vote per rater and pair: the latest


def test_bradley_terry_orders_by_strength_and_treats_ties_as_half():
    outcomes = [("a", "b", 1.0)] * 8 + [("a", "b", 0.0)] * 2 + [("b", "c", 1.0)] * 8 + [("b", "c", 0.0)] * 2
    r = bradley_terry(outcomes)
    assert r["a"] > r["b"] > r["c"]
    even = bradley_terry([("x", "y", 0.5)] * 10)
    assert even["x"] == pytest.approx(even["y"])


def test_context_fraction_probes_grow_with_each_models_own_limit(store):
    from engine.backends import Backend, EngineReport, register_backend

    seen = {}

    class Sized(Backend):
        def __init__(self, spec, **_):
            self.context_tokens = int(spec.model)

        def stream(self, messages, params):
            seen.setdefault(self.context_tokens, []).append(len(messages[-1]["content"]))
            yield "The code is 7391."
            yield EngineReport(output_tokens=5)

    register_backend("sized", Sized)
    kb = load_scenario("kb-qa")
    run_id = Runner(store).run(RunConfig(kb, ["sized/2000", "sized/8000"], case_ids=["needle-ctx50-d50"],
                                         warmup=False))
    assert store.generations(run_id).ok.all()
    small, large = seen[2000][0], seen[8000][0]
    assert 3.5 < large / small < 4.5  # half of each model's context: four times the text
    # a server whose limit nobody knows: reported, not scored
    fake_run = Runner(store).run(RunConfig(kb, ["fake/echo"], case_ids=["needle-ctx50-d50"], warmup=False))
    g = store.generations(fake_run).iloc[0]
    assert g.exceeds_context and "limit is unknown" in g.error
    assert store.check_results(fake_run).empty


def test_catalog_knows_models_by_the_names_servers_use():
    from engine.catalog import find_served

    assert find_served("llama3:8b-instruct").id == "llama3-8b"
    assert find_served("openai/gpt-oss-20b").context_tokens == 131072
    assert find_served("my-finetune") is None


def test_without_a_sandbox_code_checks_are_not_scored_and_the_run_says_why(store, monkeypatch, caplog):
    from engine import sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.delenv(sandbox.UNSANDBOXED_ENV, raising=False)
    fake.enqueue("echo", *["def is_pal(s):\n    return s == s[::-1]"] * 2)
    with caplog.at_level("WARNING", logger="modelpick"):
        run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo"], case_ids=["coding-en"]))
    checks = store.check_results(run_id)
    assert "python_tests" not in set(checks.check_type) and "regex" in set(checks.check_type)
    assert "install bubblewrap" in caplog.text


def test_rating_intervals_resample_cases_not_votes():
    from engine.ratings import ratings_table

    # ten raters agree that a wins case 1 and that b wins case 2: two cases of evidence, not twenty
    rows = [{"case_id": "c1", "turn": 0, "left_model": "a", "right_model": "b", "vote": "left"}] * 10
    rows += [{"case_id": "c2", "turn": 0, "left_model": "a", "right_model": "b", "vote": "right"}] * 10
    table = ratings_table(pd.DataFrame(rows)).set_index("model_spec")
    assert table.rating["a"] == pytest.approx(1000, abs=1)
    # a draw of case 1 twice makes a far stronger, of case 2 twice far weaker
    assert table.ci_low["a"] < 900 and table.ci_high["a"] > 1100


def test_an_invented_fact_gets_no_partial_credit_on_a_critical_check(store):
    """An answer that hedges like a refusal and still invents a price used to score 0.6 on invented-price-en
    (its refusal passes, its not_contains fails); the not_contains is critical, so the case scores 0 and
    the check's reason says what it found."""
    from engine import RunConfig, Runner, load_scenario
    from engine.backends import fake
    from engine.scoring import case_scores

    fake.enqueue("inventor", "I'm sorry, I'm not sure, but I think premium membership is $99 a year.")
    fake.enqueue("honest", "I'm sorry, I don't know the price of a premium membership; I can transfer you to a "
                           "human agent.")
    run_id = Runner(store).run(RunConfig(load_scenario("customer-service"), ["fake/inventor", "fake/honest"],
                                         case_ids=["invented-price-en"], warmup=False))
    checks = store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id])
    scores = case_scores(store.generations(run_id), checks).set_index("model_spec").score
    assert scores["fake/inventor"] == 0.0 and scores["fake/honest"] == 1.0
    inv = checks[checks.model_spec == "fake/inventor"].set_index("check_type")
    assert inv.passed["refusal"] and not inv.passed["not_contains"] and inv.critical["not_contains"]
    assert "must not contain: $" in inv.detail["not_contains"]


def test_a_re_rating_replaces_the_rater_s_earlier_star_and_one_case_has_no_interval(store):
    from engine.ratings import stars_text

    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo"], case_ids=["knowledge-en"]))
    add_stars(store, run_id, "fake/echo", "knowledge-en", 0, 0, "overall", 2, "Mei")
    add_stars(store, run_id, "fake/echo", "knowledge-en", 0, 0, "overall", 4, "Mei")  # she changes her mind
    add_stars(store, run_id, "fake/echo", "knowledge-en", 0, 0, "overall", 5, "Li")
    s = star_summary(store, run_id=run_id).iloc[0]
    assert s.stars_mean == 4.5 and s.ratings == 2 and s.raters == 2  # Mei's 4 and Li's 5, not 2, 4 and 5
    assert s.ci_low is None and s.ci_high is None  # one case: no interval, not "4.5 (4.5–4.5)"
    assert stars_text(s.stars_mean, s.ci_low, s.ci_high) == "★★★★☆ 4.5"
    assert len(store.query("SELECT * FROM ratings")) == 3  # the record of what was said stays


def test_votes_at_weight_zero_are_said_not_to_count(store):
    from engine import report
    from engine.recommend import recommend

    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo", "fake/mirror"]))
    pair = next_pair(store, "standard", rng=__import__("random").Random(1))
    add_vote(store, pair, "left", "Mei")
    md = report.render(recommend(store, "standard", run_id=run_id, weights={"quality": 1.0}), "md").decode()
    assert "1 blind A/B votes" in md and "Not weighted: preference has weight 0" in md
    weighted = report.render(recommend(store, "standard", run_id=run_id,
                                       weights={"quality": 1.0, "preference": 1.0}), "md").decode()
    assert "Not weighted" not in weighted


def test_stars_reach_the_memo_and_the_recommend_page_and_say_when_they_do_not_count(store):
    from engine import report
    from engine.recommend import recommend

    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo", "fake/mirror"]))
    add_stars(store, run_id, "fake/echo", "knowledge-en", 0, 0, "overall", 4, "Mei")
    add_stars(store, run_id, "fake/echo", "coding-zh", 0, 0, "overall", 2, "Mei")
    d = recommend(store, "standard", run_id=run_id, weights={"quality": 1.0})
    md = report.render(d, "md").decode()
    assert "Stars (overall): fake/echo ★★★☆☆ 3.0" in md and "over 2 cases by 1 raters" in md
    assert "Not weighted: stars are shown beside the verdict" in md
    for seed in range(6):  # blind votes, so that preference can carry its weight
        add_vote(store, next_pair(store, "standard", rng=__import__("random").Random(seed)), "left", "Mei")
    weighted = report.render(recommend(store, "standard", run_id=run_id,
                                       weights={"quality": 1.0, "preference": 1.0}), "md").decode()
    assert "Stars (overall): fake/echo" in weighted and "Not weighted: stars" not in weighted
    assert "星级（总体）：fake/echo" in report.render(d, "md", "zh").decode()
