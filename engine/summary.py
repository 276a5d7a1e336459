"""Per-model figures of a run: medians and p95 of the timings, throughput, and quality
(mean case score with its interval, from engine.recommend)."""
from __future__ import annotations

from .store import Store

_PER_MODEL = """
WITH g AS (SELECT * FROM generations WHERE run_id = ?)
SELECT g.model_spec,
       count(*) AS generations,
       sum(ok::INT) AS ok_generations,
       max(load_ms) AS load_ms,
       median(decode_tok_per_s) AS decode_tok_per_s_p50,
       median(stream_decode_tok_per_s) AS stream_decode_tok_per_s_p50,
       median(prompt_tok_per_s) AS prompt_tok_per_s_p50,
       median(chars_per_s) AS chars_per_s_p50,
       max(rss_mb) AS rss_mb,
       max(vram_mb) AS vram_mb
FROM g GROUP BY g.model_spec ORDER BY g.model_spec
"""

def latest_run_id(store: Store) -> str | None:
    df = store.query("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
    return None if df.empty else df.iloc[0]["run_id"]


def run_summary(store: Store, run_id: str | None = None) -> dict:
    run_id = run_id or latest_run_id(store)
    if run_id is None:
        raise LookupError(f"no runs in {store.path}")
    run = store.get_run(run_id)
    if run is None:
        raise LookupError(f"no run {run_id!r} in {store.path}")
    models = store.query(_PER_MODEL, [run_id])
    from .recommend import compare_per_case, decision_table, evidence_from_frames, timed_quantile

    gens = store.generations(run_id)
    ev = evidence_from_frames(gens, store.check_results(run_id), run["scenario_id"])
    table, cats = decision_table(ev)
    quality = compare_per_case(ev.per_case["quality"], ev.models, "higher")
    stars = table[table.kind == "stars"].rename(columns={"value": "score"})
    out_models = []
    for rec in models.to_dict("records"):
        m = rec["model_spec"]
        # timings over the generations that answered within the context, as the SLA constraints take them
        timings = {f"{col}_p{round(q * 100)}": timed_quantile(gens, m, col, q)
                   for col in ("ttft_ms", "e2e_ms") for q in (0.5, 0.95)}
        rec.update(timings)
        low, high = quality["ci"].get(m, (None, None))
        # quality: mean weighted check score per case, 95% interval with cases resampled
        rec["quality"] = {"score": quality["values"].get(m), "ci_low": low, "ci_high": high,
                          "n_cases": quality["n"].get(m, 0)}
        rec["categories"] = {r["category"]: {k: _plain(r[k]) for k in ("score", "ci_low", "ci_high", "n")}
                             for r in cats[cats.model_spec == m].to_dict("records")}
        rec["stars"] = {r["row"]: {k: _plain(r[k]) for k in ("stars", "score", "ci_low", "ci_high", "n")}
                        for r in stars[stars.model_spec == m].to_dict("records")}
        out_models.append({k: _plain(v) for k, v in rec.items()})
    from .store import stale_reason

    # a run whose owner died reads as what it is, even from a reader that changes nothing
    dead = stale_reason(run)
    return {"run_id": run_id, "scenario_id": run["scenario_id"],
            "status": "interrupted" if dead else run["status"],
            "error": dead or (run["error"] if isinstance(run["error"], str) else None),
            "started_at": str(run["started_at"]), "models": out_models}


def _plain(value):
    """NaN and numpy scalars to JSON-friendly Python values."""
    if isinstance(value, dict):
        return value
    try:
        if value != value:  # NaN
            return None
    except (TypeError, ValueError):
        return value
    return value.item() if hasattr(value, "item") else value
