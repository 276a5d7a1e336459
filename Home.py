"""ModelPick dashboard: the entry point sets up navigation and the language switch."""
import streamlit as st

from engine.i18n import LANGUAGES, t
from pages._access import gate

st.set_page_config(page_title="ModelPick", layout="wide")

# The choice lives in a plain session key: widget state does not survive a page switch.
# The radio's callback runs before this script, so the titles below are already in the
# chosen language.
lang = st.session_state.setdefault("lang", "en")
gate(lang)  # a login, and nothing else, until this browser session may see the app


def _pick_language() -> None:
    st.session_state.lang = st.session_state.lang_radio


pages = [
    st.Page("pages/home.py", title=t("nav_home", lang), icon=":material/home:", default=True, url_path="home"),
    st.Page("pages/scenarios.py", title=t("nav_scenarios", lang), icon=":material/list_alt:", url_path="scenarios"),
    st.Page("pages/run.py", title=t("nav_run", lang), icon=":material/play_arrow:", url_path="run"),
    st.Page("pages/compare.py", title=t("nav_compare", lang), icon=":material/bar_chart:", url_path="compare"),
    st.Page("pages/recommend.py", title=t("nav_recommend", lang), icon=":material/recommend:", url_path="recommend"),
    st.Page("pages/rate.py", title=t("nav_rate", lang), icon=":material/thumbs_up_down:", url_path="rate"),
]
# Pages check this flag: a fresh server may serve a bookmarked /page through Streamlit's
# legacy pages/ discovery before this entry point has run in the session; such a page comes
# here first, and is then opened through the navigation.
st.session_state._via_entry = True
# Drawn by the app itself, so the first visitor of a fresh server sees this navigation and
# never the pages/ folder listing (hidden in .streamlit/config.toml).
nav = st.navigation(pages, position="hidden")
with st.sidebar:
    for page in pages:
        st.page_link(page)
    st.divider()
    st.session_state.lang_radio = lang
    st.radio("Language / 语言", list(LANGUAGES), key="lang_radio", on_change=_pick_language,
             format_func=LANGUAGES.get, horizontal=True)
wanted = st.session_state.pop("_wanted_page", None)
if wanted:
    st.switch_page(wanted)
nav.run()
