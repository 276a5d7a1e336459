"""The llama.cpp backend through real llama.cpp with the bundled GGUF models."""
from pathlib import Path

import pytest

from engine.backends import BackendError, resolve
from engine.backends.llamacpp import _stop_scan, supports_gpu_offload
from engine.runner import RunConfig, Runner
from engine.scenarios import load_scenario
from tests.conftest import collect as _collect


def collect(backend, messages, **params):
    text, _, report = _collect(backend, messages, **params)
    return text, report

QUESTION = [{"role": "user", "content": "What are Newton's three laws of motion?"}]




@pytest.fixture(scope="module")
def smollm2():
    backend = resolve("llamacpp/smollm2-135m", n_ctx=2048)
    backend.load()
    yield backend
    backend.close()


@pytest.mark.slow
def test_counts_match_llama_cpp_own_usage(smollm2):
    import llama_cpp

    # the library's own chat completion, in this process, on the same file and context
    lib = llama_cpp.Llama(model_path=str(smollm2.path), n_ctx=2048, n_threads=smollm2.n_threads, verbose=False)
    for max_tokens in (12, 300):
        text, report = collect(smollm2, QUESTION, max_tokens=max_tokens)
        lib.reset()
        ref = lib.create_chat_completion(messages=QUESTION, max_tokens=max_tokens, temperature=0.0, seed=42)
        assert text == ref["choices"][0]["message"]["content"]
        assert report.prompt_tokens == ref["usage"]["prompt_tokens"]
        assert report.output_tokens == ref["usage"]["completion_tokens"]
        assert report.finish_reason == ref["choices"][0]["finish_reason"]
        assert report.engine_decode_ms > 0 and report.engine_prompt_ms > 0
        assert report.tokens_from_engine
    assert report.finish_reason == "stop" and report.output_tokens < 300


def test_counters_are_reset_per_generation(smollm2):
    _, first = collect(smollm2, QUESTION, max_tokens=20)
    _, second = collect(smollm2, QUESTION, max_tokens=20)
    # the whole prompt is evaluated each time, and decode counts do not accumulate
    assert second.prompt_tokens == first.prompt_tokens
    assert second.engine_decode_tokens == first.engine_decode_tokens == 19


def test_greedy_output_is_deterministic_and_chinese_survives_streaming(smollm2):
    msgs = [{"role": "user", "content": "请用中文介绍你自己。"}]
    a, _ = collect(smollm2, msgs, max_tokens=40)
    b, _ = collect(smollm2, msgs, max_tokens=40)
    assert a == b and "\ufffd" not in a


def test_prompt_longer_than_context_is_a_clear_error():
    backend = resolve("llamacpp/smollm2-135m", n_ctx=64)
    backend.load()
    try:
        with pytest.raises(BackendError, match="exceeds the context of 64 tokens"):
            collect(backend, [{"role": "user", "content": "word " * 200}], max_tokens=5)
    finally:
        backend.close()


def test_gemma_base_model_answers_through_the_catalog_template():
    backend = resolve("llamacpp/gemma3-270m", n_ctx=1024)
    backend.load()
    try:
        text, report = collect(backend, [{"role": "user", "content": "What is the capital of France?"}],
                               max_tokens=30)
    finally:
        backend.close()
    assert "Paris" in text
    assert "Question:" not in text  # the stop string ends the answer and is not shown


def test_stop_strings_are_held_back_until_decided():
    assert _stop_scan("Paris\nQue", 0, ["\nQuestion:"]) == (None, 5)
    assert _stop_scan("Paris\nQuestion: x", 0, ["\nQuestion:"]) == (5, 5)
    assert _stop_scan("Paris\nQuiet", 0, ["\nQuestion:"]) == (None, 11)
    assert _stop_scan("abc", 0, []) == (None, 3)


def test_missing_and_unknown_models_are_named():
    with pytest.raises(BackendError, match="GGUF file not found: /nope/model.gguf"):
        resolve("llamacpp//nope/model.gguf")
    with pytest.raises(BackendError, match="unknown model llamacpp/mystery.*smollm2-135m"):
        resolve("llamacpp/mystery")
    with pytest.raises(BackendError, match="llamacpp/llama3-8b has no local GGUF.*ollama: llama3:8b-instruct"):
        resolve("llamacpp/llama3-8b")


