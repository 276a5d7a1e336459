import pytest

from engine.catalog import bundled_models, bundled_path, get_model, load_catalog
from tests.fakeservers import FakeServer, OllamaHandler


def test_catalog_has_the_use_case_models_with_facts_and_sources():
    cat = load_catalog()
    for mid in ("gpt-oss-20b", "llama3-8b", "llama3-70b", "qwen2.5-7b", "mistral-7b", "gemma3-4b"):
        m = cat[mid]
        assert m.license and m.context_tokens and m.sources, mid
        assert "ollama" in m.serve, mid
    gpt = cat["gpt-oss-20b"]
    assert (gpt.params_total_b, gpt.params_active_b, gpt.context_tokens) == (21, 3.6, 131072)
    assert "vllm" in gpt.serve and gpt.license == "Apache-2.0"
    assert cat["llama3-70b"].min_gpu_memory_gb == 80


def test_kv_cache_per_token_is_derived_from_layers_and_kv_heads():
    # 2 x 32 layers x 8 KV heads x 128 dims x 2 bytes = 128 KiB, as published for Llama 3.1 8B
    assert get_model("llama3-8b").kv_bytes_per_token == 128 * 1024
    assert get_model("gemma3-4b").kv_bytes_per_token is None  # unsourced stays unknown
    # 2 x 30 layers x 3 KV heads x 64 x 2 bytes, from the bundled GGUF's own metadata
    assert get_model("smollm2-135m").kv_bytes_per_token == 23040


def test_a_gguf_given_by_path_is_recognised_by_its_file_name(smollm2_path):
    from engine.catalog import entry_for_spec

    assert entry_for_spec(f"llamacpp/{smollm2_path}").id == "smollm2-135m"
    assert entry_for_spec("llamacpp/~/models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf").id == "llama3.1-8b"
    assert entry_for_spec("llamacpp//tmp/unknown.gguf") is None
    assert entry_for_spec("ollama/llama3:8b-instruct").id == "llama3-8b"
    assert entry_for_spec("openai/openai/gpt-oss-20b@http://gpu:8000/v1").id == "gpt-oss-20b"


def test_bundled_models_resolve_to_real_gguf_files():
    assert {m.id for m in bundled_models()} == {"smollm2-135m", "gemma3-270m"}
    for m in bundled_models():
        path = bundled_path(m.id)
        with open(path, "rb") as fh:
            assert fh.read(4) == b"GGUF"


@pytest.mark.parametrize("tag,model", [("llama3:70b", "llama3-70b"), ("llama3:8b-instruct-q4_K_M", "llama3-8b"),
                                       ("llama3.1:8b:latest", "llama3.1-8b"), ("gpt-oss:20b-fp16", "gpt-oss-20b"),
                                       ("qwen3:8b", "qwen3-8b"), ("mystery:1b", None)])
def test_ollamas_usual_tags_resolve_to_the_catalog(tag, model):
    from engine.catalog import find_served

    found = find_served(tag)
    assert (found.id if found else None) == model


def test_a_cloud_plan_knows_llama3_70b_by_its_ollama_tag(tmp_path):
    from engine import cloud

    p = cloud.plan(["standard"], ["ollama/llama3:70b"], hours=1.0)  # before: "not in the catalog"
    assert "A100-80GB (80 GB)" in p.summary() and p.estimated_cost > 0


class OllamaWithYi(OllamaHandler):
    """An Ollama host that has a model the catalog does not list (Yi 34B)."""
    MODELS = OllamaHandler.MODELS | {"yi:34b"}


def test_what_the_catalog_lacks_comes_from_the_ollama_host_that_serves_the_model(store):
    from engine import RunConfig, Runner, cloud, load_scenario
    from engine.recommend import Constraints, CostInputs, recommend

    with pytest.raises(cloud.CloudError, match="ollama/yi:34b is not in the catalog"):  # no host to ask
        cloud.plan(["standard"], ["ollama/yi:34b@http://127.0.0.1:9"], hours=1.0)
    with FakeServer(OllamaWithYi) as srv:
        p = cloud.plan(["standard"], [f"ollama/yi:34b@{srv.url}"], hours=1.0)
        Runner(store).run(RunConfig(load_scenario("standard"), [f"ollama/yi:34b@{srv.url}"],
                                    case_ids=["knowledge-en", "coding-en"], max_tokens=8))
    (m,) = p.clusters[0].models
    # /api/show: 34.39B parameters, 60 layers, 8 KV heads of 7168 / 56 = 128, a 4,096 context; /api/tags: 19.47 GB
    assert (m.model.params_total_b, m.model.layers, m.model.kv_heads, m.model.head_dim, m.model.context_tokens,
            m.model.weights_gb, m.model.quantization) == (34.39, 60, 8, 128, 4096, 19.47, "Q4_K_M")
    assert m.model.license is None and f"/api/show of {srv.url}" in m.model.sources
    kv_gb = 2 * 60 * 8 * 128 * 2 * 4096 / 1e9
    assert 19.47 + kv_gb < m.need_gb < 19.47 + kv_gb + 2  # weights, KV cache at its context, overhead
    assert p.clusters[0].gpu.memory_gb >= m.need_gb
    # the run kept what Ollama said; the decision reads it: memory known, licence still unknown
    spec = f"ollama/yi:34b@{srv.url}"
    row = recommend(store, "standard", cost_inputs=CostInputs(gpu="L4")).cost.set_index("model_spec").loc[spec]
    assert row.memory_need_gb == pytest.approx(m.need_gb, abs=0.5) and row.fits
    d = recommend(store, "standard", constraints=Constraints(licences=["apache-2.0"]))
    assert "licence unknown" in str(d.ranking.set_index("model_spec").loc[spec].reasons)
