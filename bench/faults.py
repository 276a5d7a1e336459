"""Every fault and bad input the reliability tests cover, tried as a user meets them:
the command line in a subprocess against real loopback servers (protocol-faithful fakes
for the faults), real DuckDB files and real signals.

    .venv/bin/python bench/faults.py

A case is handled cleanly when the exit code is the expected one, nothing printed a
Python traceback, the message names what was wrong, and no file was created or changed
that should not be. Ends with: cases=N clean=N tracebacks=N rows_expected=N rows_found=N
hangs=N (a hang: over 15 s)."""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from tests.conftest import hold_file  # noqa: E402  (another program holding the file, retrying until it has it)
from tests.fakeservers import FakeServer, OllamaHandler, OpenAIHandler, SilentServer  # noqa: E402

HANG_S = 15.0
CASE = ["--case", "knowledge-en", "--case", "coding-en"]


class Env:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), MODELPICK_DB=str(tmp / "default.duckdb"))
        self.n = 0

    def db(self) -> Path:
        self.n += 1
        return self.tmp / f"f{self.n}.duckdb"

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path

    def cli(self, *args, env=None, timeout=120):
        t0 = time.monotonic()
        try:
            res = subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, env=env or self.env,
                                 capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "", "timed out", time.monotonic() - t0
        return res.returncode, res.stdout, res.stderr, time.monotonic() - t0


def count(db: Path, sql="SELECT count(*) FROM generations") -> int:
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            row = con.execute(sql).fetchone()
            return int(row[0]) if row else -1
    except duckdb.Error:
        return -1


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bad_input(e: Env, name, args, message, creates_nothing=True):
    db = e.db()
    rc, _, err, secs = e.cli(*args, "--db", db)
    ok = rc == 2 and re.search(message, err) is not None and (not creates_nothing or not db.exists())
    return {"case": name, "class": "bad input", "clean": ok, "traceback": "Traceback" in err,
            "rows_expected": 0, "rows_found": 0, "seconds": secs, "detail": err.strip().splitlines()[-1:]}


def runtime(e: Env, name, args, rows, message="", env=None, db=None, check=None):
    db = db or e.db()
    rc, out, err, secs = e.cli(*args, "--db", db, env=env)
    found = count(db) if db.exists() else 0
    ok = rc == 0 and message in err + out and found == rows and (check(db, err) if check else True)
    return {"case": name, "class": "runtime fault", "clean": ok, "traceback": "Traceback" in err,
            "rows_expected": rows, "rows_found": found, "seconds": secs, "detail": err.strip().splitlines()[-1:]}


def file_fault(e: Env, name, make, args, message, rc_expected=2):
    db = e.db()
    make(db)
    before = digest(db)
    rc, _, err, secs = e.cli(*args, "--db", db)
    named = rc_expected == 0 or str(db) in err  # a refusal names the file
    ok = rc == rc_expected and message in err and named and digest(db) == before
    return {"case": name, "class": "database file", "clean": ok, "traceback": "Traceback" in err,
            "rows_expected": 0, "rows_found": 0, "seconds": secs, "detail": err.strip().splitlines()[-1:]}


