"""The CTO's click-through in a real headless Chromium against `streamlit run Home.py`:
Home, Run (one bundled model on two cases, to the end), Compare (answers and a chart),
Recommend (the verdict in both languages, the HTML decision summary downloaded)."""
import contextlib
import functools
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, require

pytestmark = pytest.mark.slow  # a real browser against a real dashboard server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser_or_skip():
    require(Path(CHROMIUM).exists(), CHROMIUM, "sudo apt-get install chromium")




@pytest.fixture
def server(tmp_path, request):
    _browser_or_skip()
    port = free_port()
    env = dict(os.environ, MODELPICK_DB=str(tmp_path / "browser.duckdb"))
    env.pop("MODELPICK_PASSWORD", None)
    env.update(getattr(request, "param", {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("streamlit exited: " + proc.stdout.read())
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)  # the port is free again only once the server is gone
    _stop_workers(tmp_path)


def _stop_workers(tmp_path: Path) -> None:
    """Workers the dashboard started on this test's database (in sessions of their own, so they outlive
    the server) are stopped with their engine processes: a test that failed before its run ended must not
    leave a model generating beside the tests that follow (their timings would read a busy machine)."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        if any(str(tmp_path) in part for part in p.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                for child in p.children(recursive=True) + [p]:
                    child.kill()


@contextmanager
def _page(viewport: dict | None = None):
    """A page in headless Chromium; a screenshot in tests/artifacts/failure.png if the test fails."""
    from playwright.sync_api import expect, sync_playwright

    # a wait, not a timing: a page, a worker or a chart may take its time on a busy 2-core machine
    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=viewport)
        page.set_default_timeout(30_000)
        try:
            yield page
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
            raise
        finally:
            browser.close()


def _pick(page, label: str, values: list[str]) -> None:
    """Replace a multiselect's choice with `values`, as a person would: clear, type, Enter."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    box.get_by_role("button", name="Clear all").click()
    for value in values:
        box.locator("input").fill(value)
        page.keyboard.press("Enter")
    page.keyboard.press("Escape")


def test_click_through(server):
    from playwright.sync_api import expect

    with _page({"width": 1400, "height": 1000}) as page:
        sent = []  # what the browser sends the dashboard server: a rerun request is one message
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
        page.goto(server)
        expect(page.get_by_text("No runs yet")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "1-home.png", full_page=True)

        page.get_by_test_id("stSidebar").locator("a").filter(has_text="Run").click()
        expect(page.get_by_role("heading", name="New run")).to_be_visible()
        _pick(page, "Bundled models", ["llamacpp/smollm2-135m"])
        _pick(page, "Cases", ["knowledge-en", "coding-en"])
        max_tokens = page.get_by_role("spinbutton", name="Max tokens", exact=True)
        max_tokens.fill("48")
        max_tokens.press("Enter")
        expect(page.get_by_text("1 models × 2 cases × 1 repeats")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "2-run-form.png", full_page=True)
        page.get_by_role("button", name="Start", exact=True).click()

        expect(page.get_by_test_id("stProgress")).to_be_visible()
        expect(page.get_by_text("Finished: 2 generations")).to_be_visible(timeout=120_000)
        page.screenshot(path=ARTIFACTS / "3-run-done.png", full_page=True)
        # the finished run is drawn without a one-second timer: while a timer ticks, a switch of page can
        # be followed by a rerun of the page left behind, which has cleared the new page
        quiet_from = len(sent)
        page.wait_for_timeout(2500)
        assert sent[quiet_from:] == [], f"{len(sent) - quiet_from} messages sent by an idle finished page"
        expect(page.get_by_role("button", name="Start", exact=True)).to_be_enabled()  # a next run, unasked

        page.locator("[data-testid=stButton] button").filter(has_text="Open the comparison").click()
        expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        expect(page.locator("[data-testid=stVegaLiteChart] svg").first).to_be_visible()
        page.get_by_text("coding-en · coding").click()
        expect(page.get_by_test_id("stText").filter(has_text="def ").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "4-compare.png", full_page=True)

        page.get_by_test_id("stSidebar").get_by_text("中文").click()
        expect(page.get_by_test_id("stSidebar").locator("a").filter(has_text="对比结果")).to_be_visible()
        expect(page.get_by_role("heading", name="指标对比")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "5-compare-zh.png", full_page=True)

        page.get_by_test_id("stSidebar").locator("a").filter(has_text="选型建议").click()
        expect(page.get_by_role("heading", name="选型建议")).to_be_visible()
        expect(page.get_by_text("推荐：llamacpp/smollm2-135m")).to_be_visible()
        expect(page.get_by_role("button", name="保存此决策")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "6-recommend-zh.png", full_page=True)
        # Markdown is the default format: prepared, then downloaded as a zip with the full record beside it
        page.get_by_role("button", name="生成报告").click()
        ready = page.locator("[data-testid=stDownloadButton] button").filter(has_text="modelpick-standard-md.zip")
        with page.expect_download(timeout=60_000) as download:
            ready.click()
        import io
        import zipfile

        with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as z:
            assert "ModelPick 选型决策报告" in z.read("modelpick-standard.md").decode("utf-8")
            assert "generation_parameters" in z.read("modelpick-standard.reproducibility.json").decode("utf-8")
        with page.expect_download(timeout=60_000) as download:  # a second click works too: no rerun between
            ready.click()
        assert Path(download.value.path()).stat().st_size > 0
        page.get_by_test_id("stSidebar").get_by_text("English").click()
        expect(page.get_by_role("heading", name="Recommend")).to_be_visible()
        expect(page.get_by_text("only one model was run")).to_be_visible()
        expect(page.get_by_role("button", name="Save this decision")).to_be_visible()
        # the language changed the summary: the Chinese one is not offered as this page's
        expect(page.get_by_test_id("stDownloadButton")).to_have_count(0)
        page.get_by_test_id("stRadio").filter(has_text="Format").get_by_text("HTML", exact=True).click()
        page.get_by_role("button", name="Prepare the summary").click()
        with page.expect_download(timeout=120_000) as download:  # the first chart render starts its engine
            page.locator("[data-testid=stDownloadButton] button").filter(has_text="modelpick-standard.html").click()
        saved = ARTIFACTS / "decision.html"
        download.value.save_as(saved)
        html = saved.read_text(encoding="utf-8")
        assert "ModelPick decision summary: Standard five-question set" in html and "<svg" in html
        page.screenshot(path=ARTIFACTS / "7-recommend.png", full_page=True)


def test_a_bookmarked_page_on_a_fresh_server_opens_with_the_full_navigation(server):
    from playwright.sync_api import expect

    with _page() as page:
        page.goto(f"{server}/scenarios")  # the very first request this server sees
        # from the first paint on, the sidebar is the app's own navigation, never the
        # pages/ folder listing (lower-case file names and the helper module _shared)
        first = page.get_by_test_id("stSidebar").locator("a")
        expect(first.first).to_be_visible()
        assert "shared" not in " ".join(first.all_inner_texts())
        expect(page.get_by_role("heading", name="Standard five-question set")).to_be_visible()
        links = page.get_by_test_id("stSidebar").locator("a")
        expect(links).to_have_count(6)  # Home, Scenarios, Run, Compare, Recommend, Rate: no legacy pages
        expect(page.get_by_test_id("stSidebar").get_by_text("中文")).to_be_visible()


@pytest.mark.parametrize("server", [{"MODELPICK_PASSWORD": "open sesame"}], indirect=True)
def test_with_a_password_the_browser_sees_a_login_first_and_logs_in(server):
    from playwright.sync_api import expect

    with _page() as page:
        page.goto(f"{server}/compare")
        password = page.get_by_label("Password", exact=True)
        expect(password).to_be_visible()
        expect(page.get_by_test_id("stSidebar").locator("a")).to_have_count(0)  # no navigation yet
        password.fill("not it")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("Wrong password.")).to_be_visible()
        password.fill("open sesame")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("stSidebar").locator("a")).to_have_count(6)
        expect(page.get_by_text("No runs yet")).to_be_visible()


