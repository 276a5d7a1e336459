import textwrap

import pytest

from engine.scenarios import ScenarioError, load_scenario, parse_scenario

GOOD = """
id: mine
name: Mine
description: d
weights: {quality: 1}
cases:
  - id: c1
    category: knowledge
    prompt: hi
    checks:
      - {type: contains, value: hello}
"""


def write(tmp_path, text, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_standard_covers_the_five_kinds_in_chinese_and_english():
    sc = load_scenario("standard")
    kinds = {"knowledge", "coding", "instruction_following", "multi_turn", "chinese_writing"}
    assert kinds <= set(sc.categories)
    for kind in kinds:
        langs = {c.lang for c in sc.cases if c.category == kind}
        assert {"zh", "en"} <= langs, kind
    prompts = {c.prompt for c in sc.cases if c.prompt}
    assert "牛顿三大定律是什么？" in prompts and "写一个Python函数判断回文字符串" in prompts
    turns = [t.user for c in sc.cases if c.turns for t in c.turns]
    assert turns[:2] == ["推荐一部科幻电影", "主演是谁？"]


def test_context_file_is_inlined_into_the_prompt():
    case = next(c for c in load_scenario("standard").cases if c.id == "instruction-zh")
    (msgs, checks), = case.turn_inputs()
    assert "创业公司" in msgs[-1]["content"] and "{context}" not in msgs[-1]["content"]
    assert {c.type for c in checks} >= {"max_sentences", "max_chars_per_sentence"}


def test_multi_turn_case_checks_each_turn():
    case = next(c for c in load_scenario("standard").cases if c.id == "multi-turn-zh")
    turns = case.turn_inputs()
    assert len(turns) == 2
    assert turns[1][0] == [{"role": "user", "content": "主演是谁？"}]
    assert any(c.type == "not_contains" for c in turns[1][1])


def test_user_file_by_path(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.id == "mine" and sc.defaults.max_tokens == 256


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "id: x\nname: [unclosed\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and "line" in str(err.value)


def test_missing_field_names_case_and_field(tmp_path):
    path = write(tmp_path, GOOD.replace("    category: knowledge\n", ""))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert str(path) in msg and "case 'c1'" in msg and "category" in msg and "missing" in msg


def test_unknown_check_type_names_case_and_field(tmp_path):
    path = write(tmp_path, GOOD.replace("type: contains", "type: smells_good"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert "case 'c1'" in msg and "checks[0]" in msg and "smells_good" in msg


def test_bad_check_value_is_rejected_on_load():
    bad = GOOD.replace("{type: contains, value: hello}", "{type: max_sentences, value: three}")
    with pytest.raises(ScenarioError, match="positive integer"):
        parse_scenario(bad, "inline.yaml")
    with pytest.raises(ScenarioError, match="regular expression"):
        parse_scenario(GOOD.replace("type: contains, value: hello", "type: regex, value: '(unclosed'"),
                       "inline.yaml")


def test_case_needs_exactly_one_input():
    with pytest.raises(ScenarioError, match="exactly one of prompt, messages or turns"):
        parse_scenario(GOOD.replace("    prompt: hi\n", ""), "inline.yaml")


def test_unknown_scenario_and_unknown_weight():
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'.*standard"):
        load_scenario("nope")
    with pytest.raises(ScenarioError, match="weights.*unknown criteria"):
        parse_scenario(GOOD.replace("{quality: 1}", "{vibes: 1}"), "inline.yaml")


def test_missing_context_file(tmp_path):
    path = write(tmp_path, GOOD.replace("    prompt: hi\n", "    prompt: hi\n    context_file: nope.txt\n"))
    with pytest.raises(ScenarioError, match="case 'c1': field context_file"):
        load_scenario(path)