def _stderr_of(proc: subprocess.Popen, timeout: float) -> str:
    """What a process wrote to stderr by the time it ended (killed after `timeout` s)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def signal_case(e: Env, name, model, sig, wait_for_rows=1, then_resume=False, server=None):
    db = e.db()
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--scenario", "standard", "--model", model,
                             *CASE, "--repeats", "2", "--db", str(db), "--quiet"], cwd=ROOT, env=e.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    if server is not None:
        while not server.conns and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    else:
        while count(db) < wait_for_rows and time.monotonic() < deadline:
            time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(sig)
    err = _stderr_of(proc, 60)
    stop_s = time.monotonic() - t0
    status = None
    secs = stop_s
    if then_resume:
        run_id = _first_run(db)
        rc, _, err2, secs2 = e.cli("resume", run_id, "--db", db)
        err += err2
        secs = max(stop_s, secs2)
    with duckdb.connect(str(db), read_only=True) as con:
        status = (con.execute("SELECT status FROM runs").fetchone() or [None])[0]
        dupes = (con.execute("SELECT count(*) FROM (SELECT model_spec, case_id, repeat, turn FROM generations "
                             "GROUP BY ALL HAVING count(*) > 1)").fetchone() or [0])[0]
    found = count(db)
    expected = 4 if then_resume else found
    ok = (status == ("done" if then_resume else "interrupted") and dupes == 0 and stop_s < 3
          and (found == expected))
    return {"case": name, "class": "signal", "clean": ok, "traceback": "Traceback" in err,
            "rows_expected": expected, "rows_found": found, "seconds": secs,
            "detail": [f"stopped in {stop_s:.1f} s, status {status}"]}


def busy_database(e: Env):
    db = e.db()
    # 20 generations of about a second each: the run is still going when the reader has started, however
    # busy the machine (with 6, a loaded machine could finish the run before the reader held the file)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--scenario", "standard", "--model", "fake/slow",
                             *CASE, "--repeats", "10", "--db", str(db)], cwd=ROOT, env=e.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while count(db) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    hold_file(db, 40).wait()  # held for 40 s, longer than any wait for the lock
    released = time.monotonic()
    err = _stderr_of(proc, 120)
    found = count(db)
    # what counts as a hang here is the time the run needed once the file was free again
    return {"case": "a reader holds the database for 40 s mid-run", "class": "database file",
            "clean": proc.returncode == 0 and found == 20 and "database busy" in err,
            "traceback": "Traceback" in err, "rows_expected": 20, "rows_found": found,
            "seconds": time.monotonic() - released, "detail": [f"rc {proc.returncode}, written after release"]}


def full_disk(e: Env):
    mount = e.tmp / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        return {"case": "disk full mid-run (not tried: mounting a tmpfs needs root)", "class": "database file",
                "clean": True, "traceback": False, "rows_expected": 0, "rows_found": 0, "seconds": 0, "detail": []}
    try:
        rc, _, err, secs = e.cli("run", "--scenario", "standard", "--model", "fake/echo", "--db", mount / "r.duckdb")
    finally:
        subprocess.run(["umount", str(mount)])
    return {"case": "disk full mid-run", "class": "database file", "clean": rc == 2 and "the disk is full" in err,
            "traceback": "Traceback" in err, "rows_expected": 0, "rows_found": 0, "seconds": secs,
            "detail": err.strip().splitlines()[-1:]}


def _read_only_copy(source: Path, path: Path) -> None:
    path.write_bytes(source.read_bytes())
    os.chmod(path, 0o444)


def _first_run(db) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT run_id FROM runs").fetchone()
    if row is None:
        raise SystemExit(f"{db}: no run")
    return row[0]


def cases(e: Env) -> list[dict]:
    out: list[dict] = []
    add = out.append
    yaml_head = b"id: mine\nname: m\ndescription: d\nweights: {quality: 1}\n"
    scen = {
        "syntax": (yaml_head + b"cases: [\n", "YAML syntax error"),
        "binary": (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text"),
        "latin-1": ("id: caf\u00e9\n".encode("latin-1"), "not UTF-8 text"),
        "missing field": (b"id: mine\nname: m\ncases: [{id: a, category: k, prompt: hi}]\n",
                          "field description: missing required field"),
        "unknown check": (yaml_head + b"cases: [{id: a, category: k, prompt: hi, checks: [{type: vibes}]}]\n",
                          "unknown check type 'vibes'"),
        "missing context file": (yaml_head + b"cases: [{id: a, category: k, prompt: hi, context_file: nope.md}]\n",
                                 "field context_file: .*(cannot read|does not exist)"),
    }
    run = ["run", "--scenario", "standard"]
    for name, args, message in [
        ("unknown scenario", ["run", "--scenario", "nope", "--model", "fake/echo"], "unknown scenario 'nope'"),
        ("unknown backend", [*run, "--model", "vllm2/x"], "unknown backend 'vllm2'"),
        ("unknown bundled model", [*run, "--model", "llamacpp/llama9-1t"], "llama9-1t"),
        ("missing GGUF path", [*run, "--model", "llamacpp//nowhere/m.gguf"], "/nowhere/m.gguf"),
        ("openai spec without URL", [*run, "--model", "openai/gpt-oss-20b"], "give the server URL"),
        ("host that is not a URL", [*run, "--model", "openai/x@not-a-url"], "openai/x@http://localhost:8000/v1"),
        ("host:port without scheme", [*run, "--model", "ollama/llama3@gpu:11434"], "ollama/llama3@http://gpu:11434"),
        ("--max-tokens 0", [*run, "--model", "fake/echo", "--max-tokens", "0"], "--max-tokens:? must be at least 1"),
        ("--max-tokens -1", [*run, "--model", "fake/echo", "--max-tokens", "-1"], "--max-tokens:? must be at least 1"),
        ("--temperature -1", [*run, "--model", "fake/echo", "--temperature", "-1"],
         r"--temperature(:? must be at least 0| must be >= 0)"),
        ("--threads 0", [*run, "--model", "fake/echo", "--threads", "0"], "--threads:? must be at least 1"),
        ("--n-ctx below the shortest prompt", [*run, "--model", "fake/echo", "--n-ctx", "4"], "--n-ctx 4 is smaller"),
        ("--repeats 0", [*run, "--model", "fake/echo", "--repeats", "0"], "--repeats:? must be at least 1"),
        ("--timeout 0", [*run, "--model", "fake/echo", "--timeout", "0"],
         r"--timeout(:? must be at least 0.001| must be > 0)"),
        ("unknown --case", [*run, "--model", "fake/echo", "--case", "nope"], r"unknown case ids \['nope'\]"),
        ("unknown --preset", [*run, "--preset", "nope"], "unknown preset 'nope'"),
        ("summary of a missing file", ["summary"], "no results database"),
        ("recommend, unknown scenario", ["recommend", "--scenario", "nope"], "no results database"),
        ("resume, missing file", ["resume", "r1"], "no results database"),
    ]:
        add(bad_input(e, name, args, message))
    for name, (data, message) in scen.items():
        path = e.file(f"{name.replace(' ', '-')}.yaml", data)
        add(bad_input(e, f"scenario file: {name}", ["run", "--scenario", path, "--model", "fake/echo"], message))
    big = e.tmp / "huge.yaml"
    big.write_text("id: huge\nname: h\ndescription: d\nweights: {quality: 1}\ncases:\n"
                   + "".join(f"  - {{id: c{i}, category: k, prompt: 'What is {i}?'}}\n" for i in range(160_000)))
    add(bad_input(e, "scenario file over 5 MiB", ["run", "--scenario", big, "--model", "fake/echo"], "over the limit"))

    # on an existing results file
    base = e.db()
    e.cli("run", "--scenario", "standard", "--model", "fake/echo", "--model", "fake/mirror", *CASE, "--db", base)
    run_id = _first_run(base)
    on_file: list[tuple[str, list, str]] = [
        ("summary of an unknown run", ["summary", "--run", "nope"], "no run 'nope'"),
        ("recommend, unknown criterion", ["recommend", "--scenario", "standard", "--weights", "speed=1"],
         "unknown criterion 'speed'"),
        ("recommend, weights summing to zero", ["recommend", "--scenario", "standard", "--weights", "quality=0"],
         "sum to zero"),
        ("recommend, negative exchange rate", ["recommend", "--scenario", "standard", "--cny-per-usd", "-7"],
         r"(cny_per_usd: must be > 0|--cny-per-usd: must be at least)"),
        ("recommend, unknown GPU", ["recommend", "--scenario", "standard", "--gpu", "Z9"], "unknown GPU 'Z9'"),
        ("recommend, scenario without runs", ["recommend", "--scenario", "kb-qa"], "has no runs"),
        ("report to a folder that does not exist", ["report", "--scenario", "standard", "--format", "md", "--out",
                                                    e.tmp / "no" / "r.md"], "cannot write"),
        ("resume of an unknown run", ["resume", "nope"], "no run 'nope'"),
        ("run --run-id of an existing run", ["run", "--scenario", "standard", "--model", "fake/echo",
                                             "--run-id", run_id], "python -m engine resume"),
    ]
    for name, argv, message in on_file:
        before = digest(base)
        rc, _, err, secs = e.cli(*argv, "--db", base)
        add({"case": name, "class": "bad input",
             "clean": rc == 2 and re.search(message, err) is not None and digest(base) == before,
             "traceback": "Traceback" in err, "rows_expected": 0, "rows_found": 0, "seconds": secs,
             "detail": err.strip().splitlines()[-1:]})

    # files that are not ours, or not whole
    add(file_fault(e, "corrupt DuckDB file", lambda p: p.write_bytes(b"\0garbage" * 999),
                   ["run", "--scenario", "standard", "--model", "fake/echo"], "not a readable DuckDB"))
    add(file_fault(e, "another program's DuckDB file (run)",
                   lambda p: duckdb.connect(str(p)).execute("CREATE TABLE generations (x INT)").close(),
                   ["run", "--scenario", "standard", "--model", "fake/echo"], "not a ModelPick results file"))
    add(file_fault(e, "another program's DuckDB file (summary)",
                   lambda p: duckdb.connect(str(p)).execute("CREATE TABLE t (x INT)").close(),
                   ["summary"], "not a ModelPick results file"))
    add(file_fault(e, "truncated results file", lambda p: p.write_bytes(base.read_bytes()[:100_000]),
                   ["summary"], "cannot"))
    add(file_fault(e, "read-only results file, summary", lambda p: _read_only_copy(base, p),
                   ["summary"], "", rc_expected=0))
    add(busy_database(e))
    add(full_disk(e))

    # faults at run time: every cell becomes a row, the run ends done
    bad_gguf = e.file("broken.gguf", b"GGUF" + b"\0" * 64)
    add(runtime(e, "model file corrupt (load fails)", ["run", "--scenario", "standard", "--model",
                                                         f"llamacpp/{bad_gguf}", *CASE], 2, "could not be loaded"))
    add(runtime(e, "server refuses connections", ["run", "--scenario", "standard", "--model",
                                                  "openai/x@http://127.0.0.1:9/v1", *CASE], 2, "could not be loaded"))
    with SilentServer() as silent:
        add(runtime(e, "server accepts and never answers (--timeout 1)",
                    ["run", "--scenario", "standard", "--model", f"openai/x@{silent.url}/v1", "--timeout", "1", *CASE],
                    2, "could not be loaded"))
    with FakeServer(OpenAIHandler) as oa, FakeServer(OllamaHandler) as ol:
        for model, stored in [("fault-500", "CUDA out of memory"), ("fault-error-mid", ""),
                              ("fault-malformed", ""), ("fault-drop", ""), ("fault-no-final", "")]:
            add(runtime(e, f"OpenAI-compatible server: {model}",
                        ["run", "--scenario", "standard", "--model", f"openai/{model}@{oa.url}/v1", *CASE,
                         "--no-warmup", "--timeout", "5"], 2,
                        check=lambda db, err, stored=stored: all(stored in (r or "") for (r,) in duckdb.connect(
                            str(db), read_only=True).execute("SELECT error FROM generations").fetchall())))
        add(runtime(e, "OpenAI-compatible server: stalls mid-stream (--timeout 2)",
                    ["run", "--scenario", "standard", "--model", f"openai/fault-stall@{oa.url}/v1", *CASE,
                     "--no-warmup", "--timeout", "2"], 2))
        add(runtime(e, "OpenAI-compatible server: model not served",
                    ["run", "--scenario", "standard", "--model", f"openai/missing@{oa.url}/v1", *CASE], 2,
                    "could not be loaded"))
        env = dict(e.env, OPENAI_API_KEY="sk-bench-0123456789abcdef")
        add(runtime(e, "401 that echoes the API key", ["run", "--scenario", "standard", "--model",
                                                       f"openai/fault-401-echo@{oa.url}/v1", *CASE], 2, env=env,
                    check=lambda db, err: "0123456789abcdef" not in err and "0123456789abcdef" not in str(
                        duckdb.connect(str(db), read_only=True).execute("SELECT * FROM generations").fetchall())))
        for model in ("fault:500", "fault:error-mid", "fault:malformed", "fault:no-final"):
            add(runtime(e, f"Ollama server: {model}",
                        ["run", "--scenario", "standard", "--model", f"ollama/{model}@{ol.url}", *CASE,
                         "--no-warmup", "--timeout", "5"], 2))
        add(runtime(e, "Ollama server: model not pulled",
                    ["run", "--scenario", "standard", "--model", f"ollama/missing:1b@{ol.url}", *CASE], 2,
                    "could not be loaded"))
    add(runtime(e, "a model failing every second request", ["run", "--scenario", "standard", "--model",
                                                            "fake/flaky", *CASE, "--repeats", "2"], 4))

    # signals
    with SilentServer() as silent:
        add(signal_case(e, "SIGTERM while a server never answers", f"openai/x@{silent.url}/v1", signal.SIGTERM,
                        server=silent))
    add(signal_case(e, "Ctrl-C (SIGINT) mid-run, then resume", "fake/slow", signal.SIGINT, then_resume=True))
    add(signal_case(e, "terminal closed (SIGHUP) mid-run, then resume", "fake/slow", signal.SIGHUP,
                    then_resume=True))
    add(signal_case(e, "kill -9 mid-run, then resume", "fake/slow", signal.SIGKILL, then_resume=True))
    return out


# --- the second round: secrets, escapes, hangs, crashes, messages (docs/security.md) ------------

KEY = "zq-bench-secret-7f3a9c1e5b"  # held in LLM_AUTH: a name that does not end in KEY or TOKEN


def _rows_text(db: Path) -> str:
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return str(con.execute("SELECT * FROM generations").fetchall()) + str(
                con.execute("SELECT * FROM check_results").fetchall())
    except duckdb.Error:
        return ""


def _case(name, klass, clean, err="", secs=0.0, rows=(0, 0), detail=None):
    return {"case": name, "class": klass, "clean": bool(clean), "traceback": "Traceback" in err,
            "rows_expected": rows[0], "rows_found": rows[1], "seconds": secs,
            "detail": detail if detail is not None else err.strip().splitlines()[-1:]}


def _py(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """A snippet run against this checkout's engine, in a process of its own."""
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + code],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def secrets_cases(e: Env, oa_url: str) -> list[dict]:
    out = []
    env = dict(e.env, LLM_AUTH=KEY)
    for model, what in [("fault-500-echo", "a 500 body"), ("fault-sse-echo", "an SSE error event"),
                        ("fault-401-echo", "a 401"), ("says-key", "the streamed answer")]:
        db = e.db()
        rc, so, err, secs = e.cli("run", "--scenario", "standard", "--case", "knowledge-en", "--no-warmup", "--model",
                                  f"openai/{model}@{oa_url}/v1?api_key_env=LLM_AUTH", "--db", db, env=env)
        exports = ""
        if model == "says-key":
            rep = e.tmp / "says-key.md"
            e.cli("report", "--scenario", "standard", "--format", "md", "--out", rep, "--db", db, env=env)
            exports = rep.read_text() if rep.exists() else ""
        runs = Path(f"{db}.runs")
        journal = "".join(p.read_text() for p in runs.glob("*") if p.is_file()) if runs.is_dir() else ""
        leaked = KEY in err + so + _rows_text(db) + exports + journal
        out.append(_case(f"key in LLM_AUTH echoed in {what}", "secret", rc == 0 and not leaked, err, secs,
                         (1, count(db)), ["leaked" if leaked else "masked everywhere"]))
    docs = e.tmp / "docs-link"  # a symlink in a documents folder to the process's environment
    docs.mkdir()
    (docs / "handbook.md").write_text("Leave is 25 days a year.\n")
    (docs / "env.txt").symlink_to("/proc/self/environ")
    sheet = e.file("qs.csv", b"id,prompt\nq1,How many days of leave?\n")
    users = e.tmp / "users-docs"
    rc, so, err, secs = e.cli("import", sheet, "--scenario", "linked", "--docs", docs,
                              env=dict(env, MODELPICK_USER_SCENARIOS_DIR=str(users)))
    saved = "".join(p.read_text(errors="replace") for p in users.rglob("*") if p.is_file()) if users.exists() else ""
    out.append(_case("import --docs with a symlink to /proc/self/environ", "secret",
                     rc == 2 and "symbolic link" in err and KEY not in saved and "LLM_AUTH" not in saved, err, secs))
    return out


