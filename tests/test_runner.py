import os
import threading

import pytest

from engine.backends import Backend, BackendError, EngineReport, register_backend
from engine.runner import RunConfig, Runner
from engine.scenarios import load_scenario, parse_scenario

SMALL = """
id: small
name: Small
description: d
weights: {quality: 1}
defaults: {max_tokens: 50}
cases:
  - id: greet
    category: knowledge
    prompt: hello world
    checks:
      - {type: contains, value: hello}
  - id: chat
    category: multi_turn
    turns:
      - user: first question
        checks: [{type: contains, value: first}]
      - user: second question
        checks: [{type: contains, value: second}]
  - id: bye
    category: knowledge
    prompt: goodbye
    checks:
      - {type: contains, value: nothing-like-this}
"""


@pytest.fixture
def small():
    return parse_scenario(SMALL, "small.yaml")


def gens(store, run_id):
    return store.generations(run_id)


def test_run_records_every_generation_with_checks(store, small):
    run_id = Runner(store).run(RunConfig(small, ["fake/echo"], repeats=2))
    g = gens(store, run_id)
    assert len(g) == 2 * 4  # 2 repeats x (1 + 2 turns + 1)
    assert g.ok.all()
    assert store.get_run(run_id)["status"] == "done"
    assert store.get_run(run_id)["planned_generations"] == 8
    # load time belongs to the first generation only
    assert g.load_ms.notna().sum() == 1
    assert (g.ttft_ms > 0).all() and (g.e2e_ms >= g.ttft_ms).all()
    checks = store.check_results(run_id)
    assert len(checks) == 2 * 4
    assert checks[checks.case_id == "bye"].passed.sum() == 0
    assert checks[checks.case_id == "greet"].passed.all()
    # the fake says its token counts come from the stream, and the row says so
    assert set(g.tokens_source) == {"stream"}


def test_multi_turn_sends_the_history_with_the_models_own_answers(store, small):
    seen = []

    class Spy(Backend):
        def __init__(self, spec, **_):
            pass

        def stream(self, messages, params):
            seen.append([dict(m) for m in messages])
            yield f"answer {len(seen)}"
            yield EngineReport(prompt_tokens=1, output_tokens=2)

    register_backend("spy", Spy)
    Runner(store).run(RunConfig(small, ["spy/x"], case_ids=["chat"], warmup=False))
    marker = seen[0][0]["content"].split(" ", 1)[0]  # cold: the conversation starts with its own marker
    assert seen[1] == [
        {"role": "user", "content": f"{marker} first question"},
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "second question"},
    ]


def test_failing_model_among_good_ones_does_not_stop_the_run(store, small):
    run_id = Runner(store).run(RunConfig(small, ["fake/echo", "fake/load-error", "fake/flaky"]))
    g = gens(store, run_id)
    assert store.get_run(run_id)["status"] == "done"
    assert g[g.model_spec == "fake/echo"].ok.all()
    broken = g[g.model_spec == "fake/load-error"]
    assert len(broken) == 4 and not broken.ok.any()
    assert broken.error.str.contains("load failed").all()
    flaky = g[g.model_spec == "fake/flaky"]
    assert flaky.ok.any() and not flaky.ok.all()
    # a failed generation's checks count as failed, not as missing
    checks = store.check_results(run_id)
    assert not checks[checks.model_spec == "fake/load-error"].passed.any()


def test_error_mid_stream_keeps_what_was_measured(store, small):
    run_id = Runner(store).run(RunConfig(small, ["fake/error-mid"], case_ids=["greet"], warmup=False))
    row = gens(store, run_id).iloc[0]
    assert not row.ok and "mid-stream" in row.error
    assert row.output_text == f"Echo: {row.cache_marker}"  # the two words that arrived (a cold prompt's first)
    assert row.ttft_ms > 0


def test_later_turns_are_not_run_after_a_failed_turn(store, small):
    run_id = Runner(store).run(RunConfig(small, ["fake/error-mid"], case_ids=["chat"], warmup=False))
    g = gens(store, run_id).sort_values("turn")
    assert g.error.iloc[1] == "not run: turn 1 failed"


