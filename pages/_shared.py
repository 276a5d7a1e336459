"""What every page shares: the store, the language, translated labels."""
from __future__ import annotations

import inspect
from pathlib import Path

import streamlit as st

from engine import Store, default_db_path
from engine.i18n import t


@st.cache_resource
def _store(path: str) -> Store:
    # A Store keeps no connection open: each call opens its own, so the worker process
    # can write while the dashboard reads, and no connection crosses Streamlit's threads.
    return Store(path)


def entry_guard() -> None:
    """A page served without the entry point (legacy pages/ discovery of a bookmarked URL on
    a fresh server) goes through Home.py, which then opens this page."""
    if not st.session_state.get("_via_entry"):
        caller = Path(inspect.stack()[1].filename)
        st.session_state._wanted_page = f"pages/{caller.name}"
        st.switch_page("Home.py")


def store() -> Store:
    return _store(default_db_path())


def lang() -> str:
    return st.session_state.get("lang", "en")


def tr(key: str, **kwargs) -> str:
    return t(key, lang(), **kwargs)


def fmt(value, digits: int = 1, pct: bool = False) -> str:
    if value is None or value != value:
        return "–"
    if pct:
        return f"{value * 100:.0f}%"
    return f"{value:,.{digits}f}"
