import hashlib
import json

import streamlit as st

from engine import catalog, charts, compare, cost, recommend, report
from engine.i18n import say
from engine.scenarios import CRITERIA
from engine.textsafe import prose_text
from pages._shared import entry_guard, labeller, lang, scenario_label, spec, store, summary_table, table, text, tr

entry_guard()

st.title(tr("nav_recommend"))
s = store()
scenario_ids = compare.scenario_ids_with_runs(s)
if not scenario_ids:
    st.info(tr("rec_no_runs"))
    if st.button(tr("cmp_go_run")):
        st.switch_page("pages/run.py")
    st.stop()

scenario_id = st.selectbox(tr("scenario"), scenario_ids, key="rec_scenario", format_func=scenario_label(),
                           placeholder=tr("choose_option"))
defaults = recommend.scenario_weights(scenario_id)

left, right = st.columns([1, 2])
with left:
    st.markdown(f"**{tr('rec_weights')}**")
    st.caption(tr("rec_weights_help"))
    raw = {c: st.slider(tr(f"crit_{c}"), 0.0, 1.0, float(defaults.get(c, 0.0)), 0.05,
                        key=f"w_{scenario_id}_{c}") for c in CRITERIA}
    total = sum(raw.values())
    if total > 0:
        st.caption(" · ".join(f"{tr(f'crit_{c}')} {w / total:.0%}" for c, w in raw.items() if w > 0))
    rec_cache = st.radio(tr("run_cache"), ["cold", "warm"], horizontal=True, key="rec_cache",
                         format_func=labeller("cache_{}"), help=tr("run_cache_help"))
    trust_timings = st.checkbox(tr("rec_trust_timings"), key="rec_trust_timings", help=tr("rec_trust_timings_help"))
    keep_judge = st.checkbox(tr("rec_keep_judge"), key="rec_keep_judge", help=tr("rec_keep_judge_help"))
    with st.expander(tr("rec_constraints")):
        max_vram = st.number_input(tr("rec_max_vram"), 0.0, 2000.0, 0.0, 1.0, key="rec_vram")
        ttft_sla = st.number_input(tr("rec_ttft_sla"), 0.0, 1e6, 0.0, 50.0, key="rec_ttft")
        e2e_sla = st.number_input(tr("rec_e2e_sla"), 0.0, 1e7, 0.0, 100.0, key="rec_e2e")
        known = sorted({m.license for m in catalog.load_catalog().values() if m.license})
        licences = st.multiselect(tr("rec_licences"), known,
                                  key="rec_lic", placeholder=tr("choose_options"))
        min_quality = st.number_input(tr("rec_min_quality"), 0.0, 1.0, 0.0, 0.05, key="rec_minq")
    with st.expander(tr("rec_cost_table")):
        book = cost.price_book(s)
        cheapest = tr("rec_gpu_cheapest")
        gpu = st.selectbox(tr("rec_gpu"), [None, *book.gpus], key="rec_gpu",
                           format_func=lambda g: cheapest if g is None else g, placeholder=tr("choose_option"))
        currency = st.radio(tr("rec_currency"), list(cost.CURRENCIES), horizontal=True, key="rec_cur")
        st.markdown(f"**{tr('rec_traffic')}**")
        traffic = cost.Traffic(
            st.number_input(tr("rec_requests_per_day"), 0, 10**9, 10_000, 1000, key="rec_rpd"),
            int(st.number_input(tr("rec_peak_concurrency"), 1, 10_000, 4, 1, key="rec_peak")),
            st.number_input(tr("rec_hours_online"), 0.0, 24.0, 24.0, 1.0, key="rec_hours"),
            st.number_input(tr("rec_session_hours"), 0.0, 1000.0, 2.0, 0.5, key="rec_session"))