def test_corrupt_gguf_fails_at_load_with_the_file_named(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    backend = resolve(f"llamacpp/{bad}")
    with pytest.raises(BackendError, match="broken.gguf"):
        backend.load()


def test_gguf_by_path_and_gpu_offload_flag(smollm2_path):
    backend = resolve(f"llamacpp/{smollm2_path}", n_ctx=512, n_gpu_layers=-1)
    backend.load()
    try:
        text, _ = collect(backend, QUESTION, max_tokens=8)
        assert text
    finally:
        backend.close()
    # the flag follows the build: only a build with a GPU backend library (CUDA, Vulkan,
    # Metal, ...) can offload; this CPU build must say False, and host info records the same
    import llama_cpp

    libs = {p.name for p in (Path(llama_cpp.__file__).parent / "lib").iterdir()}
    gpu_build = any(name.startswith(("libggml-cuda", "libggml-vulkan", "libggml-metal", "libggml-hip"))
                    for name in libs)
    assert supports_gpu_offload() is gpu_build
    facts = resolve("llamacpp/smollm2-135m").host_facts()  # the backend says it, not hostinfo
    assert facts["llama_gpu_offload"] is gpu_build and facts["llama_cpp_python"] == "0.3.36"


@pytest.mark.slow
def test_runner_on_real_models_records_engine_and_stream_rates(store):
    scenario = load_scenario("standard")
    run_id = Runner(store).run(RunConfig(
        scenario, ["llamacpp/smollm2-135m", "llamacpp/gemma3-270m"],
        case_ids=["knowledge-en", "multi-turn-zh"], max_tokens=24,
        backend_options={"n_ctx": 2048}))
    g = store.generations(run_id)
    assert len(g) == 2 * 3 and g.ok.all()
    assert set(g.tokens_source) == {"engine"}
    assert (g.decode_tok_per_s > 0).all() and (g.prompt_tok_per_s > 0).all()
    assert g.stream_decode_tok_per_s.notna().all()
    assert (g.output_tokens <= 24).all()
    assert (g.load_ms.notna().groupby(g.model_spec).sum() == 1).all()
    assert (g.rss_mb > 10).all()
    # the second turn's prompt carries the first turn and its answer
    mt = g[(g.case_id == "multi-turn-zh")].sort_values(["model_spec", "turn"])
    for _, rows in mt.groupby("model_spec"):
        assert rows.prompt_tokens.iloc[1] > rows.prompt_tokens.iloc[0] + rows.output_tokens.iloc[0]


@pytest.mark.slow
def test_each_model_runs_in_its_own_context_under_the_cap_and_probes_are_sized_to_it(store, tmp_path):
    from engine import RunConfig, Runner, load_scenario
    from engine.backends.gguf_meta import GGUFError, trained_context

    gemma, smol = resolve("llamacpp/gemma3-270m"), resolve("llamacpp/smollm2-135m")
    assert (trained_context(gemma.path), trained_context(smol.path)) == (32768, 8192)  # from the files
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGML" + b"\0" * 64)
    with pytest.raises(GGUFError, match="not a GGUF file"):
        trained_context(bad)
    capped = resolve("llamacpp/gemma3-270m", max_context=2048)
    capped.load()
    assert capped.context_tokens == capped.engine_n_ctx == 2048  # the cap wins over 32768
    capped.close()
    # a probe at 25% of the context is a quarter of the context the model actually got
    run_id = Runner(store).run(RunConfig(load_scenario("kb-qa"), ["llamacpp/smollm2-135m"], max_tokens=4,
                                         case_ids=["needle-ctx25-d50", "leave-en"],
                                         backend_options={"max_context": 3000}))
    g = store.query("SELECT case_id, context_tokens, prompt_tokens FROM generations WHERE run_id = ?",
                    [run_id]).set_index("case_id")
    assert (g.context_tokens == 3000).all()  # SmolLM2's own 8192, capped at 3000
    assert 0.15 * 3000 < g.loc["needle-ctx25-d50", "prompt_tokens"] < 0.4 * 3000
