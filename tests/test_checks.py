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
