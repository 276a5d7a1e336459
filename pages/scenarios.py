from pathlib import Path

import pandas as pd
import streamlit as st

from engine import importer, list_scenario_ids, load_scenario, power
from engine.documents import extract_text
from engine.scenarios import (
    CRITERIA,
    ScenarioError,
    decode_scenario,
    save_scenario_text,
    scenario_yaml_from_form,
    user_scenarios_dir,
)
from engine.textsafe import code_span
from pages._shared import entry_guard, lang, localised, scenario_label, store, table, text, tr, uploader_labels

entry_guard()

st.title(tr("nav_scenarios"))

ids = list_scenario_ids()
if not ids:
    st.info(tr("scen_none"))
else:
    sid = st.selectbox(tr("scenario"), ids, index=ids.index("standard") if "standard" in ids else 0,
                       format_func=scenario_label(), placeholder=tr("choose_option"))
    try:
        sc = load_scenario(sid)
    except ScenarioError as exc:
        st.error(text(str(exc)))
    else:
        st.subheader(text(sc.title(lang())))
        st.markdown(text(sc.purpose(lang())))
        left, right = st.columns(2)
        left.markdown(f"**{tr('scen_weights')}**")
        left.dataframe(pd.DataFrame([{tr("criterion"): tr(f"crit_{k}"), tr("weight"): v}
                                     for k, v in sc.weights.items()]), hide_index=True)
        right.markdown(f"**{tr('scen_defaults')}**")
        right.dataframe(localised(pd.DataFrame([sc.defaults.model_dump()])), hide_index=True)
        st.markdown(f"**{tr('scen_power')}**")
        st.caption(tr("scen_power_help"))
        table(power.power_table(sc, store()))
        st.markdown(f"**{tr('scen_cases', n=len(sc.cases))}**")
        for case in sc.cases:
            with st.expander(f"{text(case.id)} · {tr(case.category)}" + (f" · {text(case.lang)}" if case.lang else "")):
                questions = case.questions()
                for turn, (question, checks) in enumerate(questions, start=1):
                    if len(questions) > 1:
                        st.caption(tr("scen_turn", n=turn))
                    st.text(question)
                    if checks:
                        st.dataframe(pd.DataFrame([{tr("check"): tr(c.type), tr("value"): str(c.value),
                                                    tr("weight"): c.weight} for c in checks]), hide_index=True)
                # documents and probes stay folded: a handbook or a 12k-token probe would fill the page
                if case.needle:
                    size = (tr("scen_probe_tokens", n=case.needle.tokens) if case.needle.tokens
                            else tr("scen_probe_fraction", pct=f"{case.needle.context_fraction:.0%}"))
                    st.caption(tr("scen_probe", fact=case.needle.fact, depth=f"{case.needle.depth:.0%}", size=size))
                if case.documents() and case.context:
                    name = ", ".join(Path(d).name for d in case.documents())
                    label = tr("scen_document", name=code_span(name), chars=len(case.context))
                    if st.toggle(label, key=f"doc-{sid}-{case.id}"):
                        st.text(case.context)

st.divider()
st.subheader(tr("scen_create"))
st.caption(tr("scen_saved_where", folder=code_span(user_scenarios_dir())))
uploader_labels()
sheet_tab, upload_tab, form_tab = st.tabs([tr("scen_tab_sheet"), tr("scen_tab_yaml"), tr("scen_tab_form")])


def _save(yaml_text: str, source: str) -> None:
    try:
        saved = save_scenario_text(yaml_text, source)
    except ScenarioError as exc:
        st.error(tr("scen_invalid", error=str(exc)))
    else:
        st.success(tr("scen_saved", id=saved.id, n=len(saved.cases)))


