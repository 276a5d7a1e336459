"""llama.cpp in an engine process of its own: a death by signal fails that model's cells, named,
and nothing else; the install check names the signal a broken build dies of."""
import os
import signal
import sys

import psutil
import pytest

from engine.backends import BackendError, GenParams, resolve
from engine.backends.llamacpp import EngineDied
from engine.runner import RunConfig, Runner
from engine.scenarios import load_scenario
from tests.conftest import ROOT, collect

sys.path.insert(0, str(ROOT / "scripts"))
import install_engine  # noqa: E402

QUESTION = [{"role": "user", "content": "Name three colours."}]


def _engine_processes() -> list[psutil.Process]:
    def cmdline(p: psutil.Process) -> list[str]:
        try:
            return p.cmdline()
        except psutil.NoSuchProcess:  # ended (or a zombie an earlier test left unreaped): not an engine
            return []
    return [p for p in psutil.Process().children(recursive=True)
            if any("llamacpp_engine.py" in part for part in cmdline(p))]


def test_the_model_runs_in_its_own_process_whose_memory_is_the_models():
    backend = resolve("llamacpp/smollm2-135m", n_ctx=1024)
    backend.load()
    try:
        pid = backend.process_pid()
        assert pid and pid != os.getpid() and [p.pid for p in _engine_processes()] == [pid]
        text, _, report = collect(backend, QUESTION, max_tokens=8)
        assert text and report.output_tokens == 8 and report.engine_decode_ms > 0
        from engine.telemetry import model_pid

        assert model_pid(backend) == pid  # telemetry samples the engine, not the harness
        assert backend.memory_mb()["rss_mb"] > 50  # the weights were mapped there
    finally:
        backend.close()
    assert backend.process_pid() is None and not _engine_processes()


def test_a_signal_ends_the_engine_and_every_later_request_names_it():
    backend = resolve("llamacpp/smollm2-135m", n_ctx=1024)
    backend.load()
    os.kill(backend.process_pid(), signal.SIGSEGV)
    with pytest.raises(EngineDied, match=r"died of SIGSEGV \(segmentation fault: often a malformed"):
        collect(backend, QUESTION, max_tokens=8)
    # not restarted behind the user's back: a reload fails at once with the same reason
    backend.close()
    with pytest.raises(EngineDied, match="SIGSEGV"):
        backend.load()
    assert not _engine_processes()


def test_a_cancelled_stream_stops_the_generation_and_the_engine_answers_the_next():
    backend = resolve("llamacpp/smollm2-135m", n_ctx=1024)
    backend.load()
    try:
        stream = backend.stream(QUESTION, GenParams(max_tokens=200))
        got = [x for _, x in zip(range(3), (x for x in stream if x))]
        stream.close()  # what the runner does on cancel or a timeout
        assert len(got) == 3
        text, _, report = collect(backend, QUESTION, max_tokens=5)
        assert report.output_tokens == 5 and report.finish_reason == "length"
    finally:
        backend.close()


@pytest.mark.slow
def test_an_engine_that_dies_of_sigill_mid_run_fails_its_cells_and_the_run_goes_on(store, shipped_scenarios):
    """The real failure: the engine process gets SIGILL during its first answer; the run ends done,
    that model's every cell failed with the signal named, the other model's cells all measured."""
    killed = []

    def on_chunk(spec, case_id, text):
        if spec.startswith("llamacpp/") and not killed:
            (proc,) = _engine_processes()
            proc.send_signal(signal.SIGILL)
            killed.append(proc.pid)

    scenario = load_scenario("standard")
    runner = Runner(store)
    runner.on_chunk = on_chunk
    run_id = runner.run(RunConfig(scenario, ["llamacpp/smollm2-135m", "fake/echo"], max_tokens=16,
                                  case_ids=["knowledge-en", "coding-en", "multi-turn-en"]))
    assert killed
    assert store.get_run(run_id)["status"] == "done"
    g = store.generations(run_id)
    smol, echo = g[g.model_spec == "llamacpp/smollm2-135m"], g[g.model_spec == "fake/echo"]
    assert len(echo) == len(smol) == 4 and echo.ok.all()  # multi-turn-en has two turns
    assert not smol.ok.any()
    assert smol.error.str.contains("died of SIGILL").sum() >= 3  # the turn after a failed one: "not run"
    assert smol.error.str.contains("illegal instruction").any()
    from engine.worker import model_failures

    (failure,) = model_failures(store, run_id)
    assert (failure["model_spec"], failure["signal"], failure["failed"]) == ("llamacpp/smollm2-135m", "SIGILL", 4)
    assert not _engine_processes()
    # the dashboard says the same in words, in both languages
    from streamlit.testing.v1 import AppTest

    for lang, words in (("en", "its llama.cpp engine process died of SIGILL (illegal instruction"),
                        ("zh", "llama.cpp 引擎进程因 SIGILL 终止（非法指令")):
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
        at.session_state.active_run = run_id
        at.session_state.lang = lang
        at.run()
        at.switch_page("pages/run.py").run()
        errors = " ".join(e.value for e in at.error)
        assert words in errors and "4" in errors, errors


def test_a_gguf_path_that_is_not_a_model_fails_its_load_not_the_process(tmp_path):
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 200)
    backend = resolve(f"llamacpp/{bad}", n_ctx=512)
    with pytest.raises(BackendError, match="truncated.gguf"):
        backend.load()
    backend.close()
    assert not _engine_processes()


# -- the install check -------------------------------------------------------------------
def test_the_install_check_names_the_signal_a_build_dies_of():
    die = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"
    problem = install_engine.check_engine(script=die)
    assert problem.startswith("the engine process died of SIGILL (illegal instruction")
    assert "exit 3" in install_engine.check_engine(script="import sys; print('boom', file=sys.stderr); sys.exit(3)")


def test_the_install_check_passes_on_the_installed_build():
    assert install_engine.check_engine() is None


def test_builds_tried_leave_out_the_guarded_extensions_and_honour_cmake_args(monkeypatch):
    monkeypatch.setattr(install_engine, "native_extensions_enabled", lambda names: ["amx-tile", "amx-int8"])
    monkeypatch.setattr(install_engine.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(install_engine, "cpu_flags", lambda: ["avx2", "fma", "f16c", "amx_tile"])
    (name, args), (fallback, fb_args) = install_engine.candidates([])
    assert "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8" in args and "-DGGML_NATIVE=ON" in args
    assert "-DGGML_NATIVE=OFF" in fb_args and "-DGGML_AVX2=ON" in fb_args and "amx" not in " ".join(fb_args)
    cuda = install_engine.candidates(["-DGGML_CUDA=on"])
    assert all("-DGGML_CUDA=on" in a for _, a in cuda) and "-mno-amx-tile" in " ".join(cuda[0][1])
    # a key changes with anything that shapes the build, so a wheel built otherwise is never reused
    v = "0.3.36"
    assert install_engine.build_key(v, args) != install_engine.build_key(v, fb_args)
    monkeypatch.setattr(install_engine, "cpu_flags", lambda: ["avx2"])
    assert install_engine.build_key(v, args) != install_engine.build_key(v, args + ["x"])


def test_a_wheel_in_the_cache_is_reused_without_building(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(install_engine, "_pip", lambda *a, **k: built.append(a))
    wheel = tmp_path / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    wheel.write_bytes(b"")
    assert install_engine.build_wheel("0.3.36", ["-DGGML_NATIVE=ON"], tmp_path) == wheel and not built