RACE = """
import os, threading
from pathlib import Path
from engine.scenarios import parse_scenario, ScenarioError
base, outside = Path(sys.argv[1]), sys.argv[2]
text = ("id: r\\nname: r\\ndescription: d\\nweights: {quality: 1}\\n"
        "cases: [{id: a, category: k, prompt: '{context}', context_file: docs/a.md}]\\n")
stop = False
def swap():
    while not stop:
        os.rename(base / "docs", base / "real"); os.symlink(outside, base / "docs")
        os.unlink(base / "docs"); os.rename(base / "real", base / "docs")
t = threading.Thread(target=swap); t.start()
leaks = errors = inside = 0
for _ in range(3000):
    try:
        c = parse_scenario(text, "r.yaml", base_dir=base).cases[0].context
        leaks += "OUTSIDE" in c; inside += "inside" in c
    except (ScenarioError, OSError):
        errors += 1
stop = True; t.join(); print(leaks, errors, inside)
"""

CSV = """
import pandas as pd
from pages._shared import csv
df = pd.DataFrame({"case_id": ['=HYPERLINK("http://x")', "@SUM(1+1)", "+1+1", "ok"], "n": [-1, 2, 3, 4]})
print(csv(df).decode())
"""

SANDBOX = """
from engine.sandbox import run_python, Limits
prog = "\\n".join(["n = 0", "for d in ('/tmp', '.'):", "    try:", "        for i in range(100):",
                   "            with open(f'{d}/f{i}', 'wb') as f: f.write(b'x' * 15 * 2**20)", "            n += 15",
                   "    except OSError: pass", "print(n)"])
r = run_python(prog, {}, Limits(wall_s=60, cpu_s=60)); print(r.stdout.strip() or r.stderr[-200:])
"""

