"""promptfoo suites as teams write them (promptfoo's documented config format), imported as scenarios:
prompts inline and from files, tests inline and from CSV, defaultTest, assertionTemplates, providers,
assertions mapped to checks or named, and bad suites refused with the file and the test named."""
import json
import subprocess
import sys
import textwrap

import pytest

from engine import RunConfig, Runner
from engine.backends import fake
from engine.promptfoo import SuiteError, provider_spec, read_suite
from engine.scenarios import load_scenario
from tests.conftest import ROOT


def write(folder, files: dict[str, str]):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder / "promptfooconfig.yaml"


TRANSLATE = {
    "promptfooconfig.yaml": """
        description: Translation bot
        prompts:
          - "Translate to {{ language }}: {{ input }}"
          - file://prompts.txt
        providers:
          - openai:chat:gpt-4o-mini
          - id: ollama:chat:llama3
          - id: openai:chat:qwen
            config: {apiBaseUrl: "http://127.0.0.1:8000/v1"}
          - anthropic:messages:claude-3
        defaultTest:
          vars: {language: French}
          assert:
            - type: not-icontains
              value: as an ai
        assertionTemplates:
          polite: {type: llm-rubric, value: "Is polite when translating to {{ language }}"}
        tests:
          - description: greeting
            vars: {input: Hello}
            assert:
              - type: icontains
                value: bonjour
              - $ref: "#/assertionTemplates/polite"
              - type: javascript
                value: output.length < 100
          - file://tests.csv
    """,
    "prompts.txt": """
        Say in {{ language | upper }}: {{ input }}
        ---
        You are a translator. {{ input }} in {{ language }}?
    """,
    "tests.csv": """
        input,language,__expected,__expected2,__description,__metadata:topic
        Good night,Spanish,icontains: noches,levenshtein: Buenas noches,night,evening
        Thank you,German,contains-any: Danke,python: file://grade.py,thanks,courtesy
    """,
}


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_prompts_tests_defaults_templates_and_csv_make_one_case_per_prompt_and_test(tmp_path):
    suite = read_suite(write(tmp_path, TRANSLATE))
    assert len(suite.cases) == 9  # 3 prompts (one inline, two in the file) x 3 tests (one inline, two in the CSV)
    by_id = {c["id"]: c for c in suite.cases}
    assert by_id["prompt-1-greeting"]["prompt"] == "Translate to French: Hello"
    assert by_id["prompts-1-night"]["prompt"] == "Say in SPANISH: Good night"  # a Nunjucks filter, the CSV's var
    assert by_id["prompts-2-thanks"]["prompt"] == "You are a translator. Thank you in German?"
    night = by_id["prompt-1-night"]
    assert night["description"] == "night" and night["metadata"] == {"topic": "evening"}
    types = [(c["type"], c.get("negate", False), c.get("ignore_case")) for c in by_id["prompt-1-greeting"]["checks"]]
    assert types == [("not_contains", False, True), ("contains", False, True), ("llm_judge", False, None)]
    assert by_id["prompt-1-greeting"]["checks"][2]["value"] == "Is polite when translating to French"
    assert night["checks"][2] == {"type": "levenshtein", "value": {"text": "Buenas noches", "max": 5}}
    assert by_id["prompt-1-thanks"]["checks"][1] == {"type": "contains_any", "value": ["Danke"], "ignore_case": False}
    # nothing dropped silently: each one named with its test, place and type
    assert [str(u) for u in suite.unmapped] == [
        "greeting: assertion 4 (javascript): runs JavaScript code of the suite's",
        "thanks: assertion 3 (python): runs Python code of the suite's"]
    assert suite.providers == ["openai/gpt-4o-mini@https://api.openai.com/v1", "ollama/llama3",
                               "openai/qwen@http://127.0.0.1:8000/v1"]
    assert suite.skipped_providers == ["anthropic:messages:claude-3"]