def _db(server_tmp: Path):
    from engine import Store

    return Store(str(server_tmp / "browser.duckdb"))


def _nav(page, label: str) -> None:
    page.get_by_test_id("stSidebar").locator("a").filter(has_text=label).click()


def test_a_run_shows_moving_progress_a_cancel_that_stays_put_and_home_while_it_starts(server, tmp_path):
    """Progress figures appear and change; Cancel keeps its place while the answer streams
    below it; Home opened while the run starts shows it in progress, without an error."""
    from playwright.sync_api import expect

    with _page({"width": 1400, "height": 1000}) as page:
        page.goto(server)
        _nav(page, "Run")
        _pick(page, "Bundled models", ["llamacpp/smollm2-135m"])
        for label, value in [("Max tokens", "160"), ("Repeats", "4")]:  # long enough to watch and cancel
            box = page.get_by_role("spinbutton", name=label, exact=True)
            box.fill(value)
            box.press("Enter")
        expect(page.get_by_text("1 models × 11 cases × 4 repeats")).to_be_visible()
        page.get_by_role("button", name="Start", exact=True).click()
        expect(page.get_by_role("heading", name="Run 20")).to_be_visible()  # the worker is launched
        _nav(page, "Home")  # in its first seconds: no generation is stored yet
        expect(page.get_by_text("is in progress")).to_be_visible()
        assert page.get_by_test_id("stException").count() == 0
        page.get_by_role("button", name="Watch progress").first.click()

        progress = page.get_by_test_id("stProgress")
        expect(progress).to_contain_text("s elapsed", timeout=60_000)
        expect(progress).to_contain_text(re.compile(r"about \d+ (s|min \d+ s|h \d+ min) left"), timeout=60_000)  # after one answer
        first = progress.inner_text()
        assert "–" not in first, first
        cancel = page.locator("[data-testid=stButton] button").filter(has_text="Cancel")
        answer = page.get_by_test_id("stText").first
        expect(answer).to_be_visible()
        boxes, texts = [], []
        for _ in range(4):
            boxes.append(cancel.bounding_box()["y"])
            texts.append(answer.inner_text())
            page.wait_for_timeout(1200)
        assert max(boxes) - min(boxes) < 2, boxes  # the button does not move while the answer grows
        assert progress.inner_text() != first  # the figures move on
        cancel.click()
        expect(page.get_by_text("Cancelled after")).to_be_visible(timeout=60_000)


