"""Tools: schemas as scenarios write them, calls as each backend streams them, the checks on calls and
on the environment's final state (BFCL's and τ-bench's semantics), the multi-step loop, and what bad
input and hostile environments get."""
import json
import os

import pytest

from engine.backends import EngineReport, GenParams, resolve
from engine.backends.openai_compat import StreamParser
from engine.checks import run_check
from engine.checks.toolcalls import state_problem
from engine.runner import RunConfig, Runner
from engine.scenarios import ScenarioError, load_scenario
from engine.tools import CallAssembler, ToolCallDelta, parse_tools, read_call
from tests.fakeservers import FakeServer, OllamaHandler, OpenAIHandler

needs_sandbox = pytest.mark.skipif(__import__("shutil").which("bwrap") is None and not os.environ.get("CI"),
                                   reason="environments run in the sandbox: `sudo apt-get install bubblewrap` "
                                          "enables these (`make test` installs it)")

WEATHER = [{"name": "weather.get", "description": "The weather in a city",
            "parameters": {"type": "dict", "properties": {"city": {"type": "string"},
                                                          "days": {"type": "integer"},
                                                          "unit": {"type": "string", "enum": ["C", "F"]}},
                           "required": ["city"]}}]


def _tools(raw=None):
    return parse_tools(raw or WEATHER)


def _call(name, args, tools=None):
    return read_call(name, args if isinstance(args, str) else json.dumps(args), None, tools or _tools())


def _check(value, calls, tools=None):
    tools = tools if tools is not None else _tools()
    return run_check("tool_calls", "", value, {"tool_calls": calls, "tools": tools})


# --- schemas ------------------------------------------------------------------------

def test_bfcl_types_are_converted_and_names_a_server_refuses_are_mapped_back():
    raw = [{"name": "math.factorial", "description": "n!", "parameters": {
        "type": "dict", "properties": {"n": {"type": "integer"}, "scale": {"type": "float"},
                                       "pair": {"type": "tuple", "items": {"type": "float"}},
                                       "extra": {"type": "any"}}, "required": ["n"]}}]
    (tool,) = parse_tools(raw)
    assert tool.name == "math.factorial" and tool.wire_name == "math_factorial"
    props = tool.parameters["properties"]
    assert tool.parameters["type"] == "object" and props["scale"]["type"] == "number"
    assert props["pair"] == {"type": "array", "items": {"type": "number"}} and "type" not in props["extra"]
    assert tool.as_openai()["function"]["name"] == "math_factorial"
    # the server's name of a call comes back as the scenario's
    assert read_call("math_factorial", '{"n": 5}', "c1", [tool]).name == "math.factorial"


@pytest.mark.parametrize("raw, words", [
    ([{"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "strnig"}}}}], ["f", "strnig"]),
    ([{"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": 5}}}}], ["f", "not JSON Schema"]),
    ([{"name": "f", "parameters": {"type": "array"}}], ["f", "must be an object"]),
    ([{"name": "f", "parameters": {"type": "object", "required": ["y"], "properties": {}}}], ["f", "required names y"]),
    ([{"description": "no name"}], ["needs a name"]),
    ([{"name": "f"}, {"name": "f"}], ["second tool named 'f'"]),
    ([{"name": "f", "params": {}}], ["f", "unknown field", "params"]),
])
def test_a_tool_that_is_not_a_function_with_json_schema_is_named(raw, words, tmp_path):
    path = _scenario(tmp_path, tools=raw)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and "tools[" in str(err.value)
    for w in words:
        assert w in str(err.value)


# --- the checks ---------------------------------------------------------------------

@pytest.mark.parametrize("args, passed, why", [
    ({"city": "Paris"}, True, ""),
    ({"city": "  paris."}, True, ""),  # BFCL's normalisation: case, spaces, punctuation
    ({"city": "Paris", "days": 3}, True, ""),
    ({"city": "Paris", "days": 3.0}, False, "expected integer"),
    ({"city": "Paris", "unit": "C"}, True, ""),
    ({"city": "Berlin"}, False, "is not one of"),
    ({"days": 3}, False, "required argument city missing"),
    ({"city": "Paris", "country": "FR"}, False, "unexpected argument country"),
    ('{"city": "Par', False, "not valid JSON"),
    ('["Paris"]', False, "not an object"),
])
def test_one_call_is_matched_as_bfcl_matches_it(args, passed, why):
    expected = [{"name": "weather.get", "arguments": {"city": ["Paris", "paris"], "days": [3, ""], "unit": ["C", ""]}}]
    res = _check(expected, [_call("weather_get", args, _tools())])
    assert res.passed is passed and res.score == float(passed), res.detail
    assert why in res.detail
    if isinstance(args, str) and why == "not valid JSON":
        assert '{"city": "Par' in res.detail  # the raw text kept in the reason


