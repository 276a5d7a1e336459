from engine.catalog import bundled_models, bundled_path, get_model, load_catalog


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
    assert get_model("qwen3-8b").kv_bytes_per_token is None  # unsourced stays unknown


def test_bundled_models_resolve_to_real_gguf_files():
    assert {m.id for m in bundled_models()} == {"smollm2-135m", "gemma3-270m"}
    for m in bundled_models():
        path = bundled_path(m.id)
        with open(path, "rb") as fh:
            assert fh.read(4) == b"GGUF"