def test_cancellation_marks_the_run_interrupted(store, small):
    cancel = threading.Event()
    done = []

    def progress(p):
        done.append(p)
        if p.done == 2:
            cancel.set()

    run_id = Runner(store, on_progress=progress, cancel=cancel).run(
        RunConfig(small, ["fake/echo", "fake/slow"], repeats=3))
    assert store.get_run(run_id)["status"] == "interrupted"
    assert len(gens(store, run_id)) == 2
    assert [p.done for p in done] == [1, 2] and done[0].total == 24


def test_unknown_model_is_rejected_before_anything_is_written(store, small):
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        Runner(store).run(RunConfig(small, ["fake/echo", "nope/model"]))
    with pytest.raises(BackendError, match="llamacpp/not-a-model"):
        Runner(store).run(RunConfig(small, ["llamacpp/not-a-model"]))
    assert store.query("SELECT count(*) AS n FROM runs").n[0] == 0


def test_crash_of_the_store_marks_the_run_failed(store, small, monkeypatch):
    calls = {"n": 0}
    real_add = store.add_generation

    def add(row, checks, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real_add(row, checks, **kw)

    monkeypatch.setattr(store, "add_generation", add)
    with pytest.raises(OSError):
        Runner(store).run(RunConfig(small, ["fake/echo"]))
    run = store.query("SELECT * FROM runs").iloc[0]
    assert run.status == "failed" and "disk full" in run.error
    assert store.query("SELECT count(*) AS n FROM generations").n[0] == 1  # the first is kept


def test_scenario_defaults_and_overrides_reach_the_backend(small):
    cfg = RunConfig(small, ["fake/echo"], max_tokens=7, seed=3)
    p = cfg.params(small.cases[0], repeat=1)
    assert (p.max_tokens, p.temperature, p.seed) == (7, 0.0, 4)
    assert RunConfig(small, ["fake/echo"]).params(small.cases[0], 0).max_tokens == 50


def test_standard_scenario_runs_end_to_end_on_the_fake(store):
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo"]))
    assert store.get_run(run_id)["status"] == "done"
    assert gens(store, run_id).ok.all()


def test_models_on_one_host_are_interleaved_in_a_recorded_shuffled_order(store):
    import json

    sc = load_scenario("standard")
    run_id = Runner(store).run(RunConfig(sc, ["fake/echo", "fake/mirror"], repeats=2, seed=7,
                                         case_ids=["knowledge-en", "knowledge-zh", "coding-en"]))
    schedule = json.loads(store.get_run(run_id)["config_json"])["schedule"]
    assert schedule["mode"] == "interleaved" and len(schedule["order"]) == 6
    firsts = [order[0] for _, _, order in schedule["order"]]
    assert set(firsts) == {"fake/echo", "fake/mirror"}  # neither model always goes first
    g = store.generations(run_id).sort_values("started_at")
    ran = list(zip(g.case_id, g.repeat, g.model_spec))
    expected = [(case, rep, m) for case, rep, order in schedule["order"] for m in order]
    assert ran == expected


def test_models_that_cannot_share_a_host_run_in_abba_blocks(store):
    import json

    from engine.backends import register_backend
    from engine.backends.fake import FakeBackend

    class Exclusive(FakeBackend):
        shares_host = False  # like Ollama: loading one may evict the other

    register_backend("exclusive", Exclusive)
    sc = load_scenario("standard")
    cases = ["knowledge-en", "knowledge-zh", "coding-en", "coding-zh"]
    run_id = Runner(store).run(RunConfig(sc, ["exclusive/a", "exclusive/b"], case_ids=cases))
    schedule = json.loads(store.get_run(run_id)["config_json"])["schedule"]
    assert schedule["mode"] == "abba"
    assert [b["models"] for b in schedule["blocks"]] == [["exclusive/a", "exclusive/b"], ["exclusive/b", "exclusive/a"]]
    g = store.generations(run_id).sort_values("started_at")
    assert list(g.model_spec) == ["exclusive/a"] * 2 + ["exclusive/b"] * 4 + ["exclusive/a"] * 2
    assert list(g.case_id) == cases[:2] + cases[:2] + cases[2:] + cases[2:]
    # load time is the cold load only: once per model
    assert g.load_ms.notna().groupby(g.model_spec).sum().tolist() == [1, 1]


def test_host_information_is_a_leaf_and_each_backend_adds_what_it_knows(store):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    probe = ("import sys, engine.hostinfo as h; info = h.host_info(); "
             "print('llama_cpp' in sys.modules, 'engine.backends.llamacpp' in sys.modules, sorted(info))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    loaded_native, loaded_backend, keys = out.stdout.split(" ", 2)
    assert (loaded_native, loaded_backend) == ("False", "False"), out.stderr  # no native library for a description
    assert "cpu_model" in keys and "llama_gpu_offload" not in keys
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["llamacpp/smollm2-135m", "fake/echo"],
                                         case_ids=["knowledge-en"], max_tokens=4))
    host = json.loads(store.get_run(run_id)["host_json"])
    assert host["engines"]["llamacpp/smollm2-135m"]["llama_cpp_python"] == "0.3.36"
    assert host["llama_gpu_offload"] is host["engines"]["llamacpp/smollm2-135m"]["llama_gpu_offload"]
    assert "fake/echo" not in host["engines"]  # it knows nothing of a machine