def test_an_integer_passes_where_a_number_is_wanted_and_nested_objects_and_lists_compare_by_element():
    tools = parse_tools([{"name": "book", "parameters": {"type": "object", "properties": {
        "price": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}},
        "where": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}}},
        "required": ["price"]}}])
    expected = [{"name": "book", "arguments": {"price": [12.0], "tags": [["Red Wine", "cheese"]],
                                               "where": [{"city": ["Paris"], "zip": ["75001", ""]}]}}]
    ok = _call("book", {"price": 12, "tags": ["red wine", "Cheese"], "where": {"city": "paris"}}, tools)
    assert _check(expected, [ok], tools).passed
    wrong = _call("book", {"price": 12, "tags": ["cheese", "red wine"], "where": {"city": "Paris"}}, tools)
    assert not _check(expected, [wrong], tools).passed  # list order counts, as in BFCL
    extra_key = _call("book", {"price": 12, "tags": ["red wine", "cheese"], "where": {"city": "Paris", "x": "1"}}, tools)
    assert "not an expected key" in _check(expected, [extra_key], tools).detail


def test_parallel_calls_match_without_order_and_in_order_when_asked():
    tools = _tools()
    paris, tokyo = _call("weather_get", {"city": "Paris"}, tools), _call("weather_get", {"city": "Tokyo"}, tools)
    expected = [{"name": "weather.get", "arguments": {"city": ["Tokyo"]}},
                {"name": "weather.get", "arguments": {"city": ["Paris"]}}]
    assert _check(expected, [paris, tokyo]).passed
    assert not _check({"calls": expected, "order": "exact"}, [paris, tokyo]).passed
    assert _check({"calls": expected, "order": "exact"}, [tokyo, paris]).passed
    assert "1 call(s), expected 2" in _check(expected, [paris]).detail
    # allow_extra: other calls may come before, between and after
    berlin = _call("weather_get", {"city": "Berlin"}, tools)
    assert not _check(expected, [berlin, tokyo, paris]).passed
    assert _check({"calls": expected, "order": "exact", "allow_extra": True}, [berlin, tokyo, berlin, paris]).passed


def test_no_call_is_right_when_no_tool_fits_and_any_call_then_fails():
    assert _check([], []).passed
    res = _check([], [_call("weather_get", {"city": "Paris"})])
    assert not res.passed and "no tool should be called" in res.detail
    # a call to a tool that was not offered fails, named
    res = _check([{"name": "weather.get"}], [_call("launch_rocket", {})])
    assert not res.passed and "launch_rocket, which was not offered" in res.detail
    # a call written without arguments takes any
    assert _check([{"name": "weather.get"}], [_call("weather_get", {"city": "Oslo", "days": 9})]).passed


def test_an_echo_of_the_prompt_scores_nothing_even_on_a_no_call_case():
    prompt = "What is the capital of France? Answer without any tool, in one short sentence please."
    res = run_check("tool_calls", prompt, [], {"tool_calls": [], "tools": _tools(), "prompt_parts": (prompt,)})
    assert not res.passed and res.detail.startswith("degenerate")


def test_final_state_matches_objects_as_subsets_lists_by_distinct_elements_and_scalars_exactly():
    state = {"orders": {"A1": {"status": "refunded", "price": 10}}, "log": [{"id": 1, "x": 2}, {"id": 2}]}
    assert state_problem({"orders": {"A1": {"status": "refunded"}}}, state) is None
    assert state_problem({"log": [{"id": 2}, {"id": 1}]}, state) is None
    assert "no element matches" in state_problem({"log": [{"id": 1}, {"id": 1}]}, state)
    assert state_problem({"orders": {"A1": {"price": 10.0}}}, state) is None
    assert 'expected "cancelled", found "refunded"' in state_problem({"orders": {"A1": {"status": "cancelled"}}}, state)
    assert "missing" in state_problem({"orders": {"A2": {}}}, state)
    assert state_problem({"log": [{"id": "1"}]}, state) is not None  # "1" is not 1
    res = run_check("final_state", "", {"orders": {}}, {"state": state})
    assert not res.passed and "needs the scenario's environment" in res.detail


