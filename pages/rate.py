import random

import streamlit as st

from engine import compare, ratings
from engine.textsafe import code_span
from pages._shared import entry_guard, labeller, scenario_label, spec, store, text, tr

entry_guard()

st.title(tr("nav_rate"))
st.write(tr("rate_intro"))
s = store()
scenario_ids = compare.scenario_ids_with_runs(s)
if not scenario_ids:
    st.info(tr("cmp_empty"))
    st.stop()

# kept in a plain session key: a widget's own state is dropped when the user leaves the page
st.session_state.setdefault("rater_name", "")
rater = st.text_input(tr("rate_rater"), value=st.session_state.rater_name, key="rater")
st.session_state.rater_name = rater
scenario_id = st.selectbox(tr("scenario"), scenario_ids, key="rate_scenario", format_func=scenario_label(),
                           placeholder=tr("choose_option"))

def shown_setting(setting: dict) -> None:
    """The instructions, documents and earlier user turns an answer was given, above the question."""
    if setting["system"]:
        with st.expander(tr("rate_instructions")):
            st.text(setting["system"])
    if setting["documents"]:
        st.caption(tr("rate_documents", names=code_span(", ".join(setting["documents"]))))
    for n, said in enumerate(setting["earlier"], start=1):
        st.caption(tr("rate_earlier_turn", n=n))
        st.text(said)


st.subheader(tr("rate_blind"))
pair = st.session_state.get("pair")
if pair is None or pair["scenario_id"] != scenario_id:
    pair = st.session_state.pair = ratings.next_pair(s, scenario_id, random.Random(),
                                                     avoid=st.session_state.get("last_pair_key"), rater=rater)
    st.session_state.pair_voted = False
if pair is None:
    # every pair voted on by this rater, or fewer than two models with answers
    voted_all = rater.strip() and ratings.next_pair(s, scenario_id) is not None
    st.info(tr("rate_all_voted" if voted_all else "rate_no_pair"))
else:
    st.caption(f"{text(pair['case_id'])} · {tr('scen_turn', n=pair['turn'] + 1)}")
    shown_setting(ratings.setting(scenario_id, pair["case_id"], pair["turn"]))
    with st.expander(tr("rate_question"), expanded=len(pair.get("question", "")) < 400):
        st.text(pair.get("question") or "–")
    left, right = st.columns(2)
    for col, side, label in ((left, "left", "rate_left"), (right, "right", "rate_right")):
        col.markdown(f"**{tr(label)}**")
        before = ratings.earlier_answers(s, pair[side]["run_id"], pair[side]["model_spec"], pair["case_id"],
                                         pair["turn"])
        if before:  # this model's own earlier answers: the conversation its answer continues
            with col.expander(tr("rate_earlier_answers")):
                for n, said in enumerate(before, start=1):
                    st.caption(tr("scen_turn", n=n))
                    st.text(said or "–")
        col.text(pair[side]["output_text"] or "–")  # model output: plain text, never HTML
    if st.session_state.get("pair_voted"):
        st.success(tr("rate_revealed", left=spec(pair["left"]["model_spec"]),
                      right=spec(pair["right"]["model_spec"])))
        if st.button(tr("rate_next"), key="next-pair"):
            st.session_state.pair = None
            st.rerun()
    else:
        cols = st.columns(4)
        for col, vote in zip(cols, ratings.VOTES):
            if col.button(tr(f"vote_{vote}"), key=f"vote-{vote}"):
                if not rater.strip():
                    st.error(tr("rate_need_name"))
                else:
                    ratings.add_vote(s, pair, vote, rater)
                    st.session_state.pair_voted = True
                    st.session_state.last_pair_key = (pair["case_id"], pair["turn"])
                    st.rerun()

st.subheader(tr("rate_stars"))
runs = compare.runs_table(s)
runs = runs[runs.scenario_id == scenario_id]
run_id = st.selectbox(tr("cmp_run"), runs.run_id.tolist(), key="rate_run", placeholder=tr("choose_option"))
gens, _ = compare.load_results(s, run_id=run_id)
gens = gens[gens.ok]
if not gens.empty:
    labels = {i: f"{r.model_spec} · {r.case_id} · {tr('scen_turn', n=r.turn + 1)} · #{r['repeat'] + 1}"
              for i, r in gens.iterrows()}
    idx = st.selectbox(tr("rate_answer"), list(labels), format_func=lambda i: labels.get(i, str(i)), key="rate_answer",
                       placeholder=tr("choose_option"))
    answer = gens.loc[idx]
    repeat = int(answer["repeat"])  # not answer.repeat: that is a pandas method
    asked = ratings.question(scenario_id, answer.case_id, int(answer.turn))
    shown_setting(ratings.setting(scenario_id, answer.case_id, int(answer.turn)))
    with st.expander(tr("rate_question"), expanded=len(asked) < 400):
        st.text(asked or "–")
    st.markdown(f"**{tr('rate_answer')}**")
    st.text(answer.output_text or "–")
    dimension = st.selectbox(tr("rate_dimension"), ratings.DIMENSIONS, format_func=labeller(), key="rate_dim",
                             placeholder=tr("choose_option"))
    # nothing is chosen until the rater chooses: a default would be saved as if it were a judgement
    stars = st.radio(tr("stars"), [1, 2, 3, 4, 5], index=None, horizontal=True, format_func=lambda n: "★" * n,
                     key="rate_stars_value")
    if st.button(tr("rate_save_stars"), key="save-stars"):
        if not rater.strip():
            st.error(tr("rate_need_name"))
        elif stars is None:
            st.error(tr("rate_need_stars"))
        else:
            ratings.add_stars(s, run_id, answer.model_spec, answer.case_id, repeat, int(answer.turn),
                              dimension, int(stars), rater)
            st.success(tr("rate_saved_stars"))
