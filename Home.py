"""ModelPick dashboard entry point."""
import streamlit as st

from engine import Store, bundled_models, default_db_path

st.set_page_config(page_title="ModelPick", layout="wide")
st.title("ModelPick")
st.write("Compare open LLMs on your own scenarios with measured speed and quality.")
st.subheader("Bundled models")
st.dataframe([{"model": f"llamacpp/{m.id}", "name": m.name, "licence": m.license} for m in bundled_models()])
st.subheader("Runs")
runs = Store(default_db_path()).list_runs()
if runs.empty:
    st.info("No runs yet: start one with `python -m engine run --scenario standard "
            "--model llamacpp/smollm2-135m --model llamacpp/gemma3-270m`.")
else:
    st.dataframe(runs)