def test_the_command_line_imports_a_suite_lists_what_it_left_and_strict_refuses(tmp_path, cli_env):
    config = write(tmp_path / "translate", TRANSLATE)
    env = dict(cli_env, MODELPICK_USER_SCENARIOS_DIR=str(tmp_path / "mine"))
    strict = cli("import", str(config), "--strict", env=env)
    assert strict.returncode == 2 and "2 assertion(s) have no ModelPick check (--strict)" in strict.stderr
    assert "greeting: assertion 4 (javascript)" in strict.stderr and not (tmp_path / "mine").exists()
    res = cli("import", str(config), env=env)
    assert res.returncode == 0, res.stderr
    assert "saved scenario 'translate' with 9 cases and 24 checks" in res.stdout
    assert "thanks: assertion 3 (python): runs Python code" in res.stdout
    assert "--model ollama/llama3" in res.stdout and "cannot run: anthropic:messages:claude-3" in res.stdout
    sc = load_scenario(str(tmp_path / "mine" / "translate.yaml"))
    assert "greeting: assertion 4 (javascript)" in sc.description and len(sc.cases) == 9


CHAT = {
    "promptfooconfig.yaml": """
        prompts: [file://chat.json]
        tests:
          - description: order as json
            vars: {item: tea}
            assert:
              - type: is-json
                value: {type: object, required: [item], properties: {item: {type: string}}}
              - type: contains-json
              - type: regex
                value: "\\\\btea\\\\b"
              - type: not-regex
                value: "(?i)sorry"
              - type: starts-with
                value: "{"
              - type: equals
                value: '{"item": "tea"}'
                weight: 2
              - type: latency
                threshold: 3000
              - type: factuality
                value: the order is {{ item }}
              - type: not-contains-all
                value: [a, b]
              - type: similar
                value: tea please
    """,
    "chat.json": """
        [{"role": "system", "content": "Answer in JSON only."},
         {"role": "user", "content": "Please place this order for me and name the item: {{ item }}"}]
    """,
}


def test_chat_prompts_and_every_mapped_assertion_kind(tmp_path):
    suite = read_suite(write(tmp_path, CHAT))
    (case,) = suite.cases
    assert case["system"] == "Answer in JSON only."
    assert case["prompt"] == "Please place this order for me and name the item: tea"
    checks = case["checks"]
    assert [c["type"] for c in checks] == ["is_json", "json_schema", "regex", "regex", "starts_with", "equals",
                                           "latency", "llm_judge"]
    assert checks[0]["value"]["required"] == ["item"] and checks[1]["value"] == {"type": ["object", "array"]}
    assert checks[3]["negate"] is True and checks[2]["ignore_case"] is False
    assert checks[5]["weight"] == 2.0 and checks[6]["value"] == {"e2e_ms": 3000.0}
    assert checks[7]["value"] == "The answer is factually consistent with this reference: the order is tea"
    assert [u.kind for u in suite.unmapped] == ["not-contains-all", "similar"]


def test_imported_checks_score_answers_and_a_parrot_passes_no_negated_check(tmp_path, store, monkeypatch):
    monkeypatch.setenv("MODELPICK_USER_SCENARIOS_DIR", str(tmp_path / "mine"))
    from engine.promptfoo import import_suite

    sc, _ = import_suite(write(tmp_path / "chat", CHAT))
    fake.enqueue("good", "ok", '{"item": "tea"}')  # warm-up, then the answer
    good = Runner(store).run(RunConfig(sc, ["fake/good", "fake/echo"], judge=None))
    checks = store.check_results(good).set_index(["model_spec", "check_type"])
    g = checks.loc["fake/good"]
    assert g.loc["is_json"].score == 1.0 and g.loc["equals"].score == 1.0 and g.loc["starts_with"].score == 1.0
    assert (g.loc["regex"].score == 1.0).all()  # \btea\b found, and "sorry" absent (negated)
    echo = checks.loc["fake/echo"]
    assert (echo.score == 0).all()  # the echo of the prompt: 0 everywhere, a negated check included


@pytest.mark.parametrize("files,message", [
    ({"promptfooconfig.yaml": "prompts: ['{{ q }}']\ntests: [file://../outside.csv]\n"},
     "tests[1]: file://../outside.csv is outside the suite's folder"),
    ({"promptfooconfig.yaml": "prompts: ['{{ q }}']\ntests:\n  - description: t1\n    vars: {q: x}\n"
                              "    assert: [{$ref: '#/assertionTemplates/nope'}]\n"},
     "t1: $ref '#/assertionTemplates/nope': no such assertion template"),
    ({"promptfooconfig.yaml": "prompts: [file://missing.txt]\ntests: [{vars: {q: x}}]\n"},
     "prompts[1]: file://missing.txt: no such file"),
    ({"promptfooconfig.yaml": "prompts: ['{{ question }} {{ tone }}']\ntests:\n  - description: polite\n"
                              "    vars: {question: hi}\n"},
     "polite (prompt prompt-1): 'tone' is undefined (the prompt uses a variable this test does not give)"),
])
def test_a_bad_suite_names_the_file_and_the_test_and_saves_nothing(tmp_path, cli_env, files, message):
    config = write(tmp_path / "suite", files)
    (tmp_path / "outside.csv").write_text("q\nx\n")
    with pytest.raises(SuiteError, match=None) as err:
        read_suite(config)
    assert message in str(err.value) and str(config) in str(err.value)
    env = dict(cli_env, MODELPICK_USER_SCENARIOS_DIR=str(tmp_path / "mine"))
    res = cli("import", str(config), env=env)
    assert res.returncode == 2 and message in res.stderr and not (tmp_path / "mine").exists()


