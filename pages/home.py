import streamlit as st

from engine import bundled_models, compare, worker
from pages._shared import entry_guard, fmt, store, tr

entry_guard()

st.title("ModelPick")
st.write(tr("home_intro"))

s = store()
runs = compare.runs_table(s)
if runs.empty:
    st.info(tr("home_empty"))
    specs = [f"llamacpp/{m.id}" for m in bundled_models()]
    if st.button(tr("home_quickstart", models=", ".join(specs)), type="primary"):
        st.session_state.active_run = worker.start_run(s.path, "standard", specs)
        st.switch_page("pages/run.py")
    st.stop()

running = runs[runs.status == "running"]
for run_id in running.run_id:
    st.info(tr("home_running", run_id=run_id))
    if st.button(tr("home_watch"), key=f"watch-{run_id}"):
        st.session_state.active_run = run_id
        st.switch_page("pages/run.py")

st.subheader(tr("home_leaders"))
leaders = compare.leaders(s)
if leaders.empty:
    st.write(tr("home_no_leaders"))
else:
    cols = st.columns(min(len(leaders), 4))
    for col, row in zip(cols * (len(leaders) // len(cols) + 1), leaders.itertuples()):
        col.metric(f"{tr('scenario')}: {row.scenario_id}", row.leader,
                   f"{tr('check_score')} {fmt(row.check_score, pct=True)}", delta_color="off")

st.subheader(tr("home_latest_runs"))
view = runs.assign(models=runs.models.map(lambda m: ", ".join(m) if m is not None else ""))
st.dataframe(view.rename(columns=lambda c: tr(c)), hide_index=True)
