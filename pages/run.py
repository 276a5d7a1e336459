from pathlib import Path

import streamlit as st

from engine import bundled_models, catalog, cloud, cost, list_scenario_ids, load_scenario, sweep, worker
from engine.backends import BackendError
from engine.backends.base import DEFAULT_MAX_CONTEXT
from engine.backends.ollama import installed_models as ollama_installed
from engine.i18n import TEXT
from engine.scenarios import ScenarioError
from pages._shared import duration, entry_guard, labeller, lang, scenario_label, spec, store, table, text, tr

entry_guard()

st.title(tr("nav_run"))
s = store()

active = st.session_state.get("active_run") or next(iter(worker.running_runs(s)), None)


def progress_bar(status, kind: str, **extra) -> None:
    """Done of total, time elapsed and, once something is done, the time left (run or sweep)."""
    total = status.total or 1
    key = f"{kind}_progress_final" if status.finished else (
        f"{kind}_progress" if status.remaining_s is not None else f"{kind}_progress_first")
    st.progress(min(status.done / total, 1.0), text=tr(
        key, done=status.done, total=total, elapsed=duration(status.elapsed_s), remaining=duration(status.remaining_s),
        **extra))


@st.fragment(run_every=1.0)
def ticking(job_id: str, status_of, panel) -> None:
    status = status_of(s, job_id)
    if status.finished:
        st.rerun()  # the whole page again, without this fragment (see live)
    panel(job_id, status)


def live(job_id: str, status_of, panel) -> None:
    """Draw `panel(job_id, status)`; while the job goes on, again every second in a fragment. Once it has
    finished, the page draws it without the fragment, so the browser's one-second timer is gone before a
    button of the finished panel switches page (a timer that fires after a switch reruns a fragment of the
    page left behind, and the browser has been seen to clear the new page then)."""
    status = status_of(s, job_id)
    if status.finished:
        panel(job_id, status)
    else:
        ticking(job_id, status_of, panel)


def progress_panel(run_id: str, status) -> None:
    st.subheader(tr("run_active", run_id=run_id))
    if status.status == "starting":
        st.info(tr("run_starting"))
        return
    progress_bar(status, "run")
    if not status.finished:
        # the button first: it stays where the hand is while the answer below grows
        if st.button(tr("run_cancel"), key="cancel"):
            worker.cancel_run(s, run_id)
            st.toast(tr("run_cancelling"))
        if status.model_spec:
            st.caption(tr("run_generating", model=spec(status.model_spec), case=status.case_id))
            st.text(status.partial_text[-3000:])  # model output: shown as text, never HTML
        return
    if status.status == "done":
        st.success(tr("run_done", done=status.done))
    elif status.status == "interrupted":
        st.warning(tr("run_interrupted", done=status.done, total=status.total or status.done))
        if status.error and status.error != "cancelled":
            st.caption(text(status.error))
    else:
        st.error(tr("run_failed", error=status.error or ""))
    for f in status.failures:
        if f["signal"]:
            st.error(tr("run_engine_died", model=spec(f["model_spec"]), signal=f["signal"],
                        why=tr(f"signal_{f['signal']}") if f"signal_{f['signal']}" in TEXT else f["signal"],
                        failed=f["failed"], total=f["total"]))
        else:
            st.warning(tr("run_model_failed", model=spec(f["model_spec"]), failed=f["failed"], total=f["total"]))
        st.text(f["error"])  # the engine's own words, as text
    if status.status in ("interrupted", "failed") and st.button(tr("run_resume"), key="resume"):
        st.session_state.active_run = worker.start_resume(s.path, run_id)
        st.rerun()
    if status.done and st.button(tr("run_open_compare"), type="primary", key="open-compare"):
        st.session_state.compare_run = run_id
        st.session_state.active_run = None
        st.switch_page("pages/compare.py")


if active:
    live(active, worker.run_status, progress_panel)
    st.divider()

st.subheader(tr("run_new"))
scenario_ids = list_scenario_ids()
scenario_id = st.selectbox(tr("scenario"), scenario_ids, format_func=scenario_label(),
                           index=scenario_ids.index("standard") if "standard" in scenario_ids else 0,
                               placeholder=tr("choose_option"))
try:
    scenario = load_scenario(scenario_id)
except ScenarioError as exc:
    st.error(text(str(exc)))
    st.stop()

bundled = [f"llamacpp/{m.id}" for m in bundled_models()]
chosen = st.multiselect(tr("run_bundled_models"), bundled, default=bundled, key="bundled",
                        placeholder=tr("choose_options"))

with st.expander(tr("run_catalog")):
    st.caption(tr("run_catalog_help"))
    table(catalog.catalog_table())
    gguf = st.text_input(tr("run_gguf_path"), placeholder="/models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf")

