"""Model-written code is untrusted: each attack is stopped, scores 0, and leaves the
machine as it was."""
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from engine import sandbox
from engine.checks import run_check
from engine.sandbox import Limits, SandboxUnavailable, run_python
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and sandbox.shutil.which("bwrap") is None,
    reason="bubblewrap is not installed: `sudo apt-get install bubblewrap` enables these (`make test` runs it when root)")

# A hidden test that any correct palindrome function passes.
TESTS = {"tests": 'f = solution_function("pal")\ndef test_it():\n    assert f("abba") and not f("ab")\n',
         "timeout_s": 3}


def score(code: str) -> tuple[float, str]:
    res = run_check("python_tests", f"```python\n{code}\n```", TESTS)
    return res.score, res.detail


def no_sandbox_processes_left() -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == 65534]
        if not left:
            return True
        time.sleep(0.1)
    return False


def test_a_correct_answer_passes():
    assert score("def is_pal(s):\n    return s == s[::-1]") == (1.0, "1/1 hidden tests passed")


@pytest.mark.slow
def test_infinite_loop_is_stopped():
    s, detail = score("def is_pal(s):\n    return s == s[::-1]\nwhile True:\n    pass")
    assert s == 0 and "time limit" in detail
    assert no_sandbox_processes_left()


@pytest.mark.slow
def test_fork_bomb_is_contained_and_cleaned_up():
    s, detail = score("import os\ndef is_pal(s):\n    return True\nwhile True:\n    os.fork()")
    assert s == 0
    assert no_sandbox_processes_left()


def test_memory_bomb_fails():
    s, detail = score("def is_pal(s):\n    return s == s[::-1]\nblob = bytearray(8 * 1024**3)")
    assert s == 0 and "MemoryError" in detail


def test_writing_outside_the_working_folder_fails_and_leaves_nothing(tmp_path):
    marker = f"modelpick-escape-{uuid.uuid4().hex}"
    targets = [ROOT / marker, Path("/tmp") / marker, Path.home() / marker]
    code = "def is_pal(s):\n    return s == s[::-1]\n" + "".join(
        f"open({str(t)!r}, 'w').write('x')\n" for t in targets)
    s, detail = score(code)
    assert s == 0 and ("Read-only file system" in detail or "Permission denied" in detail
                       or "No such file" in detail)
    assert not any(t.exists() for t in targets)
    # its own scratch folder is writable
    ok = run_python("open('scratch.txt', 'w').write('fine'); print(open('scratch.txt').read())")
    assert ok.stdout.strip() == "fine"


def test_parent_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("MODELPICK_TEST_SECRET", "s3cret-value")
    res = run_python("import os; print(sorted(os.environ)); print(os.environ.get('MODELPICK_TEST_SECRET'))")
    assert "s3cret-value" not in res.stdout and "MODELPICK_TEST_SECRET" not in res.stdout
    s, _ = score("import os\ndef is_pal(s):\n    return os.environ['MODELPICK_TEST_SECRET'] == 's3cret-value'")
    assert s == 0


def test_network_connections_fail():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        s, detail = score(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                          "def is_pal(s):\n    return s == s[::-1]")
    finally:
        server.close()
    assert s == 0 and ("refused" in detail or "unreachable" in detail.lower() or "Errno" in detail)
    assert not accepted


def test_printing_gigabytes_is_cut_off():
    t0 = time.monotonic()
    s, detail = score("def is_pal(s):\n    return s == s[::-1]\nwhile True:\n    print('x' * 100000)")
    assert s == 0 and "output limit" in detail
    assert time.monotonic() - t0 < 3  # stopped at the cap, not at the time limit
    res = run_python("print('y' * 10**7)", limits=Limits(output_bytes=1000))
    assert res.output_truncated and len(res.stdout) == 1000


def test_no_isolation_means_refusal_unless_turned_off_knowingly(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.delenv(sandbox.UNSANDBOXED_ENV, raising=False)
    with pytest.raises(SandboxUnavailable, match="install bubblewrap"):
        run_python("print(1)")
    monkeypatch.setenv(sandbox.UNSANDBOXED_ENV, "1")
    out = run_python("import os; print(os.getuid(), len(os.environ) < 8)")
    assert out.isolation == "unsandboxed" and out.stdout.split()[1] == "True"


def test_a_sandbox_that_could_not_fork_is_started_again(monkeypatch):
    # The unprivileged user's process limit still counts a killed sandbox's processes for a
    # moment; bwrap then cannot fork. That is not the answer's fault: it is tried again.
    from engine import sandbox

    calls, refusals = [], ["bwrap: Can't fork for pid 1: Resource temporarily unavailable"]
    real = sandbox._execute

    def flaky(*args):
        calls.append(1)
        if refusals:  # the first start only
            return sandbox.SandboxResult(1, "", refusals.pop())
        return real(*args)

    monkeypatch.setattr(sandbox, "_execute", flaky)
    monkeypatch.setattr(sandbox.time, "sleep", lambda s: None)
    res = run_python("print('ran')")
    assert res.stdout.strip() == "ran" and len(calls) == 2
    # an answer's own failure is not retried
    calls.clear()
    assert run_python("raise SystemExit(3)").returncode == 3 and len(calls) == 1


def test_model_code_finds_neither_the_checkout_nor_the_results_file_nor_any_home(tmp_path, monkeypatch):
    results = tmp_path / "results.duckdb"
    results.write_text("not for model code")
    code = ("import os, json\n"
            f"paths = [{str(ROOT / 'README.md')!r}, {str(ROOT / '.streamlit' / 'config.toml')!r}, "
            f"{str(results)!r}, {str(Path.home())!r}, '/work', '/etc/passwd']\n"
            "print(json.dumps({'root': sorted(os.listdir('/')), "
            "'seen': [p for p in paths if os.path.exists(p)]}))\n"
            f"open({str(ROOT / 'README.md')!r}).read()\n")
    res = run_python(code)
    import json

    report = json.loads(res.stdout.strip().splitlines()[0])
    assert report["seen"] == [], report
    top = ROOT.parts[1]  # the checkout's top folder (e.g. 'work' or 'home') is not in the sandbox's /
    assert top not in report["root"] and "home" not in report["root"] and "root" not in report["root"]
    assert "FileNotFoundError" in res.stderr
    # the interpreter and its standard library still work there
    assert run_python("import json, sqlite3, decimal; print(json.dumps([1]))").stdout.strip() == "[1]"
