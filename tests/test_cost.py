"""Cost arithmetic against worked examples (figures from gpu_model_facts.md)."""
import pytest

from engine import cost
from engine.catalog import get_model
from engine.recommend import CostInputs, recommend
from tests.conftest import make_run


def test_memory_fit_weights_plus_kv_cache_plus_overhead():
    fit = cost.memory_fit(get_model("llama3.1-8b"), context_tokens=8192)
    # 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 128 KiB per token -> 1.07 GB at 8K
    assert fit.kv_gb == pytest.approx(1.0737, abs=1e-3)
    assert fit.total_gb == pytest.approx(4.92 + 1.0737 + 1.0, abs=1e-3)
    four = cost.memory_fit(get_model("llama3.1-8b"), context_tokens=8192, concurrency=4)
    assert four.kv_gb == pytest.approx(4 * fit.kv_gb)
    unknown = cost.memory_fit(get_model("gemma3-4b"), context_tokens=8192)  # layer/head figures unsourced
    assert unknown.total_gb is None and "unknown" in unknown.describe()
    assert cost.memory_fit(None, 4096).total_gb is None


def test_cheapest_gpu_that_fits_across_currencies():
    book = cost.price_book()
    gpu, offer = cost.cheapest_fit(book, 7.0)
    assert (gpu.id, offer.provider, offer.tier, offer.price_per_hour) == ("RTX3090", "RunPod", "community", 0.22)
    gpu, offer = cost.cheapest_fit(book, 45.0)  # Llama 70B Q4: needs an 80 GB card
    assert gpu.memory_gb >= 45 and offer.price_per_hour == 1.39
    assert cost.cheapest_fit(book, 500.0) is None
    # a CNY offer is compared after conversion at the stated rate
    t4 = book.cheapest_offer("T4", "USD")
    assert t4.currency == "CNY" and 3.71 / 7.1 < 0.526


def test_cost_per_request_per_token_monthly_and_session():
    cap = cost.Capacity(req_per_s=0.5, output_tok_per_s=100, concurrency=1, source="sequential run")
    out = cost.costs(1.0, cap, cost.Traffic(requests_per_day=10_000, peak_concurrency=4, hours_online_per_day=24))
    assert out["cost_per_1k_requests"] == pytest.approx(1000 / 1800)
    assert out["cost_per_million_output_tokens"] == pytest.approx(1e6 / 360_000)
    # 10,000 a day is 0.116 req/s, 0.35 at a peak three times the mean: one GPU at 0.5 req/s, not one per
    # concurrent request
    assert out["replicas"] == 1 and out["monthly_cost"] == pytest.approx(24 * 30)
    busy = cost.costs(1.0, cap, cost.Traffic(requests_per_day=200_000, peak_concurrency=1, hours_online_per_day=10,
                                             peak_to_mean=1.0))
    assert busy["replicas"] == 12  # 200,000 / 36,000 s = 5.56 req/s at 0.5 req/s each
    peaky = cost.costs(1.0, cap, cost.Traffic(requests_per_day=200_000, hours_online_per_day=10))
    assert peaky["replicas"] == 34  # 16.7 req/s at the peak
    with pytest.raises(cost.CostError, match="peak_to_mean"):
        cost.Traffic(peak_to_mean=0.5).validate()
    assert cost.session_cost(1.006, 2) == pytest.approx(2.012)  # A10G on AWS for the two-hour test
    assert cost.session_cost(3.0, 2) == 6.0  # the use case: ~3 CNY/h, ~6 CNY per model


def test_bandwidth_bound_uses_active_parameters():
    book = cost.price_book()
    a10g = book.gpu("A10G")
    assert cost.bandwidth_bound_tok_per_s(get_model("llama3.1-8b"), a10g) == pytest.approx(600 / 4.92)
    assert cost.bandwidth_bound_tok_per_s(get_model("gpt-oss-20b"), a10g) == pytest.approx(600 / (11.6 * 3.6 / 21))
    est = cost.estimated_capacity(get_model("llama3.1-8b"), a10g, mean_output_tokens=100)
    assert est.estimated and est.output_tok_per_s == pytest.approx(0.7 * 600 / 4.92)


def test_saved_prices_override_shipped_ones_and_never_touch_the_file(store):
    before = cost.PRICES_PATH.read_bytes()
    cost.save_price(store, "A10G", "AutoDL", "on-demand", 1.8, "CNY", source="console, seen today")
    cost.save_price(store, "L4", "RunPod", "secure", 0.39, "USD")
    book = cost.price_book(store)
    l4 = [o for o in book.offers if o.gpu == "L4" and o.provider == "RunPod"]
    assert len(l4) == 1 and l4[0].price_per_hour == 0.39 and l4[0].edited
    assert book.cheapest_offer("A10G", "CNY").provider == "AutoDL"
    assert cost.PRICES_PATH.read_bytes() == before
    with pytest.raises(cost.CostError, match="price_per_hour.*-1"):
        cost.save_price(store, "A10G", "X", "on-demand", -1, "USD")
    with pytest.raises(cost.CostError, match="currency"):
        cost.save_price(store, "A10G", "X", "on-demand", 1, "EUR")
    with pytest.raises(cost.CostError, match="memory_gb"):
        cost.save_price(store, "B200", "X", "on-demand", 5, "USD")
    assert len(store.query("SELECT * FROM gpu_prices")) == 2  # nothing stored for bad input


def test_recommend_costs_measured_on_the_gpu_it_ran_on_else_estimated(store):
    figs = {f"c{i}": [(0.8, 100, 2000, 50)] for i in range(10)}
    make_run(store, "standard", {"ollama/llama3.1:8b": figs, "ollama/gpt-oss:20b": figs},
             host={"gpus": [{"name": "NVIDIA A10G", "memory_total_mb": 23028}]})
    d = recommend(store, "standard", cost_inputs=CostInputs(gpu="A10G"))
    c = d.cost.set_index("model_spec")
    # measured on an A10G: sequential capacity 1 request per 2 s; the cheapest A10G offer is
    # AWS China Ningxia at 6.70 CNY/h, converted at the stated 7.1 CNY/USD
    assert c.capacity_source["ollama/llama3.1:8b"] == "sequential run"
    assert c.price_per_hour["ollama/llama3.1:8b"] == pytest.approx(6.70 / 7.1)
    assert c.cost_per_1k_requests["ollama/llama3.1:8b"] == pytest.approx(6.70 / 7.1 / 1800 * 1000)
    assert "converted from CNY" in c.notes["ollama/llama3.1:8b"]
    on_l4 = recommend(store, "standard", cost_inputs=CostInputs(gpu="L4")).cost.set_index("model_spec")
    assert on_l4.capacity_source["ollama/llama3.1:8b"] == "estimated"
    assert "estimated" in on_l4.notes["ollama/llama3.1:8b"]
    cny = recommend(store, "standard", cost_inputs=CostInputs(gpu="A10G", currency="CNY")).cost
    assert cny.set_index("model_spec").price_per_hour["ollama/gpt-oss:20b"] == 6.70