# --- streams ------------------------------------------------------------------------

def _caller_bytes(script) -> bytes:
    """The bytes the loopback server streams for one step of the `caller` model."""
    with FakeServer(OpenAIHandler, delay_s=0) as server:
        server.httpd.tool_script = [script]
        import httpx

        body = {"model": "caller", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}
        return httpx.post(f"{server.url}/v1/chat/completions", json=body).content


def _parse(pieces: list[bytes]):
    parser = StreamParser("openai/caller")
    out = []
    for data in pieces:
        for line in parser.lines(data):
            out += parser.feed(line)
    for line in parser.lines(b"", end=True):
        out += parser.feed(line)
    asm = CallAssembler([])
    text = ""
    for item in out:
        if isinstance(item, ToolCallDelta):
            asm.add(item)
        else:
            text += item
    return text, asm.calls(), parser.report()


def test_streamed_calls_are_assembled_by_index_whatever_byte_the_stream_is_cut_at():
    script = {"text": "Let me look. ", "calls": [{"name": "lookup", "arguments": {"order_id": "A1001", "note": "größe 42"}},
                                                 {"name": "refund", "arguments": {"order_id": "A1001"}}]}
    data = _caller_bytes(script)
    whole = _parse([data])
    assert whole[0] == "Let me look. "
    assert [(c.name, c.parsed) for c in whole[1]] == [("lookup", {"order_id": "A1001", "note": "größe 42"}),
                                                      ("refund", {"order_id": "A1001"})]
    assert whole[1][0].id != whole[1][1].id and all(c.id.startswith("call_") for c in whole[1])
    assert whole[2].finish_reason == "tool_calls"
    for cut in range(1, len(data)):  # every byte boundary, a character of "größe" included
        got = _parse([data[:cut], data[cut:]])
        assert (got[0], [(c.name, c.arguments, c.id) for c in got[1]]) == \
               (whole[0], [(c.name, c.arguments, c.id) for c in whole[1]]), cut


# --- through the runner -------------------------------------------------------------

ENV = '''
def lookup(state, order_id):
    state["looked"].append(order_id)
    return state["orders"].get(order_id, {"error": "no order"})


def refund(state, order_id):
    state["orders"][order_id]["status"] = "refunded"
    return {"ok": True}


def boom(state):
    raise ValueError("the back office is down")


def spin(state):
    while True:
        pass


def unjson(state):
    return {1, 2}


def escape(state, path):
    with open(path, "w") as f:
        f.write("written by a tool")
    return "written"


def chatty(state):
    print("noise on stdout")
    return "fine"
'''

TOOLS = [{"name": n, "parameters": {"type": "object", "properties": p, "required": list(p)}}
         for n, p in [("lookup", {"order_id": {"type": "string"}}), ("refund", {"order_id": {"type": "string"}}),
                      ("boom", {}), ("spin", {}), ("unjson", {}), ("escape", {"path": {"type": "string"}}),
                      ("chatty", {})]]


def _scenario(tmp_path, tools=None, env=ENV, extra="", case_extra="", checks=None) -> str:
    (tmp_path / "env.py").write_text(env)
    data = {"id": "shop", "name": "Shop", "description": "t", "weights": {"quality": 1},
            "environment": "env.py", "state": {"orders": {"A1": {"status": "delivered"}}, "looked": []},
            "cases": [{"id": "c1", "category": "actions", "prompt": "Refund A1 please.",
                       "tools": tools if tools is not None else TOOLS,
                       "checks": checks or [{"type": "final_state", "critical": True,
                                             "value": {"orders": {"A1": {"status": "refunded"}}, "looked": ["A1"]}}]}]}
    import yaml

    data.update(yaml.safe_load(extra) or {})
    data["cases"][0].update(yaml.safe_load(case_extra) or {})
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def _rows(store, run_id):
    g = store.generations(run_id)
    c = store.query("SELECT * FROM check_results WHERE run_id = ?", [run_id])
    return g, c