def test_a_backend_declares_what_it_is_and_everything_reads_that():
    from engine.backends import Backend, backend_class, is_served, parse_spec, register_backend

    assert (backend_class("ollama").served, backend_class("ollama").default_place) == (True, "ollama-default")
    assert backend_class("openai").streams_async and not backend_class("llamacpp").served
    assert parse_spec("ollama/llama3:8b").place == "ollama-default" and parse_spec("llamacpp/x").place == "local"

    class Remote(Backend):  # a new backend: one class, one registration
        served, default_place, streams_async = True, "remote-default", True

        def __init__(self, spec, **_):
            self.spec = str(spec)

        def stream(self, messages, params):
            yield from ()

    register_backend("remote-test", Remote)
    assert is_served("remote-test/m") and parse_spec("remote-test/m").place == "remote-default"
    from engine import worker

    assert not any("over HTTP" in p for p in worker.preflight_sweep("remote-test/m@http://127.0.0.1:9/v1"))
    assert "not an in-process fake/" in worker.preflight_sweep("fake/echo")[0]


def test_every_generation_has_telemetry_and_without_a_gpu_its_gpu_columns_are_empty(store):
    from engine.hostinfo import gpus
    from engine.telemetry import Sampler

    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["llamacpp/smollm2-135m"],
                                         case_ids=["knowledge-en", "coding-en"], max_tokens=48))
    g = store.query("SELECT * FROM generations WHERE run_id = ?", [run_id])
    assert not list(store.journal_path(run_id).parent.glob("*.reserve"))  # the space set aside is given back
    assert (g.telemetry_samples >= 2).all()  # one at the start, one at the end, 20 Hz between
    assert (g.peak_rss_mb > 50).all()  # this process holds the model: far more than a bare Python
    assert (g.peak_ram_used_mb > g.peak_rss_mb).all() and g.mean_cpu_pct.between(0, 100).all()
    if not gpus():
        assert g[["peak_vram_mb", "mean_gpu_util_pct", "mean_gpu_power_w"]].isna().all().all()
    # the sampler by hand: a busy loop shows as CPU use, a 40 MB allocation as a peak
    with Sampler(os.getpid()) as s:
        blob = bytearray(40 * 2**20)
        end = __import__("time").perf_counter() + 0.3
        while __import__("time").perf_counter() < end:
            pass
    row = s.data.row()
    assert row["telemetry_samples"] >= 3 and row["mean_cpu_pct"] > 20
    assert row["peak_rss_mb"] - s.data.rss_mb[0] >= 35
    del blob