def test_a_vote_brings_a_new_pair(server, tmp_path):
    from playwright.sync_api import expect

    from engine import RunConfig, Runner, load_scenario

    Runner(_db(tmp_path)).run(RunConfig(load_scenario("standard"), ["fake/echo", "fake/mirror"],
                                        case_ids=["knowledge-en", "coding-en", "writing-zh"]))
    with _page({"width": 1400, "height": 1000}) as page:
        page.goto(server)
        _nav(page, "Rate")
        page.get_by_label("Your name").fill("Mei")
        page.get_by_label("Your name").press("Enter")
        pair = page.get_by_test_id("stCaptionContainer").filter(has_text="· Turn").first
        before = pair.inner_text()
        page.get_by_role("button", name="A is better").click()
        expect(page.get_by_text("Vote saved")).to_be_visible()
        page.get_by_role("button", name="Next pair").click()
        expect(page.get_by_role("button", name="A is better")).to_be_visible()
        expect(pair).not_to_have_text(before)  # never the same case and turn twice in a row
        _nav(page, "Home")
        _nav(page, "Rate")
        expect(page.get_by_label("Your name")).to_have_value("Mei")  # the rater is remembered


def test_every_page_in_chinese_in_the_browser(server, tmp_path):
    """Every page in 中文 after a real run (llama.cpp and a served model): no label in Latin script
    outside model names, specs, ids, figures, units, commands and what the models and the scenario
    wrote; none of Streamlit's own English (uploader, multiselect placeholder, Deploy); model specs
    never become links."""
    from playwright.sync_api import expect

    from engine import load_scenario
    from engine.i18n import TEXT
    from tests.fakeservers import FakeServer, OpenAIHandler

    store = _db(tmp_path)
    with FakeServer(OpenAIHandler) as srv:
        _real_run(store, srv.url, ["return-zh", "escalate-en", "shipping-en", "invented-price-zh"])
    # what is data, not a label: the models' answers and the scenarios' own text
    data = " ".join(store.query("SELECT output_text FROM generations").output_text.fillna(""))
    for sid in ("standard", "customer-service", "kb-qa", "dev-assistant"):
        data += "\n" + "\n".join(_strings(load_scenario(sid).model_dump()))
    # names: the price table's GPUs, providers and sources, the catalog's models and licences, the scenario ids
    names = "\n".join((ROOT / "engine" / f).read_text(encoding="utf-8") for f in ("prices.yaml", "catalog.yaml")) \
        + " standard customer-service kb-qa dev-assistant"
    for sid in ("standard", "customer-service", "kb-qa", "dev-assistant"):  # what the checks look for
        sc = load_scenario(sid)
        names += "\n" + "\n".join(_strings([c.value for case in sc.cases for c in case.checks]
                                            + [c.value for case in sc.cases for turn in case.turns or [] for c in
                                               turn.checks]))
    english = {en for en, zh in TEXT.values() if en != zh and "{" not in en}
    streamlit_own = ["Upload", "per file", "Choose options", "Choose an option", "Deploy", "Drag and drop"]
    with _page({"width": 1400, "height": 1000}) as page:
        page.goto(server)
        expect(page.get_by_text("Deploy")).to_have_count(0)
        page.get_by_test_id("stSidebar").get_by_text("中文").click()
        expect(page.get_by_test_id("stSidebar").locator("a").filter(has_text="首页")).to_be_visible()
        problems = []
        for label in ["首页", "测试场景", "运行测试", "对比结果", "选型建议", "人工评分"]:
            _nav(page, label)
            expect(page.get_by_role("heading", name=label if label != "首页" else "ModelPick").first).to_be_visible()
            page.wait_for_timeout(2500)  # the page settles (charts, fragments, tables)
            for expander in page.get_by_test_id("stExpander").all()[:8]:
                expander.locator("summary").click()
            page.wait_for_timeout(500)
            shown = page.get_by_test_id("stMain").inner_text()
            lines = {line.strip() for line in shown.splitlines() if line.strip()}
            lines |= _grid_texts(page)  # tables are drawn on a canvas: their headers and cells, read apart
            problems += [f"{label}: {line!r}" for line in lines & english]
            problems += [f"{label}: Latin {words} in {line!r}" for line in sorted(lines)
                         if (words := latin_words(line, data, names))]
            problems += [f"{label}: Streamlit's {w!r}" for w in streamlit_own if w in shown]
            placeholders = page.locator("input[placeholder]").evaluate_all("els => els.map(e => e.placeholder)")
            problems += [f"{label}: placeholder {p!r}" for p in placeholders if p in streamlit_own]
            links = page.get_by_test_id("stMain").locator("a").evaluate_all("els => els.map(e => e.href)")
            problems += [f"{label}: link {h!r}" for h in links if "127.0.0.1:" in h and "/v1" in h]
            page.screenshot(path=ARTIFACTS / f"zh-{label}.png", full_page=True)
        assert not problems, "\n".join(problems)
        _nav(page, "测试场景")
        zone = page.get_by_test_id("stFileUploaderDropzone")
        after = zone.locator('[data-testid="stMarkdownContainer"]').first.evaluate(
            "e => getComputedStyle(e, '::after').content")
        assert "上传" in after


