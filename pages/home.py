import streamlit as st

from engine import bundled_models, compare, recommend, worker
from engine.i18n import say
from engine.textsafe import prose_text
from pages._shared import entry_guard, fmt, lang, scenario_label, spec, store, table, text, tr

entry_guard()

st.title("ModelPick")
st.write(tr("home_intro"))

s = store()
running = worker.running_runs(s)  # marks dead runs interrupted before anything is shown
mine = st.session_state.get("active_run")
if mine and mine not in running and worker.run_status(s, mine).status in ("starting", "running"):
    # started from this browser a moment ago: its worker is still loading, or its run began after the
    # list above was read
    running.insert(0, mine)
for run_id in running:
    st.info(tr("home_running", run_id=run_id))
    if st.button(tr("home_watch"), key=f"watch-{run_id}"):
        st.session_state.active_run = run_id
        st.switch_page("pages/run.py")

runs = compare.runs_table(s)
if runs.empty and running:
    st.stop()
if runs.empty:
    st.info(tr("home_empty"))
    specs = [f"llamacpp/{m.id}" for m in bundled_models()]
    if st.button(tr("home_quickstart", models=", ".join(specs)), type="primary"):
        st.session_state.active_run = worker.start_run(s.path, "standard", specs)
        st.switch_page("pages/run.py")
    st.stop()

st.subheader(tr("home_verdicts"))
verdicts = recommend.verdicts(s)
if verdicts.empty:
    st.write(tr("cmp_no_generations"))
else:
    # one card per scenario, two to a row, the verdict as a heading that wraps: a long model spec is
    # shown whole, never cut to "llamacpp/gemma3-2…"
    cols = st.columns(min(len(verdicts), 2))
    for i, row in enumerate(verdicts.itertuples()):
        shown = recommend.verdict_label(row.verdict, lang()) or spec(row.verdict)
        card = cols[i % len(cols)].container(border=True, key=f"verdict-{i}")
        card.caption(text(scenario_label()(row.scenario_id)))
        card.markdown(f"#### {shown}")
        card.caption(f"{tr('rec_p_first')} {fmt(row.p_first, pct=True)}: {spec(row.leader)}")
        for c, why in row.dropped:  # the weighted criteria that did not decide, and why
            card.caption(tr("rep_not_weighed", criterion=tr(f"crit_{c}"), why=prose_text(say(why, lang()))))
        for w in row.warnings:  # what bears on the verdict, beside it
            card.caption(f"⚠ {prose_text(say(w, lang()))}")
    if st.button(tr("home_open_recommend")):
        st.switch_page("pages/recommend.py")

st.subheader(tr("home_latest_runs"))
# a run that has just started has no generation yet: its model list holds only NULL
view = runs.assign(models=runs.models.map(lambda m: ", ".join(x for x in m if x) if m is not None else ""))
table(view)