SQL = """
import resource
from pathlib import Path
from engine.checks import code
db = code.sample_database(Path(sys.argv[1]))
try:
    code.run_sql(db, "SELECT length(repeat('x', 2500000000))", 60)
except Exception as exc:
    print("refused:", str(exc)[:80])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def escape_cases(e: Env, oa_url: str) -> list[dict]:
    out = []
    db = e.db()
    rc, _, err, secs = e.cli("run", "--scenario", "standard", "--case", "knowledge-en", "--no-warmup", "--model",
                             f"openai/redirect@{oa_url}/v1", "--db", db)
    text = _rows_text(db)
    out.append(_case("302 from the model's server to the metadata address", "escape",
                     rc == 0 and "redirected to http://169.254.169.254" in text, err, secs, (1, count(db)),
                     [text[:110]]))
    for url in ("http://[::169.254.169.254]/v1", "http://[64:ff9b::a9fe:a9fe]/v1", "http://[::ffff:a9fe:a9fe]/v1"):
        out.append(bad_input(e, f"metadata address spelled {url.split('/')[2]}",
                             ["run", "--scenario", "standard", "--model", f"openai/x@{url}"], "refused"))
        out[-1]["class"] = "escape"
    race = e.tmp / "race"
    (race / "docs").mkdir(parents=True)
    (race / "docs" / "a.md").write_text("inside\n")
    outside = e.tmp / "outside"
    outside.mkdir()
    (outside / "a.md").write_text("OUTSIDE-SECRET\n")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + RACE,
                          str(race), str(outside)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    leaks, errors, inside = (res.stdout.split() + ["?", "?", "?"])[:3]
    out.append(_case("documents folder swapped for a symlink during 3,000 loads", "escape",
                     res.returncode == 0 and leaks == "0", res.stderr, time.monotonic() - t0,
                     detail=[f"{leaks} outside reads, {errors} refused, {inside} read inside"]))
    users = e.tmp / "nest" / "a" / "users"
    docs = e.tmp / "docs-plain"
    docs.mkdir()
    (docs / "handbook.md").write_text("Leave is 25 days a year.\n")
    sheet = e.file("qs2.csv", b"id,prompt\nq1,How many days of leave?\n")
    rc, _, err, secs = e.cli("import", sheet, "--scenario", "../../escaped", "--docs", docs,
                             env=dict(e.env, MODELPICK_USER_SCENARIOS_DIR=str(users)))
    written = [p for p in e.tmp.rglob("*") if "escaped" in p.name or p.name == "handbook.txt"]
    out.append(_case("import --scenario ../../x --docs", "escape", rc == 2 and not written, err, secs,
                     detail=[f"{len(written)} files written"] + err.strip().splitlines()[-1:]))
    folder = e.tmp / "md-scen"
    folder.mkdir()
    (folder / "md.yaml").write_bytes(b"id: md\nname: m\ndescription: d\nweights: {quality: 1}\n"
                                     b"cases: [{id: '![t](http://127.0.0.1:9/track)', category: k, prompt: 'Hi.', "
                                     b"checks: [{type: contains, value: fine}]}]\n")
    db = e.db()
    env = dict(e.env, MODELPICK_USER_SCENARIOS_DIR=str(folder))
    # two models that differ on the case, so the summary shows it among "where the answers differ most"
    e.cli("run", "--scenario", "md", "--model", "fake/echo", "--model", "fake/judge-first", "--db", db, env=env)
    rep = e.tmp / "md.md"
    rc, _, err, secs = e.cli("report", "--scenario", "md", "--format", "md", "--out", rep, "--db", db, env=env)
    text = rep.read_text() if rep.exists() else ""
    bare = re.sub(r"^(`{3,}|~{3,}).*?^\1$", "", text, flags=re.S | re.M)
    out.append(_case("Markdown image in a case id, in the Markdown summary", "escape",
                     rc == 0 and "track" in bare and re.search(r"(?<!\\)!\[t", bare) is None, err, secs))
    res = _py(CSV, 120)
    cells = [line.split(",")[0] for line in res.stdout.splitlines()[1:] if line]
    risky = [c for c in cells if c.strip('"').startswith(("=", "@", "+"))]
    out.append(_case("formula cells in a CSV download", "escape", res.returncode == 0 and cells and not risky,
                     res.stderr, detail=[f"cells {cells}"]))
    return out


_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
       'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+'
       'xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/{part}" ContentType="{ct}"/>'
       '</Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
         'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships/{kind}" Target="{part}"/></Relationships>')


def _office(path: Path, member: str, head: bytes, body: bytes, times: int, tail: bytes, extra: dict) -> None:
    """A small Office file whose one XML part unpacks to `times` copies of `body`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in extra.items():
            z.writestr(name, data)
        with z.open(member, "w", force_zip64=True) as f:
            f.write(head)
            block = body * 10_000
            for _ in range(times // 10_000):
                f.write(block)
            f.write(tail)


def _bomb_cases(e: Env) -> list[dict]:
    out = []
    xlsx = e.tmp / "bomb.xlsx"
    _office(xlsx, "xl/worksheets/sheet1.xml",
            b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>', b"<row/>",
            30_000_000, b"</sheetData></worksheet>", {
                "[Content_Types].xml": _CT.format(part="xl/workbook.xml", ct="application/vnd.openxmlformats-"
                                                  "officedocument.spreadsheetml.sheet.main+xml"),
                "_rels/.rels": _RELS.format(kind="officeDocument", part="xl/workbook.xml"),
                "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
                                   'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
                                   'officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" '
                                   'r:id="rId1"/></sheets></workbook>',
                "xl/_rels/workbook.xml.rels": _RELS.format(kind="worksheet", part="worksheets/sheet1.xml")})
    users = e.tmp / "users-bomb"
    out.append(_measured_import(e, f".xlsx zip bomb ({xlsx.stat().st_size // 1024} KB to 30 million rows)",
                                [str(xlsx), "--scenario", "bomb"], users))
    docx = e.tmp / "docs-bomb" / "bomb.docx"
    docx.parent.mkdir()
    _office(docx, "word/document.xml", b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            b'wordprocessingml/2006/main"><w:body>', b"<w:p><w:r><w:t>leave policy text here</w:t></w:r></w:p>",
            1_000_000, b"</w:body></w:document>", {
                "[Content_Types].xml": _CT.format(part="word/document.xml", ct="application/vnd.openxmlformats-"
                                                  "officedocument.wordprocessingml.document.main+xml"),
                "_rels/.rels": _RELS.format(kind="officeDocument", part="word/document.xml")})
    sheet = e.file("qs3.csv", b"id,prompt\nq1,How many days of leave?\n")
    out.append(_measured_import(e, f".docx bomb ({docx.stat().st_size // 1024} KB to a million paragraphs)",
                                [str(sheet), "--scenario", "docbomb", "--docs", str(docx.parent)],
                                e.tmp / "users-docx"))
    return out


def _measured_import(e: Env, name: str, args: list[str], users: Path) -> dict:
    """An import that must be refused quickly, with little memory, leaving nothing behind."""
    code = ("import resource, subprocess, sys, time; t = time.monotonic()\n"
            "try:\n    r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)\n"
            "    rc = r.returncode\n"
            "except subprocess.TimeoutExpired:\n    rc, r = 'timeout', None\n"
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
            "print(rc, round(time.monotonic() - t, 1), peak)\n"
            "print(r.stderr if r else '', file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "engine", "import", *args], cwd=ROOT,
                         capture_output=True, text=True, env=dict(e.env, MODELPICK_USER_SCENARIOS_DIR=str(users)),
                         timeout=200)
    rc, secs, peak = (res.stdout.split() + ["?", "0", "?"])[:3]
    left = [p for p in users.rglob("*") if p.is_file()] if users.exists() else []
    return _case(name, "hang", rc == "2" and not left, res.stderr, float(secs),
                 detail=[f"peak {peak} MB, {len(left)} files left"] + res.stderr.strip().splitlines()[-1:])


def hang_cases(e: Env, oa_url: str) -> list[dict]:
    out = []
    regex = e.file("regex.yaml", b"id: rx\nname: r\ndescription: d\nweights: {quality: 1}\n"
                   b"cases: [{id: a, category: k, prompt: 'Shout.', checks: [{type: regex, value: '^(a|aa)+$'}]}]\n")
    db = e.db()
    rc, _, err, secs = e.cli("run", "--scenario", regex, "--no-warmup", "--model", f"openai/a40@{oa_url}/v1",
                             "--db", db, timeout=60)
    failed = count(db, "SELECT count(*) FROM check_results WHERE check_type = 'regex' AND NOT passed") \
        if db.exists() else 0
    done = count(db, "SELECT count(*) FROM runs WHERE status = 'done'") if db.exists() else 0
    out.append(_case("regex check ^(a|aa)+$ on a 41-character answer", "hang", rc == 0 and failed == 1 and done == 1,
                     err, secs, (1, count(db) if db.exists() else 0)))
    # the anchors inside a check's value, as a scenario may hold them: 10^8 values once expanded
    levels = ", ".join(f"&{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]"
                       for i in range(8))
    laughs = ("id: lol\nname: x\ndescription: d\nweights: {quality: 1}\ncases: [{id: a, category: k, prompt: p, "
              "checks: [{type: json_schema, value: {examples: [&a [x, x, x, x, x, x, x, x, x, x], " + levels
              + "], enum: *i}}]}]\n").encode()
    out.append(bad_input(e, "YAML with nested aliases (8 levels of 10) in a check value",
                         ["run", "--scenario", e.file("laughs.yaml", laughs), "--model", "fake/echo"], "alias"))
    out[-1]["class"] = "hang"
    users = e.tmp / "users-lol"
    users.mkdir()
    (users / "lol.yaml").write_bytes(laughs)
    rc, so, err, secs = e.cli("list", "scenarios", env=dict(e.env, MODELPICK_USER_SCENARIOS_DIR=str(users)),
                              timeout=60)
    out.append(_case("list scenarios with that file in the user folder", "hang",
                     rc is not None and "standard" in so and "lol.yaml" in err, err, secs))
    fifo = e.tmp / "fifo.yaml"
    os.mkfifo(fifo)
    out.append(bad_input(e, "scenario path that is a FIFO", ["run", "--scenario", fifo, "--model", "fake/echo"],
                         "FIFO"))
    out[-1]["class"] = "hang"
    out += _bomb_cases(e)
    db = e.db()  # the database held by another process before the run starts; two Ctrl-C
    e.cli("run", "--scenario", "standard", "--model", "fake/echo", *CASE, "--db", db)
    holder = hold_file(db, 120)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--scenario", "standard", "--model", "fake/echo",
                             *CASE, "--db", str(db)], cwd=ROOT, env=e.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    err = _stderr_of(proc, 150)
    stop_s = time.monotonic() - t0
    holder.kill()
    out.append(_case("database held 120 s, then two Ctrl-C", "hang", stop_s < 5, err, stop_s,
                     detail=[f"ended {stop_s:.1f} s after the first Ctrl-C"]))
    return out


