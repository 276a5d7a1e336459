"""What the Compare page shows: generations of a run (or the latest per model for a
scenario), the decision table from engine.recommend, answers side by side, and the
history of a model across runs."""
from __future__ import annotations

import json

import pandas as pd

from .recommend import cold_and_warm  # noqa: F401 (the Compare page's, computed where the decision is)
from .store import Store, run_facts


def runs_table(store: Store, limit: int = 50) -> pd.DataFrame:
    return store.list_runs(limit)


def scenario_ids_with_runs(store: Store) -> list[str]:
    return store.query("SELECT DISTINCT scenario_id FROM runs ORDER BY 1").scenario_id.tolist()


def load_results(store: Store, run_id: str | None = None,
                 scenario_id: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(generations, check_results) of one run, or of the latest run of each model for a scenario."""
    from .recommend import load_results as load

    return load(store, run_id=run_id, scenario_id=scenario_id)


def metrics(gens: pd.DataFrame, checks: pd.DataFrame, scenario_id: str) -> dict[str, pd.DataFrame]:
    """The decision table of these generations from engine.recommend (values with 95%
    intervals over cases, a winner only beyond the noise, else "tie"), its wide form, and
    quality per category."""
    from .recommend import decision_table, evidence_from_frames, table_wide

    if gens.empty:
        empty = pd.DataFrame(columns=["row", "winner"])
        return {"table": empty, "wide": empty, "categories": pd.DataFrame()}
    table, categories = decision_table(evidence_from_frames(gens, checks, scenario_id))
    return {"table": table, "wide": table_wide(table), "categories": categories}


def answers(gens: pd.DataFrame, checks: pd.DataFrame) -> list[dict]:
    """Per case and turn: each model's answer (first repeat) with its check verdicts."""
    out = []
    first = gens[gens.repeat == gens.groupby(["model_spec", "case_id"]).repeat.transform("min")]
    for (case_id, turn), rows in first.sort_values(["case_id", "turn"]).groupby(["case_id", "turn"], sort=False):
        per_model = []
        for _, g in rows.sort_values("model_spec").iterrows():
            mine = checks[(checks.run_id == g.run_id) & (checks.model_spec == g.model_spec)
                          & (checks.case_id == case_id) & (checks.turn == turn) & (checks["repeat"] == g["repeat"])]
            per_model.append({
                "model_spec": g.model_spec, "ok": bool(g.ok),
                "error": g.get("error") if isinstance(g.get("error"), str) else None,
                "exceeds_context": bool(pd.notna(g.get("exceeds_context")) and g.get("exceeds_context")),
                "text": g.output_text or "", "ttft_ms": g.ttft_ms, "e2e_ms": g.e2e_ms,
                "checks": mine[["check_type", "passed", "score", "detail"]].to_dict("records"),
                "steps": _steps(g.get("tool_steps_json")), "tool_ms": g.get("tool_ms"),
            })
        out.append({"case_id": case_id, "turn": int(turn), "category": rows.category.iloc[0],
                     "models": per_model})
    return out


def _steps(raw) -> list[dict] | None:
    """A tool case's conversation as stored (tool_steps_json), None for a case without tools."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        steps = json.loads(raw)
    except ValueError:
        return None
    return steps if isinstance(steps, list) else None


def tool_use(gens: pd.DataFrame, checks: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Per model, over its generations on cases with tools: cases, calls made, calls whose arguments could
    not be read, model steps per answer, time in tools, and pass^1..pass^n (the chance that 1..n tries of a
    case all succeed, n the repeats run). And the models none of whose answers carried a call (their
    server or chat template may not pass tools), with how many tool cases that is."""
    from .criteria import pass_curve
    from .scoring import case_scores

    if "tool_calls_json" not in gens.columns:
        return pd.DataFrame(), {}
    tooled = gens[gens.tool_calls_json.notna()]
    if tooled.empty:
        return pd.DataFrame(), {}
    scores = case_scores(tooled, checks[checks.case_id.isin(tooled.case_id.unique())])
    rows = []
    for m, g in tooled.groupby("model_spec"):
        calls = [c for raw in g.tool_calls_json for c in (json.loads(raw) or [])]
        row = {"model_spec": m, "tool_cases": int(g.case_id.nunique()), "calls": len(calls),
               "unreadable_calls": sum(1 for c in calls if c.get("error")),
               "steps_mean": float(g.tool_steps.mean()) if g.tool_steps.notna().any() else None,
               "tool_ms_p50": float(g.tool_ms.median()) if g.tool_ms.notna().any() else None}
        curve = pass_curve(scores, m)
        if len(curve) >= 2:  # one try per case says nothing of consistency: no pass^1 shown as if it did
            for k, v in curve.items():
                row[f"pass^{k}"] = v
        rows.append(row)
    from .recommend import never_called

    return pd.DataFrame(rows), never_called(gens)


TELEMETRY = ("peak_rss_mb", "peak_ram_used_mb", "mean_cpu_pct", "peak_vram_mb", "mean_gpu_util_pct",
             "mean_gpu_power_w")


def resources(gens: pd.DataFrame) -> pd.DataFrame:
    """Per model: the median over its generations of each telemetry figure (empty columns
    stay empty: no GPU, or rows from before telemetry was recorded)."""
    cols = [c for c in TELEMETRY if c in gens.columns]
    if not cols or gens[cols].isna().all().all():
        return pd.DataFrame()
    return gens[gens.ok].groupby("model_spec")[cols].median().reset_index()


def engine_beside_client(gens: pd.DataFrame) -> pd.DataFrame:
    """Per model whose engine reports its own times (llama.cpp in process, llama-server's `timings`):
    medians of our TTFT beside the engine's prompt time, and of our streamed decode rate beside the
    engine's, with their ratio (ours / the engine's: what the stream and the client cost)."""
    if "engine_decode_ms" not in gens.columns:
        return pd.DataFrame()
    ok = gens[gens.ok & gens.engine_decode_ms.notna()]
    if ok.empty:
        return pd.DataFrame()
    # where the engine timed its decode, decode_tok_per_s is its own rate (the recorder prefers it)
    out = ok.assign(engine_decode_tok_per_s=ok.decode_tok_per_s).groupby("model_spec").agg(
        ttft_ms=("ttft_ms", "median"), engine_prompt_ms=("engine_prompt_ms", "median"),
        stream_decode_tok_per_s=("stream_decode_tok_per_s", "median"),
        engine_decode_tok_per_s=("engine_decode_tok_per_s", "median")).reset_index()
    out["decode_ratio"] = out.stream_decode_tok_per_s / out.engine_decode_tok_per_s
    return out


def server_beside_client(store: Store, gens: pd.DataFrame) -> pd.DataFrame:
    """Per run and model whose server counted for itself (/metrics): our TTFT p50 beside the server's,
    and what the network and the client add; requests and tokens as each side counted them."""
    from .recommend import timed_quantile

    rows = []
    for run_id in gens.run_id.unique() if not gens.empty else []:
        host = run_facts(store.get_run(run_id) or {})["host"]
        for spec, counted in (host.get("server_metrics") or {}).items():
            mine = gens[(gens.run_id == run_id) & (gens.model_spec == spec)]
            ours = timed_quantile(mine, spec, "ttft_ms", 0.5)
            theirs = counted.get("ttft_ms_p50")
            rows.append({"model_spec": spec, "run_id": run_id, "ttft_ms": ours, "server_ttft_ms_p50": theirs,
                         "added_ms": ours - theirs if ours is not None and theirs is not None else None,
                         "requests": counted.get("requests"), "ok_requests": int(mine.ok.sum()),
                         "server_error": counted.get("error")})
    return pd.DataFrame(rows)


def hardware(store: Store, gens: pd.DataFrame) -> pd.DataFrame:
    """Per model: decode speed against the bandwidth bound of the machine it ran on."""
    from .bound import shares

    return shares(gens, {run_id: run_facts(store.get_run(run_id) or {}) for run_id in gens.run_id.unique()})


HISTORY_RUNS = 50  # the latest runs on the Across-runs chart: more are neither readable nor quick


def history(store: Store, model_specs: list[str], scenario_id: str, last: int = HISTORY_RUNS) -> pd.DataFrame:
    """Per run and model: median TTFT, latency, decode rate and quality (mean case score), oldest
    first, for the `last` runs of the scenario with any of these models. `runs_in_all` is how many
    such runs there are."""
    if not model_specs:
        return pd.DataFrame()
    from .scoring import case_scores

    with store.held():
        runs = store.query("""
            SELECT run_id, started_at, count(*) OVER () AS runs_in_all FROM runs r
            WHERE scenario_id = ? AND EXISTS (SELECT 1 FROM generations g WHERE g.run_id = r.run_id
                                              AND list_contains(?, g.model_spec))
            ORDER BY started_at DESC LIMIT ?""", [scenario_id, model_specs, last])
        ids = runs.run_id.tolist()
        gens = store.query("SELECT * FROM generations WHERE list_contains(?, run_id) AND list_contains(?, model_spec)",
                           [ids, model_specs])
        checks = store.query("SELECT * FROM check_results WHERE list_contains(?, run_id) "
                             "AND list_contains(?, model_spec)", [ids, model_specs])
    medians = (gens[gens.ok].groupby(["run_id", "model_spec"])[["ttft_ms", "e2e_ms", "decode_tok_per_s"]].median()
               .add_suffix("_p50").reset_index())
    timings = runs.merge(medians, on="run_id").sort_values(["started_at", "model_spec"], ignore_index=True)
    scores = case_scores(gens, checks)
    quality = (scores.groupby(["run_id", "model_spec", "case_id"]).score.mean()
               .groupby(["run_id", "model_spec"]).mean().rename("quality").reset_index())
    return timings.merge(quality, on=["run_id", "model_spec"], how="left")


def busy_runs(store: Store, run_ids: list[str]) -> list[tuple[str, float]]:
    """(run, other processes' median CPU %) for runs whose host was busy while they ran."""
    out = []
    for run_id in run_ids:
        load = run_facts(store.get_run(run_id) or {})["host"].get("load") or {}
        if load.get("busy"):
            out.append((run_id, float(load["others_cpu_pct_median"])))
    return out


def judge_agreement_table(store: Store, scenario_id: str, lang: str = "en") -> pd.DataFrame:
    """Per judge and language (and overall): how often its pairwise verdicts on the scenario's runs
    agree with the blind A/B votes, as share and Cohen's kappa with 95% intervals; where there is no
    figure the row says why (never a NaN shown as a number)."""
    from .i18n import say
    from .ratings import judge_agreement, votes
    from .recommend import _agreement_said, _case_langs

    pairs = store.query("""SELECT p.* FROM judge_pairs p JOIN runs r USING (run_id)
                           WHERE r.scenario_id = ?""", [scenario_id])
    if pairs.empty:
        return pd.DataFrame()
    rows = []
    for judge, a in judge_agreement(votes(store, scenario_id), pairs, _case_langs(scenario_id)).items():
        for where, res in [("all", a), *sorted(a.get("per_lang", {}).items())]:
            rows.append({"judge_spec": judge, "lang": where, "cases": res["cases"], "items": res["items"],
                         "agree_share": res["share"], "agree_ci": _interval(res["share_ci"]),
                         "kappa": res["kappa"], "kappa_ci": _interval(res["kappa_ci"]),
                         "reading": say(_agreement_said(judge, res), lang)})
    return pd.DataFrame(rows)


def _interval(ci) -> str:
    low, high = ci
    return "–" if low is None else f"{low:.2f} – {high:.2f}"


def retrieval_recall(store: Store, scenario_id: str) -> pd.DataFrame:
    """Per run of the scenario whose documents did not fit: the cases given retrieved passages, and of
    those naming their `source`, how many were given it (the recall), so a wrong answer is told apart
    from an answer the model was never shown."""
    runs = store.query("SELECT run_id, config_json FROM runs WHERE scenario_id = ? ORDER BY started_at",
                       [scenario_id])
    rows = []
    for r in runs.itertuples():
        retrieval = (json.loads(r.config_json or "{}") or {}).get("retrieval") or {}
        passages = [v for v in retrieval.values() if not v.get("whole")]
        if not passages:
            continue
        named = [v for v in passages if v.get("source")]
        given = sum(bool(v.get("source_given")) for v in named)
        rows.append({"run_id": r.run_id, "cases": len(retrieval), "retrieved_cases": len(passages),
                     "cases_with_source": len(named), "source_given": given,
                     "recall": given / len(named) if named else None})
    return pd.DataFrame(rows)


def human_ratings(store: Store, scenario_id: str, run_id: str | None = None) -> dict[str, pd.DataFrame]:
    """Blind A/B ratings (Bradley-Terry with 95% CIs) and star averages, for beside the checks."""
    from .ratings import ratings_table, star_summary, votes

    return {"ab": ratings_table(votes(store, scenario_id)),
            "stars": star_summary(store, run_id, None if run_id else scenario_id)}