# Not labels: model specs, URLs, paths, file names, run and case ids, environment variables, commands
# and their words, and the names of products, units and file columns a Chinese user also writes in Latin.
_NOT_LABELS = re.compile(
    r"\b(?:llamacpp|ollama|openai|fake)/\S+|https?://\S+|(?:~|\.)?/[\w./-]+|\S+\.(?:gguf|yaml|yml|json|jsonl|md|zip|"
    r"pdf|html|csv|duckdb|xlsx|docx|txt|py)\b|\b\d{8}-\d{6}-[0-9a-f]+\b|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|"
    r"(?:python -m engine|\.venv/bin/python|sky (?:launch|down)|ollama (?:pull|serve)|vllm serve|llama-server)[^，。；）]*|"
    r"(?<![\w-])--[a-z][a-z-]*[a-z]\b|"  # a command-line option
    r"python -c '[^']*'|\"[^\"]*\"|(?<!\w)'[^']*'(?!\w)")  # quoted: a piece of an answer or a prompt
_LATIN_OK = set(["ModelPick", "GPU", "GPUs", "CPU", "USD", "CNY", "GB", "MB", "KB", "MiB", "ms", "P95", "SLA", "SLO", "JSON", "JSONL", "HTML", "HTTP", "PDF", "Markdown", "zip", "token", "tokens", "DuckDB", "Ollama", "vLLM", "promptfoo", "promptfooconfig.yaml", "tests.csv", "llama", "cpp", "llama-server", "llama-cpp-python", "GGUF", "SkyPilot", "AI", "ShopCo", "API", "URL", "CSV", "Excel", "Word", "YAML", "OpenAI", "Python", "SQL", "TTFT", "F1", "LLM", "SSH", "llama.cpp", "modelpick", "NVML", "NVIDIA", "SmolLM2", "Gemma", "GPT-OSS-20B", "LLaMA3-8B", "Instruct", "README", "numpy", "backend", "model", "prompt", "reference", "category", "lang", "contains", "exact", "number", "regex", "rubric", "keyboard_arrow_down", "keyboard_arrow_right", "upload", "UTC", "RunPod", "Lambda", "Vast", "community", "secure", "spot", "on-demand"])