def crash_cases(e: Env, oa_url: str) -> list[dict]:
    from tests.fakeservers import MALFORMED

    out = []
    run = ["run", "--scenario", "standard", "--case", "knowledge-en"]
    for args, option in [(["--threads", "100000"], "--threads"), (["--threads", "99999999999"], "--threads"),
                         (["--repeats", "3000000000"], "--repeats"), (["--temperature", "inf"], "--temperature"),
                         (["--seed", "1e23"], "--seed")]:
        db = e.db()
        rc, _, err, secs = e.cli(*run, "--model", "llamacpp/smollm2-135m", "--no-warmup", *args, "--db", db,
                                 timeout=120)
        out.append(_case(f"run {' '.join(args)}", "crash", rc == 2 and option in err and not db.exists(), err, secs))
    for model in MALFORMED:
        db = e.db()
        rc, _, err, secs = e.cli(*run, "--no-warmup", "--model", f"openai/{model}@{oa_url}/v1", "--db", db)
        failed = count(db, "SELECT count(*) FROM generations WHERE NOT ok AND error LIKE '%malformed%'") \
            if db.exists() else 0
        out.append(_case(f"server stream: {model}", "crash", rc == 0 and failed == 1, err, secs,
                         (1, count(db) if db.exists() else 0)))
    for name, data in [("max-tokens.csv", b"prompt,max_tokens\nhi,1e309\n"),
                       ("max-tokens.jsonl", b'{"prompt": "hi", "max_tokens": 1e400}\n')]:
        rc, _, err, secs = e.cli("import", e.file(name, data), "--scenario", "mt",
                                 env=dict(e.env, MODELPICK_USER_SCENARIOS_DIR=str(e.tmp / f"users-{name}")))
        out.append(_case(f"max_tokens of {'1e309 in a CSV' if name.endswith('csv') else '1e400 in JSONL'}", "crash",
                         rc == 2 and "max_tokens" in err, err, secs))
    import docx

    word = docx.Document()
    word.add_paragraph("x" * 30_000_000)
    folder = e.tmp / "docs-long-run"
    folder.mkdir()
    word.save(str(folder / "long.docx"))
    rc, _, err, secs = e.cli("import", e.file("qs4.csv", b"prompt\nhi\n"), "--scenario", "longrun", "--docs", folder,
                             env=dict(e.env, MODELPICK_USER_SCENARIOS_DIR=str(e.tmp / "users-longrun")))
    out.append(_case(".docx with one 30 MB text run", "crash", rc == 2 and "long.docx" in err, err, secs))
    res = _py(SANDBOX, 200)
    last = res.stdout.split()[-1] if res.stdout.split() else ""
    written = int(last) if last.isdigit() else -1
    out.append(_case("sandboxed code writing 1.5 GB to /tmp and 1.5 GB to its folder", "crash",
                     0 <= written <= 512, res.stderr, detail=[f"{written} MB written"]))
    shop = sorted((ROOT / "scenarios").rglob("*.sql"))[0]
    res = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + SQL, str(shop)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    last = res.stdout.split()[-1] if res.stdout.split() else ""
    peak = int(last) if last.isdigit() else -1
    out.append(_case("SQL check that builds a 2.5 GB string", "crash", 0 < peak < 1024, res.stderr,
                     detail=[f"the checking process peaked at {peak} MB"] + res.stdout.splitlines()[:1]))
    return out


