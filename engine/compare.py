"""What the Compare and Home pages show: generations of a run (or the latest per model
for a scenario), the metrics table in the shape of the decision, answers side by side,
history of a model across runs, and the leader per scenario."""
from __future__ import annotations

import pandas as pd

from .store import Store

# (key, column, aggregate, better) - the rows of the decision table, in order.
METRIC_ROWS = [
    ("load_s", "load_ms", "load", "lower"),
    ("ttft_ms_p50", "ttft_ms", "median", "lower"),
    ("e2e_ms_mean", "e2e_ms", "mean", "lower"),
    ("e2e_ms_p95", "e2e_ms", "p95", "lower"),
    ("decode_tok_per_s", "decode_tok_per_s", "median", "higher"),
    ("chars_per_s", "chars_per_s", "median", "higher"),
    ("memory_mb", "memory_mb", "max", "lower"),
    ("ok_rate", "ok", "mean", "higher"),
    ("check_pass_rate", "passed", "mean", "higher"),
]

_LATEST_PER_MODEL = """
WITH last AS (
    SELECT g.model_spec, arg_max(g.run_id, r.started_at) AS run_id
    FROM generations g JOIN runs r USING (run_id)
    WHERE r.scenario_id = ?
    GROUP BY g.model_spec)
SELECT g.* FROM generations g JOIN last USING (model_spec, run_id)
"""


def runs_table(store: Store, limit: int = 50) -> pd.DataFrame:
    return store.list_runs(limit)


def scenario_ids_with_runs(store: Store) -> list[str]:
    return store.query("SELECT DISTINCT scenario_id FROM runs ORDER BY 1").scenario_id.tolist()