@needs_sandbox
def test_an_openai_server_s_calls_run_in_the_environment_and_their_results_go_back(tmp_path, store):
    with FakeServer(OpenAIHandler, delay_s=0) as server:
        server.httpd.tool_script = [{"calls": [{"name": "lookup", "arguments": {"order_id": "A1"}}]},
                                    {"calls": [{"name": "refund", "arguments": {"order_id": "A1"}}]},
                                    {"text": "Refunded."}]
        spec = f"openai/caller@{server.url}/v1"
        run_id = Runner(store).run(RunConfig(load_scenario(_scenario(tmp_path)), [spec], warmup=False))
        bodies = [b for p, b in server.httpd.requests if p == "/v1/chat/completions"]
    g, c = _rows(store, run_id)
    row = g.iloc[0]
    assert row.ok and row.output_text == "Refunded." and row.tool_steps == 3
    assert [x["name"] for x in json.loads(row.tool_calls_json)] == ["lookup", "refund"]
    assert c.passed.all(), c.detail.tolist()
    # what was sent: the tools on every request, the calls and their results back, matched by id
    assert all(b["tools"][0]["function"]["name"] == "lookup" and b["tool_choice"] == "auto" for b in bodies)
    last = bodies[-1]["messages"]
    assert [m["role"] for m in last[-4:]] == ["assistant", "tool", "assistant", "tool"]
    assert last[-3]["tool_call_id"] == last[-4]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(last[-3]["content"]) == {"status": "delivered"}
    # timings: the first token is the first call's first piece; tools' time is apart from the model's
    steps = json.loads(row.tool_steps_json)
    assert row.ttft_ms == pytest.approx(steps[0]["ttft_ms"]) and row.tool_ms > 0
    assert row.e2e_ms == pytest.approx(sum(s["model_ms"] for s in steps))
    assert row.output_tokens > 3  # the pieces of the arguments are output


@needs_sandbox
def test_ollama_s_calls_come_whole_with_arguments_as_objects(tmp_path, store):
    with FakeServer(OllamaHandler, delay_s=0) as server:
        server.httpd.tool_script = [{"calls": [{"name": "lookup", "arguments": {"order_id": "A1"}},
                                               {"name": "refund", "arguments": {"order_id": "A1"}}]},
                                    {"text": "Done."}]
        run_id = Runner(store).run(RunConfig(load_scenario(_scenario(tmp_path)), [f"ollama/caller@{server.url}"],
                                             warmup=False))
        chats = [b for p, b in server.httpd.requests if p == "/api/chat"]
    g, c = _rows(store, run_id)
    assert g.iloc[0].ok and c.passed.all(), c.detail.tolist()
    sent = chats[-1]["messages"]
    assert sent[-3]["tool_calls"][0]["function"]["arguments"] == {"order_id": "A1"}  # an object, as Ollama wants
    assert sent[-2]["role"] == "tool" and sent[-2]["tool_name"] == "lookup" and "tool_call_id" not in sent[-2]
    assert chats[0]["tools"][0]["function"]["name"] == "lookup"


def test_a_server_that_refuses_tools_fails_the_model_s_cells_with_its_words(tmp_path, store):
    with FakeServer(OpenAIHandler, delay_s=0) as server:
        run_id = Runner(store).run(RunConfig(load_scenario(_scenario(tmp_path)), [f"openai/no-tools@{server.url}/v1"],
                                             warmup=False))
    g, _ = _rows(store, run_id)
    assert not g.ok.any() and "tools param requires --jinja flag" in g.iloc[0].error


@needs_sandbox
@pytest.mark.parametrize("tool, args, words", [
    ("boom", {}, "boom raised ValueError: the back office is down"),
    ("spin", {}, "spin did not answer: no answer within 5 s (time limit)"),
    ("unjson", {}, "returned what JSON cannot hold"),
    ("lookup", {"order_id": "A1", "x": 1}, "unexpected keyword argument 'x'"),
    ("nosuch", {}, "no tool named nosuch was offered"),
])
def test_a_tool_that_raises_loops_or_returns_junk_tells_the_model_and_the_case_goes_on(tool, args, words, tmp_path,
                                                                                       store):
    from engine.backends import fake

    fake.clear()
    fake.enqueue("agent", {"calls": [{"name": tool, "arguments": args}]},
                 {"calls": [{"name": "lookup", "arguments": {"order_id": "A1"}}]},
                 {"calls": [{"name": "refund", "arguments": {"order_id": "A1"}}]}, {"text": "Refunded."})
    run_id = Runner(store).run(RunConfig(load_scenario(_scenario(tmp_path)), ["fake/agent"], warmup=False))
    g, c = _rows(store, run_id)
    steps = json.loads(g.iloc[0].tool_steps_json)
    first = steps[0]["results"][0]
    assert words in first["error"] and words in json.loads(first["result"])["error"]
    assert [s["results"][0]["error"] for s in steps[1:3]] == [None, None]  # the next calls work
    assert c.passed.all(), c.detail.tolist()  # the state is as the later calls left it