def latin_words(line: str, data: str, names: str = "") -> list[str]:
    """The Latin-script words of a line that are labels: none for a line the models or a scenario wrote
    (`data`), and words of `names` (the price table's GPUs, providers and sources) are names."""
    if (len(line) > 12 and line in data) or line in _lines(data) or line[:1] in "[{":  # a check's value
        return []
    rest = _NOT_LABELS.sub(" ", line)
    words = re.findall(r"[A-Za-z][A-Za-z0-9_'.-]*[A-Za-z0-9]", rest)
    written = _words(names)
    return [w for w in words if len(w) > 2 and w not in _LATIN_OK and w.lower() not in written
            and not re.fullmatch(r"[\w-]+-(?:en|zh)|c=\d+", w)]


def _grid_texts(page) -> set[str]:
    """The headers and cells of every data grid on the page (scrolled into view, so it draws them)."""
    out = set()
    for grid in page.get_by_test_id("stDataFrame").all():
        if not grid.is_visible():  # inside a closed expander or tab
            continue
        grid.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        out |= {(c.text_content() or "").strip() for c in grid.locator("[role=columnheader], [role=gridcell]").all()}
    return out - {""}


def _strings(value) -> list[str]:
    """Every string in a nested structure (a scenario's prompts, systems, turns, references)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [x for v in value for x in _strings(v)] if isinstance(value, (list, tuple)) else []


@functools.lru_cache(maxsize=4)
def _lines(data: str) -> frozenset[str]:
    return frozenset(line.strip() for line in data.splitlines())


@functools.lru_cache(maxsize=4)
def _words(data: str) -> frozenset[str]:
    return frozenset(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9_'.-]*[A-Za-z0-9]", data))


def test_a_sheet_of_questions_is_previewed_then_saved_from_the_scenarios_page(server, tmp_path):
    from playwright.sync_api import expect

    sheet = tmp_path / "faq.csv"
    sheet.write_text("prompt,reference,category\nHow long do refunds take?,3 to 5 working days,policy\n"
                     "Do you ship abroad?,Only within the EU,policy\nSay hello,,tone\n", encoding="utf-8")
    with _page({"width": 1400, "height": 1000}) as page:
        page.goto(server)
        _nav(page, "Scenarios")
        page.get_by_role("tab", name="Import a sheet of questions").click()
        page.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(str(sheet))
        expect(page.get_by_text("Preview: scenario 'faq' with 3 cases (not saved yet)")).to_be_visible()
        assert not (Path(os.environ["MODELPICK_USER_SCENARIOS_DIR"]) / "faq.yaml").exists()  # not before Save
        page.get_by_role("button", name="Validate and save").first.click()
        expect(page.get_by_text("Saved scenario 'faq' with 3 cases")).to_be_visible()
        assert (Path(os.environ["MODELPICK_USER_SCENARIOS_DIR"]) / "faq.yaml").exists()


def _real_run(store, served_url: str, cases: list[str]):
    """Customer service on the bundled SmolLM2 through llama.cpp and a model behind a real
    OpenAI-compatible server on loopback (its spec long, as a served model's is)."""
    from engine import RunConfig, Runner, load_scenario

    served = f"openai/echo@{served_url}/v1"
    Runner(store).run(RunConfig(load_scenario("customer-service"), ["llamacpp/smollm2-135m", served],
                                case_ids=cases, max_tokens=24))
    return served


def _shown_columns(grid) -> list[str]:
    """The headers a data grid draws: it renders only the columns in view (virtualised), so a
    column that needs a sideways scroll is not among them."""
    return [h.inner_text().strip() for h in grid.locator("[role=columnheader]").all()]


@pytest.mark.parametrize("width", [1400, 1920])
def test_every_key_figure_is_visible_without_scrolling_sideways(server, tmp_path, width):
    from playwright.sync_api import expect

    from engine.i18n import t
    from engine.recommend import recommend
    from tests.fakeservers import FakeServer, OpenAIHandler

    store = _db(tmp_path)
    with FakeServer(OpenAIHandler) as srv:
        served = _real_run(store, srv.url, ["return-en", "escalate-zh", "shipping-en", "cancel-zh"])
    models = ["llamacpp/smollm2-135m", served]
    # the criteria measured; the timings weighed even where this machine was busy during the run (the
    # browser and the dashboard share its two cores), as the page's "Trust these timings" box asks
    weighted = {t(f"crit_{c}") for c in recommend(store, "customer-service", trust_timings=True).weights}
    with _page({"width": width, "height": 1000}) as page:
        page.goto(server)
        # Home: each verdict whole, never cut to "openai/echo@http://1…"
        card = page.get_by_test_id("stMain").locator("h4").first
        expect(card).to_be_visible()
        assert card.inner_text().strip() in [*models, "Too close to call"]
        assert card.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        leader = page.get_by_test_id("stCaptionContainer").filter(has_text="P(first)").first.inner_text()
        assert any(leader.strip().endswith(m) for m in models)  # the leader's spec whole, the long one too

        _nav(page, "Recommend")
        expect(page.get_by_role("heading", name="Recommend")).to_be_visible()
        page.get_by_text("Trust these timings", exact=True).click()
        expect(page.get_by_role("checkbox", name="Trust these timings")).to_be_checked()
        chart = page.locator("[data-testid=stVegaLiteChart]").first
        expect(chart.locator("g.role-legend-label text").first).to_be_visible()
        page.wait_for_timeout(1500)
        # the score chart: every weighted criterion in its legend, each model's name whole on its own row
        legend = {t.text_content() for t in chart.locator("g.role-legend-label text").all()}
        assert legend == weighted and len(legend) >= 3
        names = [t for t in chart.locator("g.role-axis-label text").all() if "/" in (t.text_content() or "")]
        assert sorted(t.text_content() for t in names) == sorted(models)  # not cut with "…"
        boxes = sorted((t.bounding_box() for t in names), key=lambda b: b["y"])
        assert boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"]  # not printed over each other
        assert all(b["x"] >= 0 and b["x"] + b["width"] <= width for b in boxes)
        grids = page.get_by_test_id("stDataFrame")
        ranking = _shown_columns(grids.first)
        assert ranking == ["Model", "Score", "P(first)", "Excluded because"]
        expect(page.get_by_role("heading", name="Caveats")).to_be_visible()  # the page has run to its end
        cost = next(g for g in grids.all() if "Cost per 1,000 requests (USD)" in _shown_columns(g))
        key = ["Model", "GPU", "Cost per 1,000 requests (USD)", "GPUs needed", "Monthly cost (USD)",
               "Test session cost (USD)"]
        shown = _shown_columns(cost)
        assert shown[:6] == key and len(shown) > 6  # the column after the last key one starts in view
        page.screenshot(path=ARTIFACTS / f"recommend-{width}.png")

        _nav(page, "Scenarios")
        expect(page.get_by_role("heading", name="Standard five-question set")).to_be_visible()
        expect(page.get_by_text("How fine a difference these cases can tell apart")).to_be_visible()
        page.wait_for_timeout(1500)  # the grids draw their headers
        power = next(g for g in page.get_by_test_id("stDataFrame").all() if "Cases" in _shown_columns(g))
        assert _shown_columns(power)[:3] == ["Category", "Cases", "Smallest detectable difference"]
