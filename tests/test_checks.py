import pytest

from engine.checks import count_chars, run_check, sentences


@pytest.mark.parametrize("check,value,answer,passed", [
    ("contains", ["惯性", "加速度", "反作用"], "第一定律是惯性定律，第二定律F=ma讲加速度，第三定律是作用与反作用。", True),
    ("contains", ["惯性", "加速度", "反作用"], "牛顿是英国科学家。", False),
    ("contains", ["inertia", "acceleration"], "The law of INERTIA and of Acceleration.", True),
    ("contains", "reaction", "Every action has an equal and opposite reaction.", True),
    ("contains", "reaction", "Objects keep moving.", False),
    ("contains_any", ["秋", "黄昏"], "夕阳西下，黄昏时分。", True),
    ("contains_any", ["秋", "黄昏"], "春天来了。", False),
    ("not_contains", ["哪部", "哪一部"], "主演是基努·里维斯。", True),
    ("not_contains", ["哪部", "哪一部"], "请问你说的是哪部电影？", False),
    ("not_contains", ["which film"], "Which film do you mean?", False),
    ("regex", r"def\s+\w+\s*\(", "```python\ndef is_palindrome(s):\n    return s == s[::-1]\n```", True),
    ("regex", r"def\s+\w+\s*\(", "Use s == s[::-1].", False),
    ("regex", "[\u4e00-\u9fff]", "Hello", False),
    ("min_chars", 10, "短", False),
    ("min_chars", 3, "秋天的黄昏", True),
    ("max_chars", 5, "秋天的黄昏很美", False),
    ("max_chars", 20, "A short answer.", True),
])
def test_check_verdicts(check, value, answer, passed):
    res = run_check(check, answer, value)
    assert res.passed is passed, res.detail
    assert 0.0 <= res.score <= 1.0
    assert res.score == 1.0 if passed else res.score < 1.0


def test_contains_scores_the_share_found():
    res = run_check("contains", "惯性和加速度", ["惯性", "加速度", "反作用"])
    assert res.score == pytest.approx(2 / 3)
    assert "反作用" in res.detail


def test_ignore_case_can_be_turned_off():
    assert not run_check("contains", "Inertia", "inertia", {"ignore_case": False}).passed


def test_sentences_split_chinese_and_english():
    assert sentences("模型很快。中文流畅！值得选择？") == ["模型很快", "中文流畅", "值得选择"]
    assert sentences("It is fast. It writes well! Pick it?") == ["It is fast", "It writes well", "Pick it"]
    # A decimal point is not a sentence end; list markers are not sentences.
    assert len(sentences("Version 3.5 is out.")) == 1
    assert sentences("1. 自建模型\n2. 实测数据\n3. 选对模型") == ["自建模型", "实测数据", "选对模型"]


def test_count_chars_counts_cjk_characters_not_bytes_or_punctuation():
    assert count_chars("秋天的黄昏，") == 5
    assert count_chars("GPU 很贵。") == 5


def test_max_sentences():
    assert run_check("max_sentences", "开源模型更安全。部署需要评估。实测数据更可靠。", 3).passed
    four = run_check("max_sentences", "一句。二句。三句。四句。", 3)
    assert not four.passed and four.score == pytest.approx(0.75)
    assert not run_check("max_sentences", "", 3).passed


def test_max_chars_per_sentence_counts_cjk():
    ok = run_check("max_chars_per_sentence", "创业公司用开源模型。实测胜过参数表。", 10)
    assert ok.passed, ok.detail
    # 12 characters: over a 10-character limit, although far under 10 *words*.
    long = run_check("max_chars_per_sentence", "创业公司越来越多地使用开源模型。短句。", 10)
    assert not long.passed and long.score == pytest.approx(0.5)


# --- reference answers ---------------------------------------------------------

def test_exact_match_normalises_case_punctuation_articles_and_width():
    assert run_check("exact", "The Eiffel Tower.", "eiffel tower").passed
    assert run_check("exact", "  ＡＢＣ－１２３ ", "abc 123").passed  # full-width forms fold
    assert run_check("exact", "北京。", ["北京", "北京市"]).passed
    r = run_check("exact", "It is the Eiffel Tower", "Eiffel Tower")
    assert not r.passed and r.score == 0 and "is not" in r.detail