@needs_sandbox
def test_a_tool_cannot_write_outside_its_sandbox_nor_read_the_host(tmp_path, store):
    from engine.backends import fake

    target = tmp_path / "written.txt"
    fake.clear()
    fake.enqueue("agent", {"calls": [{"name": "escape", "arguments": {"path": str(target)}}]},
                 {"calls": [{"name": "chatty", "arguments": {}}]}, {"text": "ok"})
    run_id = Runner(store).run(RunConfig(load_scenario(_scenario(tmp_path)), ["fake/agent"], warmup=False))
    steps = json.loads(_rows(store, run_id)[0].iloc[0].tool_steps_json)
    assert not target.exists()
    assert "escape raised" in steps[0]["results"][0]["error"]  # no such folder in the sandbox
    assert json.loads(steps[1]["results"][0]["result"]) == "fine"  # what a tool prints is not its answer


@needs_sandbox
def test_an_environment_that_does_not_load_says_so_in_each_call(tmp_path, store):
    from engine.backends import fake

    env = ENV + "\nimport no_such_module_here\n"
    fake.clear()
    fake.enqueue("agent", {"calls": [{"name": "lookup", "arguments": {"order_id": "A1"}}]}, {"text": "ok"})
    run_id = Runner(store).run(RunConfig(load_scenario(_scenario(tmp_path, env=env)), ["fake/agent"], warmup=False))
    g, c = _rows(store, run_id)
    err = json.loads(g.iloc[0].tool_steps_json)[0]["results"][0]["error"]
    assert "does not load: ModuleNotFoundError" in err and not c.passed.any()


@needs_sandbox
def test_max_steps_ends_a_model_that_never_stops_calling(tmp_path, store):
    from engine.backends import fake

    fake.clear()
    fake.enqueue("loop", *[{"calls": [{"name": "lookup", "arguments": {"order_id": "A1"}}]}] * 5)
    path = _scenario(tmp_path, case_extra="max_steps: 3")
    run_id = Runner(store).run(RunConfig(load_scenario(path), ["fake/loop"], warmup=False))
    row = _rows(store, run_id)[0].iloc[0]
    assert row.ok and row.tool_steps == 3 and "max_steps (3) reached" in row.tools_note


@pytest.mark.parametrize("env, extra, case_extra, words", [
    ("def lookup(state, order_id):\n  return 1\n", "", "", ["env.py has no function for the tool(s) refund"]),
    ("def lookup(state:\n", "", "", ["env.py", "not valid Python", "line 1"]),
    (ENV, "environment: env.txt", "", ["env.txt", "not a Python file"]),
    (ENV, "environment: ../env.py", "", ["leads outside the scenario's folder"]),
    (ENV, "", "state: {when: 2026-01-01}", ["field state", "not JSON data"]),
])
def test_an_environment_or_state_that_cannot_work_is_refused_with_the_file_named(env, extra, case_extra, words,
                                                                                  tmp_path):
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, env=env, extra=extra, case_extra=case_extra))
    for w in words:
        assert w in str(err.value)


def test_checks_that_need_tools_or_an_environment_say_so_when_loaded(tmp_path):
    path = _scenario(tmp_path, tools=[], checks=[{"type": "tool_calls", "value": []}])
    with pytest.raises(ScenarioError, match="tool_calls check, but the case offers no tools"):
        load_scenario(path)
    plain = tmp_path / "plain.yaml"
    plain.write_text(json.dumps({"id": "p", "name": "p", "description": "p", "weights": {"quality": 1},
                                 "cases": [{"id": "c", "category": "x", "prompt": "hi",
                                            "checks": [{"type": "final_state", "value": {"a": 1}}]}]}))
    with pytest.raises(ScenarioError, match="final_state check needs the scenario's environment"):
        load_scenario(plain)