with st.expander(tr("run_servers")):
    presets = catalog.load_presets()
    chosen_presets = st.multiselect(tr("run_presets"), list(presets), format_func=lambda p: presets[p].title(lang()),
                                    key="presets", placeholder=tr("choose_options"))
    for pid in chosen_presets:
        st.caption(tr("run_preset_serve"))
        st.code(presets[pid].serve, language="bash")
    ollama_host = st.text_input(tr("run_ollama_host"), value=worker.default_ollama_host(), key="ollama_host")
    if st.button(tr("run_ollama_list"), key="ollama-list"):
        try:
            st.session_state.ollama_installed = ollama_installed(ollama_host)
        except BackendError as exc:
            st.session_state.ollama_installed = []
            st.error(text(str(exc)))
    installed = st.session_state.get("ollama_installed") or []
    picked = st.multiselect(tr("run_ollama_installed"), installed, key="ollama_picked",
                            placeholder=tr("choose_options")) if installed else []
    ollama_tags = st.text_input(tr("run_ollama_models"), placeholder="llama3:8b-instruct, gpt-oss:20b",
                                key="ollama_tags")
    ollama_tags = ", ".join([*picked, ollama_tags]) if picked else ollama_tags
    openai_url = st.text_input(tr("run_openai_url"), placeholder="http://localhost:8000/v1", key="openai_url")
    openai_models = st.text_input(tr("run_openai_models"), placeholder="openai/gpt-oss-20b", key="openai_models")
    extra = st.text_area(tr("run_extra_specs"), placeholder="llamacpp/smollm2-135m", key="extra_specs")

c1, c2, c3, c4 = st.columns(4)
repeats = c1.number_input(tr("run_repeats"), min_value=1, max_value=50, value=1)
max_tokens = c2.number_input(tr("run_max_tokens"), min_value=1, max_value=32768,
                             value=scenario.defaults.max_tokens)
temperature = c3.slider(tr("run_temperature"), 0.0, 2.0, float(scenario.defaults.temperature), 0.05)
gpu_layers = c4.number_input(tr("run_gpu_layers"), min_value=-1, max_value=1000, value=0,
                             help=tr("run_gpu_layers_help"))
max_context = st.number_input(tr("run_max_context"), min_value=256, max_value=1_048_576, value=DEFAULT_MAX_CONTEXT,
                              step=1024, help=tr("run_max_context_help"), key="max_context")
cache_mode = st.radio(tr("run_cache"), ["cold", "warm"], horizontal=True, key="cache_mode",
                      format_func=labeller("cache_{}"), help=tr("run_cache_help"))
judge = st.text_input(tr("run_judge"), placeholder="ollama/qwen2.5:7b-instruct", key="judge",
                      help=tr("run_judge_help"))
case_ids = [c.id for c in scenario.cases]
cases = st.multiselect(tr("run_cases"), case_ids, default=case_ids, key=f"cases-{scenario_id}",
                       placeholder=tr("choose_options"))

specs = worker.collect_specs(chosen + [presets[p].spec for p in chosen_presets], gguf, ollama_host,
                             ollama_tags, openai_url, openai_models, extra)
st.caption(tr("run_plan", models=len(specs), cases=len(cases), repeats=repeats))

if st.button(tr("run_start"), type="primary", disabled=bool(active and not worker.run_status(s, active).finished)):
    problems = worker.preflight(specs, cases) + (worker.preflight([judge.strip()]) if judge.strip() else [])
    if problems:
        for p in problems:
            st.error(text(p))
    else:
        st.session_state.active_run = worker.start_run(
            s.path, scenario.source_path or scenario_id, specs, repeats=int(repeats),
            max_tokens=int(max_tokens), temperature=float(temperature), gpu_layers=int(gpu_layers),
            case_ids=cases if len(cases) < len(case_ids) else None, judge=judge.strip() or None,
            max_context=int(max_context), cache_mode=cache_mode)
        st.rerun()


def sweep_panel(sweep_id: str, status) -> None:
    st.markdown(f"**{tr('sweep_active', id=sweep_id)}**")
    if status.status == "starting":
        st.info(tr("run_starting"))
        return
    progress_bar(status, "sweep", level=status.level or "–")
    if not status.finished:
        if st.button(tr("run_cancel"), key="cancel-sweep"):
            worker.cancel_run(s, sweep_id)
            st.toast(tr("sweep_cancelling"))
        return
    if status.status == "done":
        st.success(tr("sweep_done"))
    elif status.status == "interrupted":
        st.warning(tr("sweep_interrupted"))
    else:
        st.error(tr("run_failed", error=status.error or ""))
    levels = sweep.sweep_levels(s, sweep_id)
    if not levels.empty:
        table(levels.drop(columns=["sweep_id", "slo_json"]))
        if st.button(tr("run_open_compare"), key="sweep-compare"):
            st.session_state.compare_sweep = sweep_id
            st.switch_page("pages/compare.py")


st.divider()
st.subheader(tr("sweep_title"))
st.caption(tr("sweep_help"))
active_sweep = st.session_state.get("active_sweep")
if active_sweep:
    live(active_sweep, worker.sweep_status, sweep_panel)
w1, w2, w2b = st.columns([2, 1, 1])
sweep_model = w1.text_input(tr("sweep_model"), placeholder="openai/gpt-oss-20b@http://127.0.0.1:8000/v1",
                            key="sweep_model", help=tr("sweep_model_help"))