def test_token_f1_counts_chinese_characters_as_tokens():
    from engine.checks.reference import f1, tokens

    assert tokens("带薪年假15天") == ["带", "薪", "年", "假", "15", "天"]
    assert f1("the cat sat", "cat sat down") == pytest.approx(2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3))
    assert f1("每年十五天年假", "每年 15 天带薪年假") == pytest.approx(2 * (5 / 7) * (5 / 8) / (5 / 7 + 5 / 8))
    r = run_check("f1", "Paid leave is 15 days a year.", {"answer": "15 days of paid leave per year", "min": 0.5})
    assert r.passed and 0.5 <= r.score < 1
    assert not run_check("f1", "I do not know.", "15 days of paid leave per year").passed


def test_numbers_within_a_tolerance():
    assert run_check("number", "Revenue was 1,250,000 yuan.", 1250000).passed
    assert run_check("number", "约 ３.１５ 亿元", {"value": 3.2, "tolerance": 0.02}).passed  # 1.6% off
    assert not run_check("number", "about 3.0", {"value": 3.2, "tolerance": 0.02}).passed
    assert run_check("number", "-4 degrees", {"value": -5, "abs": 1}).passed
    r = run_check("number", "no figure here", 15)
    assert not r.passed and "no number" in r.detail


@pytest.mark.parametrize("check_type,value,message", [
    ("exact", "", "reference answer"),
    ("f1", {"answer": "x", "min": 2}, "min must be"),
    ("f1", {"answer": "x", "threshold": 0.5}, "unknown keys"),
    ("number", "fifteen", "expected number"),
    ("number", {"value": 3, "tolerance": -1}, "tolerance must be"),
])
def test_reference_checks_refuse_bad_values(check_type, value, message):
    from engine.checks import CHECKS

    with pytest.raises(ValueError, match=message):
        CHECKS[check_type].validate(value)


def test_an_answer_that_restates_the_question_is_its_own_but_an_echo_or_a_loop_scores_zero():
    from engine.checks.copied import assess

    q = ("What are Newton's three laws of motion?",)
    restated = "Newton's three laws of motion are: inertia, F = ma, and action and reaction."
    assert assess(restated, q).degenerate is None
    assert run_check("contains", restated, ["inertia"], {"prompt_parts": q}).passed
    echo = run_check("contains", "What are Newton's three laws of motion? inertia", ["inertia"], {"prompt_parts": q})
    assert not echo.passed and echo.score == 0 and echo.detail.startswith("degenerate: an echo of the prompt (100%")
    assert assess("牛顿三大定律是：惯性定律、加速度定律和作用与反作用定律。", ("牛顿三大定律是什么？",)).degenerate is None
    loop = "秋天是秋天的季节。" * 6
    assert run_check("min_chars", loop, 10, {"prompt_parts": ("描写秋天",)}).detail.startswith(
        "degenerate: it repeats one line 6 times")
    # the model's own earlier answer is part of what it was given: repeating it does not answer turn 2
    turn2 = ("Recommend a science-fiction film.", "<i>The Martian</i>", "Who stars in it?")
    assert assess(" <i>The Martian</i> ", turn2).degenerate.startswith("degenerate: an echo")
    assert assess("Matt Damon stars in The Martian.", turn2).degenerate is None
    # the cold marker a parrot repeats is taken out first: what is left is the echo
    marked = run_check("contains", "[0a1b2c3d] Recommend a science-fiction film.", ["film"],
                       {"prompt_parts": ("[0a1b2c3d] Recommend a science-fiction film.",), "marker": "[0a1b2c3d]"})
    assert not marked.passed and marked.detail.startswith("degenerate")


def test_a_pasted_paragraph_earns_nothing_but_a_quoted_fact_counts():
    from engine.checks.copied import assess

    doc = ("Annual leave. Full-time employees receive fifteen working days of paid annual leave per year, "
           "which must be requested through the HR portal at least two weeks in advance, approved by the line "
           "manager, and taken before the end of March of the following year, after which unused days lapse "
           "unless the regional director agrees in writing to carry them over. Parking costs 300 per month.")
    doc += (" Travel. Flights under six hours are booked in economy class through the company travel desk, hotels "
            "are capped at the city rate published each January, meals are reimbursed against receipts up to the "
            "daily allowance, and every claim must be filed within thirty days of the trip with the approval of "
            "the budget holder, or it is returned to the traveller unpaid.")
    parts = (doc, "How many days of annual leave do I get?")
    quoted = "You get fifteen working days of paid annual leave per year."
    assert assess(quoted, parts).added_text == quoted  # a sentence quoted back is still the answer
    pasted = doc.split(" Parking")[0] + " Also, have a nice day and enjoy your holidays."
    seen = assess(pasted, parts)
    assert seen.degenerate is None and "fifteen" not in seen.added_text and "nice day" in seen.added_text
    assert not run_check("contains", pasted, ["fifteen"], {"prompt_parts": parts}).passed
