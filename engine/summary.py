"""Per-model figures of a run: medians and p95 of the timings, throughput, check pass rate."""
from __future__ import annotations

from .store import Store

_PER_MODEL = """
WITH g AS (SELECT * FROM generations WHERE run_id = ?),
c AS (SELECT model_spec, avg(passed::INT) AS check_pass_rate,
             sum(score * weight) / nullif(sum(weight), 0) AS check_score
      FROM check_results WHERE run_id = ? GROUP BY model_spec)
SELECT g.model_spec,
       count(*) AS generations,
       sum(ok::INT) AS ok_generations,
       max(load_ms) AS load_ms,
       median(ttft_ms) AS ttft_ms_p50,
       quantile_cont(ttft_ms, 0.95) AS ttft_ms_p95,
       median(e2e_ms) AS e2e_ms_p50,
       quantile_cont(e2e_ms, 0.95) AS e2e_ms_p95,
       median(decode_tok_per_s) AS decode_tok_per_s_p50,
       median(stream_decode_tok_per_s) AS stream_decode_tok_per_s_p50,
       median(prompt_tok_per_s) AS prompt_tok_per_s_p50,
       median(chars_per_s) AS chars_per_s_p50,
       max(rss_mb) AS rss_mb,
       max(vram_mb) AS vram_mb,
       any_value(c.check_pass_rate) AS check_pass_rate,
       any_value(c.check_score) AS check_score
FROM g LEFT JOIN c USING (model_spec)
GROUP BY g.model_spec ORDER BY g.model_spec
"""

_PER_CATEGORY = """
SELECT cr.model_spec, g.category, avg(cr.passed::INT) AS check_pass_rate,
       sum(cr.score * cr.weight) / nullif(sum(cr.weight), 0) AS check_score
FROM check_results cr JOIN generations g
  USING (run_id, model_spec, case_id, repeat, turn)
WHERE cr.run_id = ?
GROUP BY ALL ORDER BY ALL
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
    models = store.query(_PER_MODEL, [run_id, run_id])
    cats = store.query(_PER_CATEGORY, [run_id])
    from .compare import quality

    stars = quality(store.generations(run_id), store.check_results(run_id), run["scenario_id"])["stars"]
    out_models = []
    for rec in models.to_dict("records"):
        mine = cats[cats.model_spec == rec["model_spec"]]
        rec["categories"] = {r["category"]: {"check_pass_rate": r["check_pass_rate"],
                                             "check_score": r["check_score"]}
                             for r in mine.to_dict("records")}
        # the use case's star rows with bootstrap 95% intervals of the case scores
        rec["stars"] = {r["row"]: {k: _plain(r[k]) for k in ("stars", "score", "ci_low", "ci_high", "n")}
                        for r in stars[stars.model_spec == rec["model_spec"]].to_dict("records")}
        out_models.append({k: _plain(v) for k, v in rec.items()})
    return {"run_id": run_id, "scenario_id": run["scenario_id"], "status": run["status"],
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
