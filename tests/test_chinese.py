"""Every page in 中文 with data in every table: no label from the English table, no raw column
name, no untranslated status, check type or rating dimension anywhere a user reads."""
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import RunConfig, Runner, Store, list_scenario_ids, load_scenario, ratings
from engine.checks import CHECKS
from engine.i18n import TEXT
from tests.conftest import ROOT

# What a Chinese reader must never meet: an English label (exact, or a sentence inside longer text)
ENGLISH = {en for en, zh in TEXT.values() if en != zh}
ENGLISH_SENTENCES = {en for en in ENGLISH if len(en.split()) >= 3 and "{" not in en}
RAW_VALUES = ({"running", "done", "interrupted", "failed", "starting", "overall", "tie", "left", "right"}
              | set(CHECKS) | set(ratings.DIMENSIONS))
RAW_COLUMN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z]+$")  # model_spec, stars_mean, license


@pytest.fixture
def seeded(shipped_scenarios):
    store = Store()
    for sid in list_scenario_ids():
        sc = load_scenario(sid)
        cases = [c.id for c in sc.cases][:3]
        run_id = Runner(store).run(RunConfig(sc, ["fake/echo", "fake/mirror"], case_ids=cases))
        gens = store.query("SELECT * FROM generations WHERE run_id = ? AND ok", [run_id])
        for g in gens.itertuples():
            ratings.add_stars(store, run_id, g.model_spec, g.case_id, g.repeat, g.turn, "overall", 4, "Mei")
        pair = ratings.next_pair(store, sid)
        if pair:
            ratings.add_vote(store, pair, "left", "Mei")
    from engine.sweep import SweepConfig, run_sweep
    from tests.fakeservers import FakeServer, OpenAIHandler

    with FakeServer(OpenAIHandler) as srv:
        run_sweep(store, SweepConfig(f"openai/echo@{srv.url}/v1", load_scenario("standard"), [1, 2], requests=2))
    yield store


def _strings(at) -> tuple[list[str], list[pd.DataFrame]]:
    """What a reader sees: every label, text element, option, tab, expander and table."""
    seen: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning",
                 "error", "button", "toggle", "checkbox", "expander", "tabs"):
        for el in at.get(kind):
            seen += [str(getattr(el, "value", "") or ""), str(getattr(el, "label", "") or "")]
    for kind in ("selectbox", "multiselect", "radio", "select_slider"):
        for el in at.get(kind):
            seen.append(el.label)
            if el.label != "Language / 语言":
                seen += [str(o) for o in el.options]
    for kind in ("text_input", "text_area", "number_input", "slider", "date_input", "file_uploader",
                 "download_button", "metric"):
        for el in at.get(kind):
            seen.append(str(getattr(el, "label", None) or getattr(el.proto, "label", "")))
    frames = [el.value for el in at.dataframe]
    return [s for s in seen if s], frames


def _problems(page: str, at) -> list[str]:
    seen, frames = _strings(at)
    out = []
    shipped = [load_scenario(sid) for sid in list_scenario_ids()]
    english = ENGLISH | {sc.name for sc in shipped} | {sc.description.strip() for sc in shipped}
    for s in seen:
        if s.strip() in english:
            out.append(f"{page}: English label {s!r}")
        for sentence in ENGLISH_SENTENCES:
            if sentence in s and s.strip() != sentence:
                out.append(f"{page}: English text {sentence!r} in {s[:80]!r}")
    for df in frames:
        for col in map(str, df.columns):
            if RAW_COLUMN.match(col) or col in ENGLISH:
                out.append(f"{page}: raw column {col!r}")
        for col in df.columns:
            raw = {v for v in df[col].dropna() if isinstance(v, str) and (v in RAW_VALUES or v in ENGLISH)}
            out += [f"{page}: untranslated value {v!r} in column {col!r}" for v in sorted(raw)]
    return out


@pytest.mark.slow
def test_every_page_in_chinese_shows_no_english_label_and_no_raw_column(seeded):
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.session_state.lang = "zh"
    at.run()
    problems = []
    walked = 0
    for page in ["pages/home.py", "pages/scenarios.py", "pages/run.py", "pages/compare.py",
                 "pages/recommend.py", "pages/rate.py"]:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        problems += _problems(page, at)
        walked += 1
        if page in ("pages/scenarios.py", "pages/run.py"):
            for sid in list_scenario_ids()[1:]:
                at.selectbox[0].set_value(sid).run()
                assert not at.exception, (page, sid, at.exception)
                problems += _problems(f"{page}[{sid}]", at)
        if page == "pages/compare.py":
            at.session_state.cmp_mode = "scenario"  # set_value would format the option outside the app
            at.run()
            problems += _problems(f"{page}[scenario]", at)
    assert walked == 6
    assert not problems, "\n".join(sorted(set(problems)))


def test_the_walk_catches_an_english_label_and_a_raw_column():
    at = AppTest.from_string(
        "import streamlit as st\nimport pandas as pd\nst.button('Cancel')\n"
        "st.dataframe(pd.DataFrame({'model_spec': ['a'], '状态': ['running']}))")
    at.run()
    found = _problems("probe", at)
    assert "probe: English label 'Cancel'" in found
    assert "probe: raw column 'model_spec'" in found
    assert "probe: untranslated value 'running' in column '状态'" in found
