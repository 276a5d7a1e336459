import streamlit as st

from engine import charts, compare, judging, ratings, report, sweep
from engine.i18n import say
from engine.textsafe import Markdown
from pages._shared import csv, entry_guard, fmt, labeller, lang, scenario_label, spec, store, table, text, tr

entry_guard()

st.title(tr("nav_compare"))
s = store()


def sweep_section() -> None:
    """Load sweeps: throughput, goodput and latency percentiles against concurrency."""
    sweeps = sweep.sweeps(s)
    if sweeps.empty:
        return
    st.subheader(tr("cmp_sweeps"))
    sweep_ids = sweeps.sweep_id.tolist()
    wanted = st.session_state.get("compare_sweep")
    by_id = sweeps.set_index("sweep_id")
    status = labeller()
    sweep_id = st.selectbox(tr("cmp_sweep"), sweep_ids, index=sweep_ids.index(wanted) if wanted in sweep_ids else 0,
                            format_func=lambda i: f"{i} · {by_id.model_spec[i]} · {status(by_id.status[i])}",
                                placeholder=tr("choose_option"))
    levels = sweep.sweep_levels(s, sweep_id)
    if not levels.empty:
        slower = sweep.saturated_from(levels)
        if slower:
            st.warning(tr("cmp_sweep_saturated", c=slower[0], lower=slower[1]))
        st.altair_chart(charts.sweep_chart(levels, lang()), width="stretch")
        table(levels.drop(columns=["sweep_id", "slo_json"]))
        st.download_button(tr("cmp_download_metrics"), csv(levels), "sweep.csv", "text/csv", key="sweep-csv")


runs = compare.runs_table(s, limit=200)
if runs.empty:
    st.info(tr("cmp_empty"))
    sweep_section()  # a sweep needs no run
    if st.button(tr("cmp_go_run")):
        st.switch_page("pages/run.py")
    st.stop()

mode = st.radio(tr("cmp_source"), ["run", "scenario"], horizontal=True, key="cmp_mode",
                format_func=labeller("cmp_source_{}"))
run_id = None
if mode == "run":
    run_ids = runs.run_id.tolist()
    wanted = st.session_state.get("compare_run")
    labels = {r.run_id: f"{r.run_id} · {r.scenario_id} · {tr(r.status)} · "
              f"{', '.join(str(m) for m in (r.models if r.models is not None else []) if m) or tr('cmp_run_starting')}"
              for r in runs.itertuples()}
    run_id = st.selectbox(tr("cmp_run"), run_ids, index=run_ids.index(wanted) if wanted in run_ids else 0,
                          format_func=lambda r: labels.get(r, str(r)), placeholder=tr("choose_option"))
    scenario_id = runs.set_index("run_id").scenario_id[run_id]
    gens, checks = compare.load_results(s, run_id=run_id)
else:
    scenario_id = st.selectbox(tr("scenario"), compare.scenario_ids_with_runs(s), format_func=scenario_label(),
                               placeholder=tr("choose_option"))
    gens, checks = compare.load_results(s, scenario_id=scenario_id)

if gens.empty:
    st.info(tr("cmp_no_generations"))
    st.stop()

models = sorted(gens.model_spec.unique())
for busy_run, pct in compare.busy_runs(s, sorted(gens.run_id.unique())):
    st.warning(tr("cmp_busy_host", run_id=busy_run, pct=f"{pct:.0f}"))
failed = gens[~gens.ok]
if not failed.empty:
    st.warning(tr("cmp_failed_generations", n=len(failed), total=len(gens)))

st.subheader(tr("cmp_metrics"))
st.caption(tr("cmp_metrics_help"))
result = compare.metrics(gens, checks, scenario_id)
shown = result["wide"].assign(winner=result["wide"].winner.fillna("–")).rename(columns={"row": "metric"})
table(shown, height="content")  # whole: the per-category rows must not hide behind a scroll bar
d1, d2, d3 = st.columns(3)
d1.download_button(tr("cmp_download_metrics"), csv(result["table"]), "metrics.csv", "text/csv")
d2.download_button(tr("cmp_download_generations"), csv(gens), "generations.csv", "text/csv")
d3.download_button(tr("cmp_download_checks"), csv(checks), "check_results.csv", "text/csv")
if st.button(tr("home_open_recommend")):
    st.session_state.rec_scenario = scenario_id
    st.switch_page("pages/recommend.py")

tools, silent = compare.tool_use(gens, checks)
if not tools.empty:
    st.subheader(tr("cmp_tools"))
    st.caption(tr("cmp_tools_help"))
    for m, n in silent.items():
        st.warning(tr("cmp_tools_silent", model=Markdown(spec(m)), n=n))
    table(tools.round(3))
    if not any(c.startswith("pass^") for c in tools.columns):
        st.caption(tr("cav_needs_repeats"))

if not result["categories"].empty:
    st.subheader(tr("cmp_quality"))
    st.altair_chart(charts.category_score_chart(result["categories"], lang()), width="stretch")
    table(result["categories"].round(3))

if run_id:
    pairs = judging.pair_summary(s, run_id)
    if not pairs.empty:
        st.markdown(f"**{tr('cmp_judge_pairs')}**")
        table(pairs.round(2))

recall = compare.retrieval_recall(s, scenario_id)
if not recall.empty:
    st.markdown(f"**{tr('cmp_retrieval')}**")
    st.caption(tr("cmp_retrieval_help"))
    table(recall.round(2))