with right:
    try:
        decision = recommend.recommend(
            s, scenario_id, weights=raw,
            constraints=recommend.Constraints(max_vram_gb=max_vram or None, ttft_p95_ms=ttft_sla or None,
                                              e2e_p95_ms=e2e_sla or None, licences=licences or None,
                                              min_quality=min_quality or None),
            cost_inputs=recommend.CostInputs(gpu=gpu, currency=currency, traffic=traffic), cache_mode=rec_cache,
            trust_timings=trust_timings, keep_judge=keep_judge)
    except (recommend.RecommendError, cost.CostError) as exc:
        st.error(text(str(exc)))
        st.stop()
    here = lang()
    body = report.build(decision, here, generated_at="-")  # once: the tables, the facts and the fingerprint
    summary = report.tables(decision, here, body)
    verdict = report.verdict_text(decision, here, name=spec)
    if decision.winner:
        st.success(verdict)
    else:
        st.warning(verdict)
    facts = body["scenario"]
    st.caption(tr("rep_scenario_line", name=facts["name"], cases=facts["cases"], repeats=facts["repeats"],
                  models=len(facts["models"])))
    if decision.more_cases.get("note"):
        st.caption(text(say(decision.more_cases["note"], here)))
    for w in decision.warnings:  # what bears on the verdict stands beside it, not only among the caveats
        st.warning(prose_text(say(w, here)))
    for line in report.stars_lines(body, report._Lang(here)):  # the raters' stars, beside the verdict
        st.caption(text(line))
    for b in decision.binding:
        if b["binds"]:
            st.info(tr("rec_binding", c=tr(f"constraint_{b['constraint']}"), m=spec(b["unconstrained_leader"])))
    st.markdown(f"**{tr('rec_ranking')}**")
    summary_table(summary["ranking"])  # an excluded model's score is not comparable: "–"
    st.altair_chart(charts.contribution_chart(decision.ranking, here), width="stretch")
    st.caption(f"{tr('rec_normalisation')}: {tr('rec_normalisation_text')}")

st.subheader(tr("rec_sensitivity"))
st.caption(tr("rec_sensitivity_help"))
sens = decision.sensitivity
if sens.empty or sens[["flip_low", "flip_high"]].isna().all().all():
    st.write(tr("rec_no_flip"))
summary_table(summary["sensitivity"])
if not decision.sensitivity_curves.empty:
    st.altair_chart(charts.sensitivity_chart(decision.sensitivity_curves, here))

st.subheader(tr("rec_decision_table"))
if "decision" in summary:
    summary_table(summary["decision"], height="content")
if not decision.categories.empty:
    st.markdown(f"**{tr('rec_categories')}**")
    summary_table(summary["categories"])

st.subheader(tr("rec_cost_table"))
summary_table(summary["cost"])  # the figures a CTO quotes come first: cost per 1,000 requests, GPUs, monthly
saved_price = st.session_state.pop("_price_saved", False)
with st.expander(tr("rec_prices"), expanded=saved_price):
    if saved_price:  # said after the rerun that put the new price into the verdict and the cost table above
        st.success(tr("rec_price_saved"))
    st.caption(tr("rec_prices_help"))
    table(book.offers_table())
    with st.form("price"):
        c1, c2, c3 = st.columns(3)
        p_gpu = c1.selectbox("GPU", list(book.gpus), placeholder=tr("choose_option"))
        p_provider = c2.text_input(tr("rec_provider"))
        p_tier = c3.text_input(tr("rec_tier"), "on-demand")
        c4, c5 = st.columns(2)
        p_price = c4.number_input(tr("rec_price"), value=1.0, step=0.1)
        p_currency = c5.radio(tr("rec_currency"), list(cost.CURRENCIES), horizontal=True)
        if st.form_submit_button(tr("rec_save_price")):
            try:
                cost.save_price(s, p_gpu, p_provider, p_tier, p_price, p_currency)
            except cost.CostError as exc:
                st.error(text(str(exc)))
            else:
                st.session_state._price_saved = True
                st.rerun()  # the decision above was computed with the old prices