with sheet_tab:
    st.caption(tr("scen_sheet_help"))
    sheet = st.file_uploader(tr("scen_sheet_upload"), type=["csv", "tsv", "jsonl", "xlsx"], key="sheet")
    docs = st.file_uploader(tr("scen_docs_upload"), type=["pdf", "docx", "md", "markdown", "txt"],
                            accept_multiple_files=True, key="sheet_docs", help=tr("scen_docs_help"))
    documents = [(d.name, d.getvalue()) for d in docs or []]
    if sheet is not None:
        c1, c2 = st.columns(2)
        sheet_id = c1.text_input(tr("scen_id"), key="sheet_id").strip() or None
        sheet_name = c2.text_input(tr("scen_name"), key="sheet_name").strip() or None
        try:
            found = importer.preview(sheet.name, sheet.getvalue(), sheet_id, sheet_name)
            for doc_name, doc_data in documents:
                extract_text(doc_name, doc_data)  # a document that cannot be read is named now
        except ScenarioError as exc:
            st.error(text(str(exc)))
        else:
            st.markdown(f"**{tr('scen_preview', id=found.id, n=len(found.cases))}**")
            table(pd.DataFrame([{"id": c.id, "category": c.category, "lang": c.lang or "", "prompt": c.prompt,
                                 "checks": ", ".join(tr(k.type) for k in c.checks)} for c in found.cases]))
            if documents:
                st.caption(tr("scen_docs_count", n=len(documents)))
            if st.button(tr("scen_validate_save"), key="save-sheet"):
                try:
                    saved = importer.import_sheet(sheet.name, sheet.getvalue(), sheet_id, sheet_name, documents)
                except ScenarioError as exc:
                    st.error(tr("scen_invalid", error=str(exc)))
                else:
                    st.success(tr("scen_saved", id=saved.id, n=len(saved.cases)))

    st.divider()
    st.caption(tr("scen_promptfoo_help"))
    suite_files = st.file_uploader(tr("scen_promptfoo_upload"), type=["yaml", "yml", "csv", "json", "txt", "md"],
                                   accept_multiple_files=True, key="promptfoo_files")
    if suite_files and st.button(tr("scen_validate_save"), key="save-promptfoo"):
        try:
            saved, suite = importer.import_promptfoo_upload([(f.name, f.getvalue()) for f in suite_files])
        except ScenarioError as exc:
            st.error(text(str(exc)))
        else:
            st.success(tr("scen_saved", id=saved.id, n=len(saved.cases)))
            for u in suite.unmapped:
                st.warning(text(tr("scen_promptfoo_unmapped", what=str(u))))
            if suite.providers:
                st.caption(tr("scen_promptfoo_providers"))
                st.code(" ".join(f"--model {p}" for p in suite.providers), language="bash")

with upload_tab:
    uploaded = st.file_uploader(tr("scen_upload"), type=["yaml", "yml"])
    if uploaded is not None and st.button(tr("scen_validate_save"), key="save-upload"):
        try:
            _save(decode_scenario(uploaded.getvalue(), uploaded.name), uploaded.name)
        except ScenarioError as exc:
            st.error(text(str(exc)))
    pasted = st.text_area(tr("scen_paste"), height=200, key="pasted_yaml")
    if st.button(tr("scen_validate_save"), key="save-pasted"):
        _save(pasted, tr("scen_pasted_source"))

with form_tab, st.form("new-scenario"):
    new_id = st.text_input(tr("scen_id"), placeholder="my-support-bot")
    name = st.text_input(tr("scen_name"))
    description = st.text_area(tr("scen_description"))
    cols = st.columns(len(CRITERIA))
    weights = {c: col.number_input(tr(f"crit_{c}"), 0.0, 1.0, 0.5 if c == "quality" else 0.1, 0.05, key=f"w-{c}")
               for c, col in zip(CRITERIA, cols)}
    max_tokens = st.number_input(tr("run_max_tokens"), 1, 32768, 256)
    fields = {f: tr(f) for f in ("id", "category", "prompt", "must_contain", "max_chars")}
    rows = st.data_editor(
        pd.DataFrame([{"id": "", "category": "", "prompt": "", "must_contain": "", "max_chars": None}])
        .rename(columns=fields),
        num_rows="dynamic", key=f"cases_editor_{lang()}",
        column_config={fields["max_chars"]: st.column_config.NumberColumn(min_value=1, step=1)})
    if st.form_submit_button(tr("scen_validate_save")):
        records = rows.rename(columns={v: k for k, v in fields.items()}).to_dict("records")
        yaml_text = scenario_yaml_from_form(new_id, name, description, weights, max_tokens, records)
        _save(yaml_text, tr("scen_form_source"))