def test_providers_map_to_model_specs():
    assert provider_spec("echo") == "fake/echo"
    assert provider_spec({"id": "ollama:chat:qwen2.5:7b", "config": {"apiHost": "http://gpu:11434"}}) == \
        "ollama/qwen2.5:7b@http://gpu:11434"
    assert provider_spec("vllm:chat:meta-llama/Llama-3-8B") is not None
    assert provider_spec("bedrock:anthropic.claude") is None
    assert json.dumps(provider_spec("openai:gpt-4o")) == '"openai/gpt-4o@https://api.openai.com/v1"'


def test_an_uploaded_suite_is_its_files_side_by_side(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELPICK_USER_SCENARIOS_DIR", str(tmp_path / "mine"))
    from engine.importer import import_promptfoo_upload

    files = [(name, textwrap.dedent(text).lstrip("\n").encode()) for name, text in TRANSLATE.items()]
    sc, suite = import_promptfoo_upload(files)
    assert len(sc.cases) == 9 and len(suite.unmapped) == 2 and sc.id == "translation-bot"  # its description
    with pytest.raises(SuiteError, match="give one promptfoo config"):
        import_promptfoo_upload([("tests.csv", b"q\nx\n")])


def test_a_suite_with_tools_and_tool_assertions_scores_the_calls(tmp_path, store):
    """promptfoo's tools in a provider's config become the scenario's tools; is-valid-openai-tools-call and
    tool-call-f1 become the checks that read the calls, scored on what a model called."""
    from engine.backends import fake
    from engine.promptfoo import import_suite
    from engine.runner import RunConfig, Runner

    (tmp_path / "tools.json").write_text(json.dumps([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                         "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]))
    (tmp_path / "promptfooconfig.yaml").write_text(textwrap.dedent("""\
        prompts: ["{{question}}"]
        providers:
          - id: openai:chat:gpt-4o-mini
            config: {tools: file://tools.json, tool_choice: auto}
        tests:
          - description: weather
            vars: {question: What is the weather in Paris?}
            assert:
              - type: is-valid-openai-tools-call
              - type: tool-call-f1
                value: [get_weather]
          - description: both
            vars: {question: Weather and time in Paris?}
            assert:
              - type: tool-call-f1
                value: get_weather, get_time
                threshold: 0.6
        """))
    sc, suite = import_suite(tmp_path / "promptfooconfig.yaml", scenario_id="pf-tools")
    assert not suite.unmapped and [t.name for t in sc.cases[0].offered] == ["get_weather", "get_time"]
    assert [c.type for c in sc.cases[0].checks] == ["valid_tool_calls", "tool_call_f1"]
    fake.enqueue("a", {"calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                 {"calls": [{"name": "get_weather", "arguments": {"town": "Paris"}}]})
    run_id = Runner(store).run(RunConfig(sc, ["fake/a"], warmup=False))
    checks = store.query("SELECT case_id, check_type, passed, score, detail FROM check_results WHERE run_id = ? "
                         "ORDER BY case_id, check_type", [run_id])
    got = {(r.case_id.split("-")[-1], r.check_type): (r.passed, round(r.score, 2)) for r in checks.itertuples()}
    assert got[("weather", "valid_tool_calls")] == (True, 1.0)
    assert got[("weather", "tool_call_f1")] == (True, 1.0)
    assert got[("both", "tool_call_f1")] == (True, 0.67)  # one of two tools called: F1 2/3, over 0.6
    bad = next(r for r in checks.itertuples() if r.check_type == "tool_call_f1" and "both" in r.case_id)
    assert "called: get_weather; expected: get_time, get_weather" in bad.detail