def load_results(store: Store, run_id: str | None = None,
                 scenario_id: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(generations, check_results) of one run, or of the latest run of each model for a scenario."""
    if run_id:
        gens = store.generations(run_id)
        checks = store.check_results(run_id)
    elif scenario_id:
        gens = store.query(_LATEST_PER_MODEL, [scenario_id])
        pairs = gens[["run_id", "model_spec"]].drop_duplicates()
        checks = store.query(
            "SELECT c.* FROM check_results c JOIN (SELECT unnest(?) AS run_id, unnest(?) AS model_spec) p "
            "USING (run_id, model_spec)", [pairs.run_id.tolist(), pairs.model_spec.tolist()])
    else:
        raise ValueError("give a run id or a scenario id")
    return gens, checks


def _memory(gens: pd.DataFrame) -> pd.Series:
    # GPU memory where measured, else the process memory the model added.
    return gens["vram_mb"].where(gens["vram_mb"].notna() & (gens["vram_mb"] > 0), gens["rss_mb"])


def _aggregate(values: pd.Series, how: str):
    values = values.dropna()
    if values.empty:
        return None
    if how == "median":
        return float(values.median())
    if how == "p95":
        return float(values.quantile(0.95))
    if how == "max":
        return float(values.max())
    return float(values.astype(float).mean())


def _winner(values: dict[str, float | None], better: str) -> str | None:
    known = {m: v for m, v in values.items() if v is not None}
    if len(known) < 2:
        return None
    best = (min if better == "lower" else max)(known.values())
    winners = [m for m, v in known.items() if abs(v - best) <= 1e-9 * max(1.0, abs(best))]
    return winners[0] if len(winners) == 1 else "tie"


def metrics_table(gens: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    """Rows: metric keys (see METRIC_ROWS, then pass rate per category); a column per model,
    `better` (lower/higher) and `winner` (a model, 'tie' or None)."""
    if gens.empty:
        return pd.DataFrame(columns=["metric", "better", "winner"])
    gens = gens.assign(memory_mb=_memory(gens))
    models = sorted(gens.model_spec.unique())
    checks = checks.merge(gens[["run_id", "model_spec", "case_id", "repeat", "turn", "category"]],
                          on=["run_id", "model_spec", "case_id", "repeat", "turn"], how="left")
    rows = []
    for key, col, how, better in METRIC_ROWS:
        vals = {}
        for m in models:
            if col == "passed":
                series = checks.loc[checks.model_spec == m, "passed"]
            elif col == "ok":
                # a prompt beyond the model's context is not a failed generation
                mine = gens[(gens.model_spec == m) & ~gens["exceeds_context"].fillna(False).astype(bool)]
                series = mine["ok"]
            elif how == "load":
                # load time is recorded on a model's first generation of each run
                series = gens.loc[gens.model_spec == m, "load_ms"] / 1000
            else:
                series = gens.loc[gens.model_spec == m, col]
            vals[m] = _aggregate(series, "median" if how == "load" else how)
        rows.append({"metric": key, **vals, "better": better, "winner": _winner(vals, better)})
    for cat in sorted(checks.category.dropna().unique()):
        vals = {m: _aggregate(checks.loc[(checks.model_spec == m) & (checks.category == cat), "passed"], "mean")
                for m in models}
        rows.append({"metric": f"pass_rate:{cat}", **vals, "better": "higher",
                     "winner": _winner(vals, "higher")})
    return pd.DataFrame(rows)


def answers(gens: pd.DataFrame, checks: pd.DataFrame) -> list[dict]:
    """Per case and turn: each model's answer (first repeat) with its check verdicts."""
    out = []
    first = gens[gens.repeat == gens.groupby(["model_spec", "case_id"]).repeat.transform("min")]
    for (case_id, turn), rows in first.sort_values(["case_id", "turn"]).groupby(["case_id", "turn"], sort=False):
        per_model = []
        for _, g in rows.sort_values("model_spec").iterrows():
            mine = checks[(checks.run_id == g.run_id) & (checks.model_spec == g.model_spec)
                          & (checks.case_id == case_id) & (checks.turn == turn) & (checks.repeat == g.repeat)]
            per_model.append({
                "model_spec": g.model_spec, "ok": bool(g.ok), "error": g.error if isinstance(g.error, str) else None,
                "text": g.output_text or "", "ttft_ms": g.ttft_ms, "e2e_ms": g.e2e_ms,
                "checks": mine[["check_type", "passed", "score", "detail"]].to_dict("records"),
            })
        out.append({"case_id": case_id, "turn": int(turn), "category": rows.category.iloc[0],
                     "models": per_model})
    return out


def history(store: Store, model_specs: list[str], scenario_id: str) -> pd.DataFrame:
    """Per run and model: median TTFT, latency, decode rate and pass rate, oldest first."""
    if not model_specs:
        return pd.DataFrame()
    return store.query("""
        WITH c AS (SELECT run_id, model_spec, avg(passed::INT) AS check_pass_rate
                   FROM check_results GROUP BY ALL)
        SELECT g.run_id, r.started_at, g.model_spec,
               median(g.ttft_ms) AS ttft_ms_p50, median(g.e2e_ms) AS e2e_ms_p50,
               median(g.decode_tok_per_s) AS decode_tok_per_s_p50,
               any_value(c.check_pass_rate) AS check_pass_rate
        FROM generations g JOIN runs r USING (run_id) LEFT JOIN c USING (run_id, model_spec)
        WHERE r.scenario_id = ? AND list_contains(?, g.model_spec) AND g.ok
        GROUP BY ALL ORDER BY r.started_at""", [scenario_id, model_specs])


def leaders(store: Store) -> pd.DataFrame:
    """Per scenario, the best model of its latest run: highest weighted check score,
    then lowest median TTFT."""
    return store.query("""
        WITH last AS (SELECT scenario_id, arg_max(run_id, started_at) AS run_id
                      FROM runs WHERE status IN ('done', 'interrupted') GROUP BY scenario_id),
        s AS (SELECT c.run_id, c.model_spec,
                     sum(c.score * c.weight) / nullif(sum(c.weight), 0) AS check_score
              FROM check_results c JOIN last USING (run_id) GROUP BY ALL),
        t AS (SELECT g.run_id, g.model_spec, median(g.ttft_ms) AS ttft_ms_p50,
                     count(*) FILTER (WHERE NOT g.ok) AS failed_generations
              FROM generations g JOIN last USING (run_id) GROUP BY ALL)
        SELECT last.scenario_id, arg_max(t.model_spec, [coalesce(s.check_score, 0), -coalesce(t.ttft_ms_p50, 1e12)]) AS leader,
               max(s.check_score) AS check_score, count(*) AS models, last.run_id
        FROM last JOIN t USING (run_id) LEFT JOIN s USING (run_id, model_spec)
        GROUP BY last.scenario_id, last.run_id ORDER BY last.scenario_id""")


def to_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def quality(gens: pd.DataFrame, checks: pd.DataFrame, scenario_id: str) -> dict[str, pd.DataFrame]:
    """Case scores, per-category scores with 95% CIs, and the use case's star rows."""
    from .scenarios import ScenarioError, load_scenario
    from .scoring import case_scores, category_scores, star_rows

    try:
        langs = {c.id: c.lang for c in load_scenario(scenario_id).cases}
    except ScenarioError:
        langs = {}
    scores = case_scores(gens, checks, langs)
    stars = star_rows(scores)
    return {"cases": scores, "categories": category_scores(scores), "stars": stars,
            "stars_wide": stars_wide(stars)}


def stars_wide(stars: pd.DataFrame) -> pd.DataFrame:
    """The star rows as the decision table shows them: a row per dimension, a column per
    model with "stars (95% low-high)", and the winner when the intervals do not overlap."""
    if stars.empty:
        return pd.DataFrame(columns=["row"])
    out = []
    for row, part in stars.groupby("row", sort=False):
        rec = {"row": row}
        for r in part.itertuples():
            rec[r.model_spec] = f"{r.stars:.1f} ({1 + 4 * r.ci_low:.1f}-{1 + 4 * r.ci_high:.1f})"
        best = part.sort_values("score", ascending=False)
        clear = len(best) > 1 and best.ci_low.iloc[0] > best.ci_high.iloc[1]
        rec["winner"] = best.model_spec.iloc[0] if clear else None
        out.append(rec)
    return pd.DataFrame(out)


def human_ratings(store: Store, scenario_id: str, run_id: str | None = None) -> dict[str, pd.DataFrame]:
    """Blind A/B ratings (Bradley-Terry with 95% CIs) and star averages, for beside the checks."""
    from .ratings import ratings_table, star_summary, votes

    return {"ab": ratings_table(votes(store, scenario_id)), "stars": star_summary(store, run_id)}