def message_cases(e: Env) -> list[dict]:
    out = []
    head = b"id: mine\nname: m\ndescription: d\n"
    for name, data, message in [
        ("duplicate key", head + b"weights: {quality: 1}\ncases: [{id: a, category: k, prompt: hi}]\n"
                          b"cases: [{id: b, category: k, prompt: ho}]\n", "'cases' is given twice"),
        ("NaN weight", head + b"weights: {quality: .nan}\ncases: [{id: a, category: k, prompt: hi}]\n", "weights"),
        ("infinite temperature", head + b"weights: {quality: 1}\ndefaults: {temperature: .inf}\n"
                                 b"cases: [{id: a, category: k, prompt: hi}]\n", "temperature"),
        ("negative timeout_s", head + b"weights: {quality: 1}\ncases: [{id: a, category: k, prompt: hi, checks: "
                               b"[{type: python_tests, value: {tests: 'assert True', timeout_s: -5}}]}]\n",
         "timeout_s"),
    ]:
        path = e.file(f"msg-{name.replace(' ', '-')}.yaml", data)
        out.append(bad_input(e, f"scenario file: {name}", ["run", "--scenario", path, "--model", "fake/echo"],
                             message))
    folder = e.tmp / "model-folder.gguf"
    folder.mkdir()
    out.append(bad_input(e, "GGUF path that is a folder", ["run", "--scenario", "standard", "--model",
                                                            f"llamacpp/{folder}"], "is a folder"))

    def claims_ours(p):
        con = duckdb.connect(str(p))
        con.execute("CREATE TABLE migrations (id INTEGER, name VARCHAR, applied_at TIMESTAMP)")
        res = _py("from engine.store import MIGRATIONS; print(' '.join(n for n, _ in MIGRATIONS))", 60)
        for i, name in enumerate(res.stdout.split(), start=1):
            con.execute("INSERT INTO migrations VALUES (?, ?, now())", [i, name])
        con.close()
    out.append(file_fault(e, "foreign DuckDB file that lists all our migrations", claims_ours,
                          ["summary"], "not a ModelPick results file"))
    for r in out:
        r["class"] = "message"
    return out


