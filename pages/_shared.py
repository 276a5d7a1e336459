"""What every page shares: the store, the language, translated labels."""
from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import streamlit as st

from engine import Store, default_db_path
from engine.i18n import TEXT, say, t
from engine.textsafe import Markdown, code_span, csv_cell, markdown_text


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
    """A label in this session's language. Text handed in to fill it (a case id, a server's
    error, a file name) is escaped for Markdown, since every element that shows it renders
    Markdown; `spec()` and other `Markdown` values are ours and kept."""
    if key not in TEXT:  # a user's own category or label, shown as it is written
        return markdown_text(key)
    return Markdown(t(key, lang(), **{k: markdown_text(v) if isinstance(v, str) else v for k, v in kwargs.items()}))


def text(value) -> str:
    """Text that is not ours, for an element that renders Markdown (st.error, st.caption, ...)."""
    return markdown_text(value)


# Columns whose values are labels (a status, a check type, a rating dimension), not data
LABEL_COLUMNS = ("status", "dimension", "category", "check_type", "winner", "row", "metric", "spread_source")


def localised(df: pd.DataFrame) -> pd.DataFrame:
    """A table for people: column headers and label values in the chosen language."""
    out = df.copy()
    for col in LABEL_COLUMNS:
        if col in out.columns:
            # a table cell is not Markdown: a label key in words, a message said again, as written
            out[col] = out[col].map(lambda v: t(v, lang()) if v in TEXT else say(v, lang()) if isinstance(v, str)
                                    else v)
    return out.rename(columns=lambda c: tr(str(c)))


def table(df: pd.DataFrame, **kwargs) -> None:
    st.dataframe(localised(df), hide_index=True, **kwargs)


def summary_table(spec: tuple[list[dict], list[str], list[str]], **kwargs) -> None:
    """One of the decision summary's tables (`engine.report.tables`), shown as the summary has it:
    its headers and cells are already in this session's language."""
    rows, columns, headers = spec
    df = pd.DataFrame([[r.get(c) for c in columns] for r in rows], columns=headers)
    for col in df.columns:  # an empty text cell says "–"; an empty figure stays empty, its column numeric
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].map(lambda v: "–" if v is None or (isinstance(v, float) and v != v) else v)
    st.dataframe(df, hide_index=True, **kwargs)


def csv(df: pd.DataFrame) -> bytes:
    """A CSV download: raw column names (as in docs/schema.md) in English, translated in 中文;
    text cells that a spreadsheet would run as a formula are quoted (`textsafe.csv_cell`)."""
    out = localised(df) if lang() == "zh" else df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(csv_cell)
    return out.to_csv(index=False).encode("utf-8")


def labeller(pattern: str = "{}"):
    """A format_func for options: the label key made from each option, in the language of
    this script run (the function outlives the run, so it must not read the session later)."""
    chosen = lang()
    return lambda option: t(pattern.format(option), chosen)


def scenario_label():
    """A format_func for scenario ids: the id and the scenario's name in this run's language."""
    from engine.scenarios import scenario_title

    chosen = lang()
    return lambda sid: f"{sid} · {scenario_title(sid, chosen)}"


def uploader_labels() -> None:
    """Streamlit's file uploader draws its own English button and size line; in 中文 they are
    replaced by translated ones on every uploader of the page (a fixed style sheet: nothing
    from a user or a model in it). The accepted types are in each uploader's own label."""
    if lang() != "zh":
        return
    limit = t("uploader_limit", "zh", mb=st.get_option("server.maxUploadSize"))
    zone = '[data-testid="stFileUploaderDropzone"]'
    st.html(f"""<style>
{zone} button [data-testid="stMarkdownContainer"] p {{display: none;}}
{zone} button [data-testid="stMarkdownContainer"]::after {{content: "{t('uploader_button', 'zh')}";}}
{zone} [data-testid="stFileUploaderDropzoneInstructions"] span {{display: none;}}
{zone} [data-testid="stFileUploaderDropzoneInstructions"] > div::after {{content: "{limit}"; font-size: 0.875rem;}}
</style>""")


def spec(model_spec: str) -> str:
    """A model spec for Markdown text: a code span on one line, so `openai/x@http://host/v1`, a
    name with an @ or a spec with a blank line and an image in it is shown as written."""
    return code_span(model_spec)


def duration(seconds: float | None) -> str:
    """A time span as people read it: 45 s, 18 min 6 s, 2 h 5 min ("–" when unknown)."""
    if seconds is None or seconds != seconds:
        return "–"
    s = max(int(round(seconds)), 0)
    if s < 60:
        return tr("dur_s", s=s)
    m, s = divmod(s, 60)
    if m < 60:
        return tr("dur_min", m=m, s=s)
    h, m = divmod(m, 60)
    return tr("dur_h", h=h, m=m)


def fmt(value, digits: int = 1, pct: bool = False) -> str:
    if value is None or value != value:
        return "–"
    if pct:
        return f"{value * 100:.0f}%"
    return f"{value:,.{digits}f}"