st.subheader(tr("cmp_human"))
agreement = compare.judge_agreement_table(s, scenario_id, lang())
if not agreement.empty:
    st.markdown(f"**{tr('cmp_judge_agreement')}**")
    st.caption(tr("cmp_judge_agreement_help"))
    table(agreement.round(2))
human = compare.human_ratings(s, scenario_id, run_id if mode == "run" else None)
if human["ab"].empty and human["stars"].empty:
    st.caption(tr("cmp_no_human"))
if not human["ab"].empty:
    st.markdown(f"**{tr('cmp_human_ab')}**")
    table(human["ab"].round(0))
if not human["stars"].empty:
    st.markdown(f"**{tr('cmp_human_stars')}**")
    stars = human["stars"]
    table(stars.assign(stars_shown=[ratings.stars_text(r.stars_mean, r.ci_low, r.ci_high) for r in stars.itertuples()])
          [["model_spec", "dimension", "stars_shown", "ratings", "raters"]])

counted = compare.server_beside_client(s, gens)
if not counted.empty:
    st.markdown(f"**{tr('cmp_server_counters')}**")
    for r in counted.itertuples():
        if r.added_ms is not None and r.added_ms == r.added_ms:
            st.caption(tr("cmp_server_ttft", model=r.model_spec, ours=f"{r.ttft_ms:.0f}",
                          theirs=f"{r.server_ttft_ms_p50:.0f}", added=f"{r.added_ms:.0f}"))
    table(counted.round(1))

beside = compare.engine_beside_client(gens)
if not beside.empty:
    st.markdown(f"**{tr('cmp_engine_beside')}**")
    st.caption(tr("cmp_engine_beside_help"))
    table(beside.round(2))

res = compare.resources(gens)
if not res.empty:
    st.markdown(f"**{tr('cmp_resources')}**")
    table(res.round(1))
    st.caption(tr("cmp_memory_two_figures"))
    if res[["peak_vram_mb", "mean_gpu_util_pct"]].isna().all().all():
        st.caption(tr("cmp_no_gpu"))
    elsewhere = res.model_spec[res.peak_rss_mb.isna()].tolist() if "peak_rss_mb" in res else []
    if elsewhere:
        st.caption(tr("cmp_no_process_memory", models=Markdown(", ".join(spec(m) for m in elsewhere))))

both = compare.cold_and_warm(s, scenario_id)
if not both.empty:
    st.markdown(f"**{tr('cmp_cold_warm')}**")
    table(both.round(2))

bound = compare.hardware(s, gens)
if not bound.empty:
    st.markdown(f"**{tr('rep_bound')}**")
    for line in report.hardware_lines(bound.to_dict("records"), tr, lang()):
        st.caption(text(line))

st.subheader(tr("cmp_charts"))
c1, c2 = st.columns(2)
c1.altair_chart(charts.ttft_chart(gens, lang()), width="stretch")
c2.altair_chart(charts.latency_chart(gens, lang()), width="stretch")
st.altair_chart(charts.throughput_chart(gens, lang()), width="stretch")

hist = compare.history(s, models, scenario_id)
if hist.run_id.nunique() > 1:
    st.subheader(tr("chart_history"))
    if hist.runs_in_all.iloc[0] > hist.run_id.nunique():
        st.caption(tr("cmp_history_latest", n=hist.run_id.nunique(), total=int(hist.runs_in_all.iloc[0])))
    metric = st.selectbox(tr("metric"), ["ttft_ms_p50", "e2e_ms_p50", "decode_tok_per_s_p50", "quality"],
                          format_func=labeller(), placeholder=tr("choose_option"))
    st.altair_chart(charts.history_chart(hist, metric, lang()), width="stretch")

sweep_section()

st.subheader(tr("cmp_answers"))
for item in compare.answers(gens, checks):
    title = f"{text(item['case_id'])} · {tr(item['category'])}" + (
        f" · {tr('scen_turn', n=item['turn'] + 1)}" if item["turn"] else "")
    with st.expander(title):
        cols = st.columns(len(item["models"]))
        for col, ans in zip(cols, item["models"]):
            col.markdown(spec(ans["model_spec"]))
            if ans["exceeds_context"]:
                col.warning(tr("exceeds_context_msg"))
                col.caption(text(ans["error"] or ""))
            elif not ans["ok"]:
                col.error(tr("cmp_generation_failed"))
                col.text(ans["error"] or "")
            for step in ans["steps"] or []:  # a tool case: the conversation, calls and results as plain text
                if len(ans["steps"]) > 1 or step["calls"]:
                    col.caption(tr("cmp_step", n=step["step"] + 1))
                if step.get("text") and step is not ans["steps"][-1]:
                    col.text(step["text"])
                for call in step["calls"]:
                    col.code(f"{call['name']}({call['arguments']})" + (f"\n# {call['error']}" if call["error"] else ""),
                             language=None)
                for res in step["results"]:
                    col.text(f"→ {res['name']}: {res['result'][:600]}")
            col.text(ans["text"] or "–")  # model output: plain text, never HTML
            if ans["steps"] and ans["tool_ms"] == ans["tool_ms"] and ans["tool_ms"] is not None:
                col.caption(tr("cmp_tool_time", ms=fmt(ans["tool_ms"], 0)))
            col.caption(tr("cmp_answer_timing", ttft=fmt(ans["ttft_ms"], 0), e2e=fmt(ans["e2e_ms"], 0)))
            if ans["checks"]:
                col.dataframe([{tr("check"): tr(c["check_type"]), tr("passed"): "✅" if c["passed"] else "❌",
                                tr("score"): round(c["score"], 2), tr("detail"): say(c["detail"], lang())}
                               for c in ans["checks"]], hide_index=True)