def second_round(e: Env) -> list[dict]:
    with FakeServer(OpenAIHandler) as oa:
        return (secrets_cases(e, oa.url) + escape_cases(e, oa.url) + hang_cases(e, oa.url) + crash_cases(e, oa.url)
                + message_cases(e))


def main() -> None:
    only = sys.argv[1:]  # `second`: only the second round's cases
    with tempfile.TemporaryDirectory() as tmp:
        e = Env(Path(tmp))
        results = second_round(e) if only == ["second"] else cases(e) + second_round(e)
    width = max(len(r["case"]) for r in results)
    for r in results:
        mark = "clean" if r["clean"] and not r["traceback"] else "NOT CLEAN"
        hang = " HANG" if r["seconds"] > HANG_S else ""
        print(f"{r['case']:<{width}}  {r['class']:<14} {mark:<9} rows {r['rows_found']}/{r['rows_expected']}  "
              f"{r['seconds']:.1f} s{hang}  {' '.join(r['detail'])[:110]}")
    clean = sum(1 for r in results if r["clean"] and not r["traceback"])
    for klass in dict.fromkeys(r["class"] for r in results):
        of = [r for r in results if r["class"] == klass]
        print(f"  {klass}: {sum(1 for r in of if r['clean'] and not r['traceback'])}/{len(of)} clean")
    print(f"cases={len(results)} clean={clean} tracebacks={sum(r['traceback'] for r in results)} "
          f"rows_expected={sum(r['rows_expected'] for r in results)} "
          f"rows_found={sum(max(r['rows_found'], 0) for r in results)} "
          f"hangs={sum(r['seconds'] > HANG_S for r in results)}")


if __name__ == "__main__":
    main()
