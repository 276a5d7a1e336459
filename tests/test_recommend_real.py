"""The verdict on real runs of the bundled models through real llama.cpp: the same GGUF
under two names is too close to call; a model better on every weighted criterion wins."""
import pytest

from engine.recommend import TOO_CLOSE, recommend
from engine.runner import RunConfig, Runner
from engine.scenarios import load_scenario


@pytest.mark.slow
@pytest.mark.real_host_load  # real runs, judged as a user's would be: on a busy host, without its timings
def test_the_same_gguf_by_catalog_id_and_by_path_is_too_close_to_call(store, smollm2_path):
    by_id, by_path = "llamacpp/smollm2-135m", f"llamacpp/{smollm2_path}"
    # 64 tokens an answer, two repeats: with shorter answers or one repeat the relative timing noise of a
    # busy 2-core machine outgrows the tie margin and P(first) wanders (0.12/0.88 seen with 32 tokens, one repeat)
    Runner(store).run(RunConfig(load_scenario("standard"), [by_id, by_path], repeats=2, max_tokens=64,
                                backend_options={"n_ctx": 2048}))
    d = recommend(store, "standard")
    p = d.ranking.set_index("model_spec").p_first
    assert d.verdict == TOO_CLOSE
    # Neither reaches the threshold (0.9). Not a coin toss either, and how far from one depends on the
    # machine: on a quiet host the timings count, and two loads of one file differ a little and
    # consistently within a run (0.35/0.65 and 0.16/0.84 seen on the same 2-core VM); on a busy one they
    # leave the verdict and the equal quality gives 0.50/0.50.
    assert p[by_id] < 0.9 and p[by_path] < 0.9
    # greedy decoding of one file: the same answers, so the same quality on every case
    q = d.criteria.set_index(["model_spec", "criterion"]).value
    assert q[by_id, "quality"] == q[by_path, "quality"]
    # the path is recognised as the bundled model's file: same licence and catalog facts
    assert q[by_id, "context"] == q[by_path, "context"] == 8192


@pytest.mark.slow
def test_a_model_better_on_every_weighted_criterion_ranks_first_with_probability_near_one(store):
    # SmolLM2 (135M) against Gemma 3 270M (twice the size), weighed on what the size decides on any CPU:
    # decode speed on every case, memory and load time. (Which model's answers pass the dev-assistant
    # checks is not a premise that holds on every CPU: greedy decoding takes other paths with other
    # SIMD kernels, and on one machine SmolLM2 passed fix-average-en in every cold run, on another never.)
    good, bad = "llamacpp/smollm2-135m", "llamacpp/gemma3-270m"
    cases = ["fix-average-en", "brackets-zh", "rle-zh", "explain-aliasing-en", "explain-en", "fix-palindrome-zh"]
    # 64 tokens an answer: decode speed is read over every answer whatever its length
    Runner(store).run(RunConfig(load_scenario("dev-assistant"), [good, bad], case_ids=cases, max_tokens=64,
                                backend_options={"n_ctx": 2048}))
    weights = {"throughput": 0.6, "memory": 0.2, "load": 0.2}
    d = recommend(store, "dev-assistant", weights=weights)
    assert set(d.weights) == set(weights)
    values = d.criteria.set_index(["model_spec", "criterion"]).value
    # the premise, measured: better on each weighted criterion, and on each case's decode speed
    assert values[good, "throughput"] > values[bad, "throughput"]
    assert values[good, "memory"] < values[bad, "memory"] and values[good, "load"] < values[bad, "load"]
    speed = store.query("SELECT case_id, model_spec, median(decode_tok_per_s) AS v FROM generations WHERE ok "
                        "GROUP BY ALL").pivot(index="case_id", columns="model_spec", values="v")
    assert (speed[good] > speed[bad]).all(), speed
    assert d.ranking.set_index("model_spec").p_first[good] > 0.95
    # six cases rank it first in nearly every resample, yet name no winner: fewer than MIN_CASES
    assert d.verdict == TOO_CLOSE and d.more_cases["note"].startswith("only 6 cases: a winner needs at least 10")