sweep_levels_text = w2.text_input(tr("sweep_levels"), value="1,2,4,8", key="sweep_levels")
sweep_rates_text = w2b.text_input(tr("sweep_rates"), placeholder="0.5,1,2,4", key="sweep_rates",
                                  help=tr("sweep_rates_help"))
w3, w4, w5, w6, w7 = st.columns(5)
sweep_requests = w3.number_input(tr("sweep_requests"), 0, 10_000, 0, help=tr("sweep_requests_help"),
                                 key="sweep_requests")
sweep_max_tokens = w4.number_input(tr("sweep_max_tokens"), 1, 32768, scenario.defaults.max_tokens,
                                   key="sweep_max_tokens")
slo = {k: v for k, v in {
    "ttft_ms": w5.number_input(tr("sweep_slo_ttft"), 0.0, 1e6, 0.0, 50.0, key="sweep_slo_ttft"),
    "e2e_ms": w6.number_input(tr("sweep_slo_e2e"), 0.0, 1e7, 0.0, 100.0, key="sweep_slo_e2e"),
    "itl_ms": w7.number_input(tr("sweep_slo_itl"), 0.0, 1e5, 0.0, 5.0, key="sweep_slo_itl"),
}.items() if v > 0}
w8, w9 = st.columns([1, 3])
sweep_warmup = w8.number_input(tr("sweep_warmup"), 0, 1000, 0, key="sweep_warmup", help=tr("sweep_warmup_help"))
sweep_find_max = w9.checkbox(tr("sweep_find_max"), key="sweep_find_max", help=tr("sweep_find_max_help"))
sweep_busy = bool(active_sweep and not worker.sweep_status(s, active_sweep).finished)
if st.button(tr("sweep_start"), key="start-sweep", disabled=sweep_busy):
    try:
        rates = sweep.parse_rates(sweep_rates_text) if sweep_rates_text.strip() else []
        levels = sweep.parse_levels(sweep_levels_text) if sweep_levels_text.strip() or not rates else []
        problems = worker.preflight_sweep(sweep_model.strip())
        if not problems:
            st.session_state.active_sweep = worker.start_sweep(
                s.path, scenario.source_path or scenario_id, sweep_model.strip(), levels,
                requests=int(sweep_requests) or None, max_tokens=int(sweep_max_tokens), slo=slo, rates=rates,
                warmup=int(sweep_warmup), find_max=sweep_find_max)
    except ValueError as exc:
        problems = [str(exc)]
    for p in problems:
        st.error(text(p))
    if not problems:
        st.rerun()


st.divider()
st.subheader(tr("cloud_title"))
st.caption(tr("cloud_help"))
c1, c2 = st.columns(2)
cloud_presets = c1.multiselect(tr("run_presets"), list(presets), default=["gpt-oss-20b-vllm", "llama3-8b-ollama"],
                               format_func=lambda p: presets[p].title(lang()), key="cloud_presets",
                               placeholder=tr("choose_options"))
cloud_scenarios = c2.multiselect(tr("cloud_scenarios"), scenario_ids, default=[scenario_id], key="cloud_scenarios",
                                 format_func=scenario_label(), placeholder=tr("choose_options"))
c3, c4, c5, c6 = st.columns(4)
book = cost.price_book(s)
auto = tr("rec_gpu_cheapest")
cloud_gpu = c3.selectbox(tr("rec_gpu"), [None, *book.gpus], format_func=lambda g: auto if g is None else g,
                         key="cloud_gpu", placeholder=tr("choose_option"))
cloud_hours = c4.number_input(tr("cloud_hours"), 0.25, 72.0, 2.0, 0.25, key="cloud_hours")
cloud_budget = c5.text_input(tr("cloud_budget"), placeholder="10USD", key="cloud_budget")
cloud_spot = c6.checkbox(tr("cloud_spot"), key="cloud_spot")
try:
    session = cloud.plan(cloud_scenarios, cloud_presets, gpu=cloud_gpu, spot=cloud_spot, hours=float(cloud_hours),
                         budget=cloud_budget.strip() or None, store=s)
except (ValueError, ScenarioError) as exc:
    st.error(text(str(exc)))
else:
    st.text(session.summary(lang()))  # GPU, price with its source and date, cost, the commands
    folder = Path(s.path).parent / "cloud-sessions"
    for c in session.clusters:
        task = cloud.task_text(session, c)
        st.download_button(tr("cloud_download", name=c.name), task, f"{c.name}.yaml", "text/yaml", key=f"dl-{c.name}")
    why = cloud.sky_install_hint()
    if why:
        st.caption(text(why))
    elif st.button(tr("cloud_launch"), key="cloud-launch"):
        paths = cloud.write(session, folder / f"{session.clusters[0].name}.yaml")
        st.session_state.cloud_launch = worker.start_cloud_launch(s.path, paths[0])
        st.rerun()
    launching = st.session_state.get("cloud_launch")
    if launching:
        st.caption(tr("cloud_launch_log"))
        st.code(worker.log_tail(s.path, launching, 40) or "…", language="text")
