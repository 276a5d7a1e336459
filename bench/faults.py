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
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

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
    ok = rc == 2 and message in err and (not creates_nothing or not db.exists())
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
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
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
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--scenario", "standard", "--model", "fake/slow",
                             *CASE, "--repeats", "3", "--db", str(db)], cwd=ROOT, env=e.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while count(db) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
                               "print('held', flush=True); time.sleep(40)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    holder.stdout.readline()
    holder.wait()  # held for 40 s, longer than any wait for the lock
    released = time.monotonic()
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    found = count(db)
    # what counts as a hang here is the time the run needed once the file was free again
    return {"case": "a reader holds the database for 40 s mid-run", "class": "database file",
            "clean": proc.returncode == 0 and found == 6 and "database busy" in err,
            "traceback": "Traceback" in err, "rows_expected": 6, "rows_found": found,
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
                                 "field context_file: cannot read"),
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
        ("--max-tokens 0", [*run, "--model", "fake/echo", "--max-tokens", "0"], "--max-tokens must be at least 1"),
        ("--max-tokens -1", [*run, "--model", "fake/echo", "--max-tokens", "-1"], "--max-tokens must be at least 1"),
        ("--temperature -1", [*run, "--model", "fake/echo", "--temperature", "-1"], "--temperature must be >= 0"),
        ("--threads 0", [*run, "--model", "fake/echo", "--threads", "0"], "--threads must be at least 1"),
        ("--n-ctx below the shortest prompt", [*run, "--model", "fake/echo", "--n-ctx", "4"], "--n-ctx 4 is smaller"),
        ("--repeats 0", [*run, "--model", "fake/echo", "--repeats", "0"], "--repeats must be at least 1"),
        ("--timeout 0", [*run, "--model", "fake/echo", "--timeout", "0"], "--timeout must be > 0"),
        ("unknown --case", [*run, "--model", "fake/echo", "--case", "nope"], "unknown case ids ['nope']"),
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
         "cny_per_usd: must be > 0"),
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
        add({"case": name, "class": "bad input", "clean": rc == 2 and message in err and digest(base) == before,
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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = cases(Env(Path(tmp)))
    width = max(len(r["case"]) for r in results)
    for r in results:
        mark = "clean" if r["clean"] and not r["traceback"] else "NOT CLEAN"
        hang = " HANG" if r["seconds"] > HANG_S else ""
        print(f"{r['case']:<{width}}  {r['class']:<14} {mark:<9} rows {r['rows_found']}/{r['rows_expected']}  "
              f"{r['seconds']:.1f} s{hang}  {' '.join(r['detail'])[:110]}")
    clean = sum(1 for r in results if r["clean"] and not r["traceback"])
    print(f"cases={len(results)} clean={clean} tracebacks={sum(r['traceback'] for r in results)} "
          f"rows_expected={sum(r['rows_expected'] for r in results)} "
          f"rows_found={sum(max(r['rows_found'], 0) for r in results)} "
          f"hangs={sum(r['seconds'] > HANG_S for r in results)}")


if __name__ == "__main__":
    main()
