"""A server's own counters beside ours: its Prometheus `/metrics` (vLLM, llama.cpp's llama-server with
`--metrics`, SGLang) read before and after a run or a sweep level, and the difference kept.

The text format is parsed by prometheus_client's parser. From the difference: requests, prompt and
generated tokens, the server's TTFT, end-to-end and queue time (mean, and p50/p95 interpolated in the
histogram's buckets), and prefix-cache hits. A `/metrics` that is absent, malformed or went backwards
(the server restarted) is recorded as such, never a failed run.
"""
from __future__ import annotations

import math
from urllib.parse import urlsplit, urlunsplit

# what each figure is called by the servers that have it (summed over their labels)
COUNTERS = {
    "requests": ("vllm:request_success_total", "sglang:num_requests_total"),  # llama-server counts none
    "prompt_tokens": ("vllm:prompt_tokens_total", "sglang:prompt_tokens_total", "llamacpp:prompt_tokens_total"),
    "generation_tokens": ("vllm:generation_tokens_total", "sglang:generation_tokens_total",
                          "llamacpp:tokens_predicted_total"),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total",
                          "llamacpp:prompt_tokens_cached_total"),
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"),
    "prompt_seconds": ("llamacpp:prompt_seconds_total",),
    "generation_seconds": ("llamacpp:tokens_predicted_seconds_total",),
}
HISTOGRAMS = {
    "ttft": ("vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds"),
    "e2e": ("vllm:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds"),
    "queue": ("vllm:request_queue_time_seconds",),
}


def metrics_url(server_url: str) -> str:
    """`/metrics` at the server's root (an OpenAI base URL ends in /v1)."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/metrics", "", ""))


def parse(text: str) -> dict:
    """Counters (summed over labels) and histograms ({"buckets": [(le, cumulative count)], "sum", "count"})
    by the names above; ValueError for text that is not the exposition format."""
    from prometheus_client.parser import text_string_to_metric_families

    counters: dict[str, float] = {}
    hists: dict[str, dict] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as exc:  # noqa: BLE001 - the parser's own errors are of several kinds
        raise ValueError(f"not Prometheus text: {exc}") from None
    for fam in families:
        for sample in fam.samples:
            name, value = sample.name, float(sample.value)
            if not math.isfinite(value) and not (name.endswith("_bucket") and value == math.inf):
                continue
            base, _, part = name.rpartition("_")
            if part in ("bucket", "sum", "count") and base in _HIST_NAMES:
                h = hists.setdefault(base, {"buckets": {}, "sum": 0.0, "count": 0.0})
                if part == "bucket":
                    le = float(sample.labels.get("le", "inf"))
                    h["buckets"][le] = h["buckets"].get(le, 0.0) + value
                else:
                    h[part] += value
            else:
                counters[name] = counters.get(name, 0.0) + value
    return {"counters": counters, "histograms": hists}


_HIST_NAMES = {n for names in HISTOGRAMS.values() for n in names}


def scrape(server_url: str, headers: dict | None = None, timeout_s: float = 5.0) -> dict:
    """The server's metrics now, or {"error": why} (absent, refused, malformed); `headers` as the
    backend sends them (its API key: the server is the same)."""
    import httpx

    from .backends import http

    url = metrics_url(server_url)
    try:
        with http.client(url, timeout=timeout_s, headers=headers or {}) as c:
            r = c.get(url)
        if r.status_code != 200:
            return {"error": f"{url}: HTTP {r.status_code} (no /metrics; llama-server needs --metrics)"}
        return parse(r.text)
    except (httpx.HTTPError, OSError, ValueError, http.Refused) as exc:
        return {"error": f"{url}: {exc}"}


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """A quantile from cumulative bucket counts, linear within the bucket (as Prometheus does)."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank, prev_le, prev_n = q * total, 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / (n - prev_n) if n > prev_n else 0)
        prev_le, prev_n = le, n
    return prev_le


def difference(before: dict, after: dict) -> dict:
    """What the server counted between two scrapes, as figures with units in the names; {"error"} where
    either scrape failed or a counter went backwards (the server restarted in between)."""
    if "error" in before or "error" in after:
        return {"error": before.get("error") or after.get("error")}
    out: dict = {}
    cb, ca = before["counters"], after["counters"]
    for figure, names in COUNTERS.items():
        name = next((n for n in names if n in ca), None)
        if name is None:
            continue
        d = ca[name] - cb.get(name, 0.0)
        if d < 0:
            return {"error": f"{name} went from {cb[name]:g} to {ca[name]:g}: the server restarted"}
        out[figure] = d
    for figure, names in HISTOGRAMS.items():
        name = next((n for n in names if n in after["histograms"]), None)
        if name is None:
            continue
        hb = before["histograms"].get(name, {"buckets": {}, "sum": 0.0, "count": 0.0})
        ha = after["histograms"][name]
        count = ha["count"] - hb["count"]
        if count < 0:
            return {"error": f"{name} went backwards: the server restarted"}
        if count == 0:
            continue
        buckets = sorted((le, n - hb["buckets"].get(le, 0.0)) for le, n in ha["buckets"].items())
        out[f"{figure}_ms_mean"] = (ha["sum"] - hb["sum"]) / count * 1000
        for q in (0.5, 0.95):
            v = _quantile(buckets, q)
            out[f"{figure}_ms_p{round(q * 100)}"] = None if v is None else v * 1000
        out[f"{figure}_count"] = count
    if out.get("prefix_cache_queries"):
        out["prefix_cache_hit_rate"] = out.get("prefix_cache_hits", 0.0) / out["prefix_cache_queries"]
    if out.get("generation_seconds"):
        out["server_decode_tok_per_s"] = out.get("generation_tokens", 0.0) / out["generation_seconds"]
    return out