def test_the_engine_report_of_a_call_only_answer_counts_its_argument_tokens():
    """An answer made only of calls has no text: it is still a generation with tokens and a decode rate."""
    from engine.backends import fake

    fake.clear()
    fake.enqueue("caller", {"calls": [{"name": "lookup", "arguments": {"order_id": "A" * 40}}]})
    backend = resolve("fake/caller")
    items = list(backend.stream([{"role": "user", "content": "x"}], GenParams(tools=({"type": "function"},))))
    report = items[-1]
    assert isinstance(report, EngineReport) and report.output_tokens > 5 and report.finish_reason == "tool_calls"
    assert all(isinstance(i, ToolCallDelta) for i in items[:-1])


@pytest.mark.slow
def test_smollm2_in_process_calls_a_tool_of_a_shipped_case_and_the_call_is_stored_and_scored(store):
    """The real model through llama.cpp: its template carries no tools, so the call is grammar-constrained
    (said in the row); whatever it chose is stored with its arguments, run in the shop's environment and
    scored by the case's checks."""
    sc = load_scenario("customer-service")
    run_id = Runner(store).run(RunConfig(sc, ["llamacpp/smollm2-135m"], case_ids=["act-refund-en"], max_tokens=48))
    g, c = _rows(store, run_id)
    row = g.iloc[0]
    assert row.ok, row.error
    calls = json.loads(row.tool_calls_json)
    assert calls, "SmolLM2 answered the refund case with a call (seen on every build tried)"
    names = {t.name for t in sc.cases[0].offered} | {"lookup_order", "refund_order", "issue_store_credit",
                                                      "cancel_order", "escalate_to_human"}
    assert all(x["name"] in names and x["arguments"] for x in calls)
    assert "grammar-constrained" in row.tools_note
    assert row.ttft_ms > 0 and row.output_tokens > 0 and row.tool_steps >= 1
    assert set(c.check_type) == {"final_state", "tool_calls", "contains_any"}
    assert c.detail.str.len().gt(0).all()


def test_calls_written_through_a_model_s_own_template_are_read_from_its_tool_call_blocks():
    """llama.cpp with a template that renders tools (Hermes form): text before a block is the answer,
    each <tool_call> block a call, its name sent as soon as it is written, whatever piece cuts it."""
    from engine.backends.llamacpp_engine import _HermesCalls

    written = ('Let me check.<tool_call>\n{"name": "lookup", "arguments": {"order_id": "A1"}}\n</tool_call>'
               '<tool_call>{"name": "refund", "arguments": {"order_id": "A1"}}</tool_call> Done <tool')
    for size in (1, 3, 7, len(written)):
        sent: list = []
        reader = _HermesCalls(sent.append)
        for i in range(0, len(written), size):
            reader.feed(written[i:i + size])
        reader.end()
        text = "".join(m[1] for m in sent if m[0] == "chunk")
        calls = [m for m in sent if m[0] == "call"]
        assert text == "Let me check. Done <tool", size
        assert [(m[1], m[2]) for m in calls if m[2]] == [(0, "lookup"), (1, "refund")]
        assert [json.loads(m[3]) for m in calls if m[3]] == [{"order_id": "A1"}, {"order_id": "A1"}]
        # the name goes before the arguments are complete
        assert sent.index(next(m for m in calls if m[2] == "lookup")) < sent.index(next(m for m in calls if m[3]))


def test_valid_tool_calls_validates_arguments_against_the_schema_and_f1_counts_tool_names():
    tools = _tools()
    ok = run_check("valid_tool_calls", "", None, {"tool_calls": [_call("weather_get", {"city": "Oslo"})], "tools": tools})
    assert ok.passed
    res = run_check("valid_tool_calls", "", None, {"tool_calls": [_call("weather_get", {"city": 5})], "tools": tools})
    assert not res.passed and "do not match its schema" in res.detail and "5 is not of type 'string'" in res.detail
    assert not run_check("valid_tool_calls", "", None, {"tool_calls": [], "tools": tools}).passed
    f1 = run_check("tool_call_f1", "", {"names": ["weather.get", "other"], "threshold": 0.5},
                   {"tool_calls": [_call("weather_get", {"city": "Oslo"})], "tools": tools})
    assert f1.passed and f1.score == pytest.approx(2 / 3)