if decision.caveats:
    st.subheader(tr("rec_caveats"))
    for c in decision.caveats:
        st.text(f"• {say(c, here)}")

st.subheader(tr("rec_download"))
# The summary is rendered when asked for, in this script run, so a failure is said here; the download
# button then holds the bytes (not a callable that a later rerun would revoke) and does not rerun the page.
mimes = {"md": "application/zip", "html": "text/html", "json": "application/json", "pdf": "application/pdf"}
names = {"md": f"modelpick-{scenario_id}-md.zip", "html": f"modelpick-{scenario_id}.html",
         "json": f"modelpick-{scenario_id}.json", "pdf": f"modelpick-{scenario_id}.pdf"}
fingerprint = hashlib.sha256(json.dumps(body, ensure_ascii=False, default=str).encode()).hexdigest()
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
fmt_choice = c1.radio(tr("rec_download_format"), report.FORMATS, horizontal=True, key="rec_dl_fmt",
                      format_func=labeller("dl_{}"))
if c2.button(tr("rec_prepare"), key="rec_prepare"):
    try:
        with st.spinner(tr("rec_preparing")):
            data = report.markdown_bundle(decision, here) if fmt_choice == "md" \
                else report.render(decision, fmt_choice, here)
    except report.ReportError as exc:
        st.error(text(str(exc)))
    except Exception as exc:  # noqa: BLE001 - said to the user, the decision above stays
        st.error(tr("rec_download_failed", error=f"{type(exc).__name__}: {exc}"))
    else:
        st.session_state._summary = {"fingerprint": fingerprint, "fmt": fmt_choice, "data": data}
ready = st.session_state.get("_summary")
if ready and ready["fingerprint"] == fingerprint and ready["fmt"] == fmt_choice:
    st.download_button(tr("rec_download_ready", name=names[fmt_choice], kb=f"{len(ready['data']) / 1024:,.0f}"),
                       ready["data"], names[fmt_choice], mimes[fmt_choice], key="dl-summary", on_click="ignore",
                       type="primary")
elif ready:
    st.caption(tr("rec_download_stale"))

with st.form("save_decision"):
    name = st.text_input(tr("rec_save_name"), key="rec_decision_name")
    if st.form_submit_button(tr("rec_save")):
        try:
            st.success(tr("rec_saved", id=recommend.save_decision(s, decision, name)))
        except recommend.RecommendError as exc:
            st.error(text(str(exc)))
saved = recommend.saved_decisions(s, scenario_id)
if not saved.empty:
    st.markdown(f"**{tr('rec_saved_list')}**")
    table(saved[["decision_id", "name", "created_at", "verdict"]].assign(
        verdict=saved.verdict.map(lambda v: recommend.verdict_label(v, here) or v)))

    def _restore(row) -> None:
        """Put a saved decision's weights and constraints back on the sliders and inputs."""
        weights = json.loads(row.weights_json)
        total = sum(weights.values()) or 1.0
        for c in CRITERIA:
            st.session_state[f"w_{scenario_id}_{c}"] = round(weights.get(c, 0.0) / total, 2)
        cons = json.loads(row.constraints_json)
        st.session_state.rec_vram = float(cons.get("max_vram_gb", 0.0))
        st.session_state.rec_ttft = float(cons.get("ttft_p95_ms", 0.0))
        st.session_state.rec_e2e = float(cons.get("e2e_p95_ms", 0.0))
        st.session_state.rec_lic = cons.get("licences", [])
        st.session_state.rec_minq = float(cons.get("min_quality", 0.0))

    pick = st.selectbox(tr("rec_saved_list"), saved.decision_id.tolist(), key="rec_saved_pick",
                        format_func=lambda i: f"{i} · {saved.set_index('decision_id').loc[i, 'name']}",
                            placeholder=tr("choose_option"))
    st.button(tr("rec_restore"), key="rec_restore",
              on_click=lambda: _restore(saved.set_index("decision_id").loc[pick]))
