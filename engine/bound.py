"""The hardware bound of decoding: how fast a machine could generate at batch 1, and the share
of it a model reaches.

Decoding one token reads the active weights once and the KV cache of the context so far, so
    bound tok/s = memory bandwidth / (active weight bytes + KV bytes per token x context)
with the context taken at the middle of the answer (prompt + half the output). Weights come
from the catalog (or the GGUF file's size for a file given by path), scaled to the active share
for a mixture of experts; KV bytes from the catalog's layers, KV heads and head size (FP16).
Bandwidth comes from the GPU table for a run on a GPU, or for a CPU run from a short measurement
on first use (a 256 MiB copy, best of five), cached per machine with the command that took it.
"""
from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .catalog import CatalogModel
from .i18n import Msg

CACHE = Path(os.environ.get("MODELPICK_BANDWIDTH_CACHE", str(Path.home() / ".modelpick" / "bandwidth.json")))
COPY_MIB = 256


@dataclass
class Bandwidth:
    gb_per_s: float
    source: str  # "GPU table: H100-80GB" or the measurement and its command


def bytes_per_token(model: CatalogModel | None, context_tokens: float,
                    weights_bytes: float | None = None) -> float | None:
    """Bytes one decode step reads: the active weights plus the KV cache of `context_tokens`."""
    if weights_bytes is None:
        if not model or not model.weights_gb:
            return None
        weights_bytes = model.weights_gb * 1e9
    if model and model.params_active_b and model.params_total_b:
        weights_bytes *= model.params_active_b / model.params_total_b
    kv = (model.kv_bytes_per_token or 0) * max(context_tokens, 0) if model else 0
    return weights_bytes + kv


def bound_tok_per_s(bandwidth_gb_per_s: float, per_token_bytes: float | None) -> float | None:
    return bandwidth_gb_per_s * 1e9 / per_token_bytes if per_token_bytes else None


def measure_cpu_bandwidth(mib: int = COPY_MIB, rounds: int = 5) -> float:
    """Memory bandwidth in GB/s from copying a buffer (read + write: twice its size moved)."""
    import numpy as np

    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def cpu_bandwidth(refresh: bool = False) -> Bandwidth:
    """This machine's measured bandwidth, from the cache when it was measured here before."""
    key = f"{platform.node()} | {_cpu_model()}"
    cached = {}
    try:
        cached = json.loads(CACHE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    if key in cached and not refresh:
        entry = cached[key]
        day = entry.get("measured_on") or (re.findall(r"\d{4}-\d{2}-\d{2}", entry.get("source", "")) or ["?"])[0]
        return Bandwidth(entry["gb_per_s"], _measured(day))
    gbps = measure_cpu_bandwidth()
    day = time.strftime("%Y-%m-%d")
    source = _measured(day)
    cached[key] = {"gb_per_s": round(gbps, 2), "source": str(source), "measured_on": day}
    try:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cached, indent=1), encoding="utf-8")
    except OSError:
        pass  # measured again next time
    return Bandwidth(round(gbps, 2), source)


def _measured(day: str) -> Msg:
    return Msg("bw_measured", day=day, mib=COPY_MIB,
               command="python -c 'from engine.bound import cpu_bandwidth; print(cpu_bandwidth(refresh=True))'")


def _cpu_model() -> str:
    from .hostinfo import _cpu_model as cpu

    return cpu()


def run_bandwidth(host: dict, config: dict, spec: str) -> Bandwidth | None:
    """The bandwidth a model of a run decoded against: a GPU of the table the run's host had
    when the model ran on it (llama.cpp with layers offloaded, or a server on this host), the
    measured CPU bandwidth for llama.cpp on the CPU; None for a server elsewhere."""
    from .backends import BackendError, is_served, parse_spec
    from .cost import gpu_matches, price_book

    try:
        parsed = parse_spec(spec)
        served = is_served(spec)
    except BackendError:  # a backend this machine does not have, or a spec stored before it was refused
        return None
    if not served:  # in a process of the run's (llama.cpp): on the CPU unless layers were offloaded
        offload = (config.get("backend_options") or {}).get("n_gpu_layers", 0)
        on_gpu = bool(offload) and bool(host.get("llama_gpu_offload")) and bool(host.get("gpus"))
        if not on_gpu:
            same_host = host.get("hostname") == platform.node()
            return cpu_bandwidth() if same_host else None
    elif parsed.host and not any(h in parsed.host for h in ("127.0.0.1", "localhost", "[::1]")):
        return None  # the server's machine is not described
    else:
        on_gpu = bool(host.get("gpus"))
    if on_gpu:
        for gpu in price_book().gpus.values():
            if gpu.bandwidth_gb_per_s and gpu_matches(host.get("gpus") or [], gpu):
                return Bandwidth(gpu.bandwidth_gb_per_s, Msg("bw_gpu_table", gpu=gpu.id, source=gpu.source))
    return None


def shares(gens: pd.DataFrame, runs: dict[str, dict]) -> pd.DataFrame:
    """Per model: median decode speed, median bound and the share (median over generations of
    measured / bound), with where the bandwidth came from. `runs` maps run_id to
    {"host": host_json, "config": config_json} as dicts."""
    from .catalog import find_served, get_model

    rows = []
    ok = gens[gens.ok & gens.decode_tok_per_s.notna() & (gens.output_tokens.fillna(0) > 1)]
    for (run_id, spec), g in ok.groupby(["run_id", "model_spec"]):
        info = runs.get(run_id) or {}
        bw = run_bandwidth(info.get("host") or {}, info.get("config") or {}, spec)
        model_name = spec.split("/", 1)[1].split("@")[0]
        model = get_model(model_name) or find_served(model_name)
        if bw is None or model is None:
            continue
        ctx = g.prompt_tokens.fillna(0) + g.output_tokens.fillna(0) / 2
        bounds = [bound_tok_per_s(bw.gb_per_s, bytes_per_token(model, c)) for c in ctx]
        share = [m / b for m, b in zip(g.decode_tok_per_s, bounds) if b]
        if not share:
            continue
        rows.append({"model_spec": spec, "decode_tok_per_s": float(g.decode_tok_per_s.median()),
                     "bound_tok_per_s": float(pd.Series([b for b in bounds if b]).median()),
                     "bound_share": float(pd.Series(share).median()), "bandwidth_gb_per_s": bw.gb_per_s,
                     "bandwidth_source": bw.source})
    return pd.DataFrame(rows)
