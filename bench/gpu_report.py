"""The figures of bench/gpu_check.sh: the standard scenario on both bundled models, all layers on
the GPU, then on the CPU; per model load, TTFT, decode tokens/s, peak VRAM and the share of the
bandwidth bound, and the GPU/CPU ratios."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import RunConfig, Runner, Store, load_scenario  # noqa: E402
from engine.bound import shares  # noqa: E402
from engine.store import run_facts  # noqa: E402

MODELS = ["llamacpp/smollm2-135m", "llamacpp/gemma3-270m"]


def measure(store: Store, layers: int) -> dict[str, dict]:
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), MODELS,
                                         backend_options={"n_gpu_layers": layers, "max_context": 8192}))
    g = store.query("SELECT * FROM generations WHERE run_id = ? AND ok", [run_id])
    run = store.get_run(run_id)
    if run is None:
        raise SystemExit(f"no run {run_id} in {store.path}")
    bound = shares(g, {run_id: run_facts(run)})
    share = dict(zip(bound.model_spec, bound.bound_share)) if not bound.empty else {}
    out = {}
    for spec, m in g.groupby("model_spec"):
        out[spec] = {"load_s": m.load_ms.dropna().sum() / 1000, "ttft_ms": m.ttft_ms.median(),
                     "decode_tok_per_s": m.decode_tok_per_s.median(), "peak_vram_mb": m.peak_vram_mb.max(),
                     "bound_share": share.get(spec)}
    return out


def main() -> int:
    store = Store(Path(tempfile.mkdtemp(prefix="modelpick-gpu-")) / "gpu.duckdb")
    gpu, cpu = measure(store, -1), measure(store, 0)
    for spec in MODELS:
        g, c = gpu[spec], cpu[spec]
        print(f"{spec}: GPU load {g['load_s']:.2f} s, TTFT {g['ttft_ms']:.0f} ms, "
              f"decode {g['decode_tok_per_s']:.0f} tok/s, "
              f"peak VRAM {g['peak_vram_mb']:.0f} MB, bound share {g['bound_share'] or float('nan'):.0%} | "
              f"CPU TTFT {c['ttft_ms']:.0f} ms, decode {c['decode_tok_per_s']:.0f} tok/s | "
              f"decode GPU/CPU {g['decode_tok_per_s'] / c['decode_tok_per_s']:.1f}x, "
              f"TTFT CPU/GPU {c['ttft_ms'] / g['ttft_ms']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