def test_with_an_nvidia_gpu_the_fingerprint_has_driver_and_cuda_and_generations_gpu_figures(store, monkeypatch):
    # No GPU here: NVML's module is replaced by a stand-in with one H100 (tests/fake_nvml.py)
    import json
    import sys

    from engine.hostinfo import host_info, process_vram_mb
    from engine.telemetry import Sampler
    from tests import fake_nvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    info = host_info()
    assert info["nvidia_driver"] == "550.54.15" and info["cuda_driver"] == "12.4"
    assert info["gpus"] == [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_total_mb": 81920.0,
                             "memory_used_mb": 4096.0}]
    monkeypatch.setitem(fake_nvml.STATE, "pids", {os.getpid(): 1500.0})
    assert process_vram_mb() == 1500.0
    with Sampler(os.getpid(), interval_s=0.01) as s:
        __import__("time").sleep(0.05)
        monkeypatch.setitem(fake_nvml.STATE, "used_mb", 6144.0)  # a peak while it runs
    row = s.data.row()
    assert row["peak_vram_mb"] == 6144.0 and row["mean_gpu_util_pct"] == 60 and row["mean_gpu_power_w"] == 250.0
    run_id = Runner(store).run(RunConfig(load_scenario("standard"), ["fake/echo"], case_ids=["knowledge-en"]))
    host = json.loads(store.get_run(run_id)["host_json"])
    assert host["cuda_driver"] == "12.4" and host["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    g = store.generations(run_id)
    assert (g.peak_vram_mb == 6144.0).all() and (g.mean_gpu_util_pct == 60).all()


def test_without_a_driver_the_versions_are_none(monkeypatch):
    import sys
    from types import SimpleNamespace

    from engine.hostinfo import nvidia

    def no_driver():
        raise OSError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", SimpleNamespace(nvmlInit=no_driver))
    assert nvidia() == {"gpus": [], "nvidia_driver": None, "cuda_driver": None}


# -- the schedule and the recorder, each without a model --------------------------------------

def test_the_schedule_interleaves_models_that_fit_and_runs_abba_blocks_otherwise(small):
    from engine.schedule import plan

    cells = [(c, r) for c in small.cases for r in range(2)]  # 6 cells
    one = plan(["a"], cells, fit_together=True, seed=1)
    assert one.mode == "sequential" and one.record() == {"mode": "sequential", "models": ["a"]}
    mixed = plan(["a", "b", "c"], cells, fit_together=True, seed=3)
    assert mixed.mode == "interleaved" and len(mixed.orders) == len(cells)
    assert all(sorted(o) == ["a", "b", "c"] for o in mixed.orders)
    assert len({tuple(o) for o in mixed.orders}) > 1  # shuffled, not one fixed order
    assert plan(["a", "b", "c"], cells, True, seed=3).orders == mixed.orders  # from the seed
    assert mixed.record()["order"][0] == [cells[0][0].id, 0, mixed.orders[0]]
    abba = plan(["a", "b"], cells, fit_together=False, seed=None)
    assert abba.mode == "abba"
    assert [m for m, _ in abba.blocks] == [["a", "b"], ["b", "a"]]
    assert [len(part) for _, part in abba.blocks] == [3, 3]
    assert abba.record()["blocks"][1]["cells"] == [[c.id, r] for c, r in cells[3:]]


def test_the_recorder_scores_and_writes_a_generation_without_a_backend(store, small):
    from engine.recorder import Recorder, Timed

    run_id = store.create_run("small", {"models": ["m"]}, {}, 2)
    seen = []
    rec = Recorder(store, run_id, total=2, on_progress=seen.append).start()
    greet = small.cases[0]
    _, checks = greet.turn_inputs()[0]
    rec.record("m", greet, 0, 0, Timed(text="hello there", first_token_s=0.1, ttft_s=0.1, last_chunk_s=0.3,
                                       gaps_ms=[100.0, 100.0], e2e_s=0.3,
                                       report=EngineReport(prompt_tokens=2, output_tokens=3)),
               None, {"rss_mb": 10.0}, checks, question="hello world", prompt_parts=("hello world",))
    rec.record("m", greet, 1, 0, Timed(error="load failed: no file"), None, {}, checks)
    rec.settle("done")
    # a settled run beats no more: no thread of it is left inside the database's native code when the
    # process exits (the interpreter's shutdown aborts a process that has one)
    assert not rec._beating.is_alive()
    g = store.generations(run_id).sort_values("repeat")
    assert list(g.ok) == [True, False] and g.iloc[0].ttft_ms == pytest.approx(100.0)
    assert g.iloc[0].output_tokens == 3 and g.iloc[0].stream_decode_tok_per_s == pytest.approx(2 / 0.2)
    scores = store.query("SELECT repeat, score, detail FROM check_results WHERE run_id = ? ORDER BY repeat", [run_id])
    assert list(scores.score) == [1.0, 0.0] and scores.detail.iloc[1] == "generation failed"
    assert [p.done for p in seen] == [1, 2] and store.get_run(run_id)["status"] == "done"
