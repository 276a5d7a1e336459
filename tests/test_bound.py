"""The decode bound of the hardware, against a hand-computed example and on a real run."""
import json

import pytest

from engine import RunConfig, Runner, load_scenario
from engine.bound import bound_tok_per_s, bytes_per_token, cpu_bandwidth, run_bandwidth, shares
from engine.catalog import get_model


def test_the_bound_by_hand():
    smol = get_model("smollm2-135m")  # 0.098 GB of weights; 30 layers x 3 KV heads x 64 x 2 (K, V) x 2 bytes
    assert smol.kv_bytes_per_token == 2 * 30 * 3 * 64 * 2 == 23_040
    # at 300 tokens of context: 98,000,000 + 23,040 x 300 = 104,912,000 bytes a token
    assert bytes_per_token(smol, 300) == 104_912_000
    # at 20 GB/s: 20e9 / 104,912,000 = 190.6 tokens/s; 95 tokens/s measured is 49.8% of it
    bound = bound_tok_per_s(20.0, bytes_per_token(smol, 300))
    assert bound == pytest.approx(190.64, abs=0.01) and 95 / bound == pytest.approx(0.498, abs=0.001)
    # a mixture of experts reads only its active share of the weights
    oss = get_model("gpt-oss-20b")
    share = oss.params_active_b / oss.params_total_b
    assert bytes_per_token(oss, 0) == pytest.approx(oss.weights_gb * 1e9 * share)


def test_cpu_bandwidth_is_measured_once_and_cached(tmp_path, monkeypatch):
    import engine.bound as b

    monkeypatch.setattr(b, "CACHE", tmp_path / "bw.json")
    first = cpu_bandwidth()
    assert first.gb_per_s > 0.5 and "numpy copy of 256 MiB" in first.source and "python -c" in first.source
    monkeypatch.setattr(b, "measure_cpu_bandwidth", lambda *a, **k: pytest.fail("measured again"))
    assert cpu_bandwidth().gb_per_s == first.gb_per_s  # from the cache, with its command
    assert list(json.loads((tmp_path / "bw.json").read_text()).values())[0]["source"] == first.source


def test_where_the_bandwidth_comes_from():
    h100 = {"hostname": "box", "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_total_mb": 81559}],
            "llama_gpu_offload": True}
    gpu = run_bandwidth(h100, {"backend_options": {"n_gpu_layers": -1}}, "llamacpp/smollm2-135m")
    assert gpu.gb_per_s == 3350 and gpu.source.startswith("GPU table: H100-80GB")
    served = run_bandwidth(h100, {}, "ollama/llama3:8b-instruct")
    assert served.gb_per_s == 3350  # Ollama on this host, which has the GPU
    assert run_bandwidth(h100, {}, "openai/x@http://10.0.0.5:8000/v1") is None  # another machine: unknown
    other_cpu = run_bandwidth({"hostname": "elsewhere"}, {"backend_options": {"n_gpu_layers": 0}},
                              "llamacpp/smollm2-135m")
    assert other_cpu is None  # a CPU run on another machine: not this machine's bandwidth


@pytest.mark.slow
def test_a_real_run_reaches_a_share_of_the_bound_shown_in_the_decision_summary(store):
    from engine.recommend import recommend
    from engine.report import render

    Runner(store).run(RunConfig(load_scenario("standard"), ["llamacpp/smollm2-135m"],
                                case_ids=["knowledge-en", "coding-en"], max_tokens=64))
    d = recommend(store, "standard", n_boot=50)
    (row,) = d.hardware.to_dict("records")
    # below what the memory allows on any machine; the floor catches a unit slip (a factor of 1000), not a
    # slow machine: a quiet 2-core VM reached 0.31, the same VM shared with another test run 0.028
    assert 0.001 < row["bound_share"] < 1.0
    assert row["bound_tok_per_s"] > row["decode_tok_per_s"]
    md = render(d, "md").decode()
    assert "llamacpp/smollm2-135m reaches" in md and "of what this machine allows" in md
    gens = store.query("SELECT * FROM generations")
    assert len(shares(gens, {})) == 0  # without the run's host and config: nothing claimed
