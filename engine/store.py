"""DuckDB store. The schema changes only through the ordered migrations below.

Each operation takes its own short connection (a cursor of the file this process has open, the
file closed LINGER_S after its last use): a run executes in a worker process while the dashboard
reads, and DuckDB lets only one process hold a file at a time, so a lock is held for milliseconds
and retried when another process has it.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from .redact import mask_held, redact

DEFAULT_DB = "results.duckdb"
RUN_STATUSES = ("running", "done", "interrupted", "failed")

MIGRATIONS: list[tuple[str, str]] = [
    ("001_initial", """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            scenario_id VARCHAR NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('running', 'done', 'interrupted', 'failed')),
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            planned_generations INTEGER,
            error VARCHAR,
            config_json JSON,
            host_json JSON
        );
        CREATE TABLE generations (
            run_id VARCHAR NOT NULL,
            model_spec VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            category VARCHAR,
            repeat INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            ok BOOLEAN NOT NULL,
            error VARCHAR,
            output_text VARCHAR,
            finish_reason VARCHAR,
            load_ms DOUBLE,
            ttft_ms DOUBLE,
            e2e_ms DOUBLE,
            prompt_tokens INTEGER,
            output_tokens INTEGER,
            output_chars INTEGER,
            prompt_tok_per_s DOUBLE,
            decode_tok_per_s DOUBLE,
            stream_decode_tok_per_s DOUBLE,
            chars_per_s DOUBLE,
            engine_prompt_ms DOUBLE,
            engine_decode_ms DOUBLE,
            tokens_source VARCHAR,
            rss_mb DOUBLE,
            vram_mb DOUBLE,
            started_at TIMESTAMP NOT NULL
        );
        CREATE TABLE check_results (
            run_id VARCHAR NOT NULL,
            model_spec VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            check_type VARCHAR NOT NULL,
            passed BOOLEAN NOT NULL,
            score DOUBLE NOT NULL,
            weight DOUBLE NOT NULL,
            detail VARCHAR
        );
    """),
    ("002_reasoning_and_server_timings", """
        ALTER TABLE generations ADD COLUMN first_token_ms DOUBLE;
        ALTER TABLE generations ADD COLUMN reasoning_text VARCHAR;
        ALTER TABLE generations ADD COLUMN chunk_gaps_ms DOUBLE[];
        ALTER TABLE generations ADD COLUMN engine_load_ms DOUBLE;
        ALTER TABLE generations ADD COLUMN engine_total_ms DOUBLE;
    """),
    ("003_load_sweeps", """
        CREATE TABLE sweeps (
            sweep_id VARCHAR PRIMARY KEY,
            model_spec VARCHAR NOT NULL,
            scenario_id VARCHAR NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('running', 'done', 'interrupted', 'failed')),
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            config_json JSON,
            host_json JSON
        );
        CREATE TABLE sweep_levels (
            sweep_id VARCHAR NOT NULL,
            concurrency INTEGER NOT NULL,
            requests INTEGER NOT NULL,
            ok_requests INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            wall_s DOUBLE NOT NULL,
            output_tok_per_s DOUBLE,
            req_per_s DOUBLE,
            ttft_ms_p50 DOUBLE, ttft_ms_p95 DOUBLE, ttft_ms_p99 DOUBLE,
            itl_ms_p50 DOUBLE, itl_ms_p95 DOUBLE, itl_ms_p99 DOUBLE,
            e2e_ms_p50 DOUBLE, e2e_ms_p95 DOUBLE,
            goodput_req_per_s DOUBLE,
            slo_json JSON
        );
        CREATE TABLE sweep_requests (
            sweep_id VARCHAR NOT NULL,
            concurrency INTEGER NOT NULL,
            request_index INTEGER NOT NULL,
            ok BOOLEAN NOT NULL,
            error VARCHAR,
            ttft_ms DOUBLE,
            e2e_ms DOUBLE,
            output_tokens INTEGER,
            tokens_source VARCHAR,
            chunk_gaps_ms DOUBLE[],
            started_at TIMESTAMP NOT NULL
        );
    """),
    ("004_scoring_and_ratings", """
        ALTER TABLE generations ADD COLUMN exceeds_context BOOLEAN DEFAULT false;
        ALTER TABLE check_results ADD COLUMN raw_verdict VARCHAR;
        CREATE TABLE judge_pairs (
            run_id VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            turn INTEGER NOT NULL,
            judge_spec VARCHAR NOT NULL,
            model_1 VARCHAR NOT NULL,
            model_2 VARCHAR NOT NULL,
            score_1 DOUBLE,
            winner_12 VARCHAR,
            winner_21 VARCHAR,
            raw_12 VARCHAR,
            raw_21 VARCHAR,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE ratings (
            run_id VARCHAR NOT NULL,
            model_spec VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            dimension VARCHAR NOT NULL,
            stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
            rater VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE ab_votes (
            scenario_id VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            turn INTEGER NOT NULL,
            left_run_id VARCHAR NOT NULL,
            left_model VARCHAR NOT NULL,
            right_run_id VARCHAR NOT NULL,
            right_model VARCHAR NOT NULL,
            vote VARCHAR NOT NULL CHECK (vote IN ('left', 'right', 'tie', 'both_bad')),
            rater VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
    """),
    ("005_decisions_and_prices", """
        CREATE TABLE gpu_prices (
            gpu VARCHAR NOT NULL,
            provider VARCHAR NOT NULL,
            tier VARCHAR NOT NULL,
            price_per_hour DOUBLE NOT NULL CHECK (price_per_hour >= 0),
            currency VARCHAR NOT NULL CHECK (currency IN ('USD', 'CNY')),
            source VARCHAR,
            memory_gb DOUBLE,
            bandwidth_gb_per_s DOUBLE,
            updated_at TIMESTAMP NOT NULL
        );
        CREATE TABLE decisions (
            decision_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            scenario_id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            weights_json JSON NOT NULL,
            constraints_json JSON NOT NULL,
            cost_json JSON NOT NULL,
            verdict VARCHAR NOT NULL,
            result_json JSON NOT NULL
        );
    """),
    ("006_run_owner", """
        ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
        ALTER TABLE runs ADD COLUMN owner_host VARCHAR;
        ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMP;
    """),
    ("007_sweep_error", """
        ALTER TABLE sweeps ADD COLUMN error VARCHAR;
    """),
    ("008_context_per_generation", """
        ALTER TABLE generations ADD COLUMN context_tokens INTEGER;
    """),
    ("009_telemetry", """
        ALTER TABLE generations ADD COLUMN peak_rss_mb DOUBLE;
        ALTER TABLE generations ADD COLUMN peak_ram_used_mb DOUBLE;
        ALTER TABLE generations ADD COLUMN mean_cpu_pct DOUBLE;
        ALTER TABLE generations ADD COLUMN peak_vram_mb DOUBLE;
        ALTER TABLE generations ADD COLUMN mean_gpu_util_pct DOUBLE;
        ALTER TABLE generations ADD COLUMN mean_gpu_power_w DOUBLE;
        ALTER TABLE generations ADD COLUMN telemetry_samples INTEGER;
    """),
    ("010_prompt_cache", """
        ALTER TABLE generations ADD COLUMN cache_mode VARCHAR;
        ALTER TABLE generations ADD COLUMN cache_marker VARCHAR;
        ALTER TABLE generations ADD COLUMN cached_prompt_tokens INTEGER;
    """),
    ("011_sweep_rates", """
        ALTER TABLE sweep_levels ADD COLUMN rate_per_s DOUBLE;
        ALTER TABLE sweep_levels ADD COLUMN saturated BOOLEAN;
        ALTER TABLE sweep_levels ADD COLUMN arrival_seed BIGINT;
        ALTER TABLE sweep_requests ADD COLUMN rate_per_s DOUBLE;
    """),
    ("012_server_counters", """
        ALTER TABLE generations ADD COLUMN request_id VARCHAR;
        ALTER TABLE sweep_requests ADD COLUMN request_id VARCHAR;
        ALTER TABLE sweep_levels ADD COLUMN server_json JSON;
    """),
    ("013_find_max", """
        ALTER TABLE sweep_levels ADD COLUMN meets_slo BOOLEAN;
        ALTER TABLE sweep_levels ADD COLUMN search_step INTEGER;
        ALTER TABLE sweep_levels ADD COLUMN is_max BOOLEAN;
        ALTER TABLE sweeps ADD COLUMN max_rate_per_s DOUBLE;
        ALTER TABLE sweeps ADD COLUMN max_concurrency INTEGER;
    """),
    ("014_token_count_doubts", """
        ALTER TABLE generations ADD COLUMN tokens_note VARCHAR;
    """),
    ("015_tool_calls", """
        ALTER TABLE generations ADD COLUMN tool_calls_json VARCHAR;
        ALTER TABLE generations ADD COLUMN tool_steps_json VARCHAR;
        ALTER TABLE generations ADD COLUMN tool_steps INTEGER;
        ALTER TABLE generations ADD COLUMN tool_ms DOUBLE;
        ALTER TABLE generations ADD COLUMN tools_note VARCHAR;
        ALTER TABLE check_results ADD COLUMN critical BOOLEAN;
    """),
    ("016_server_failures", """
        ALTER TABLE generations ADD COLUMN failed_by VARCHAR;
        ALTER TABLE generations ADD COLUMN retries INTEGER;
        ALTER TABLE generations ADD COLUMN retry_wait_ms DOUBLE;
    """),
]


def _json_default(value):
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"cannot journal {type(value).__name__}")


def _revive(row: dict) -> dict:
    return {k: datetime.fromisoformat(v["__datetime__"]) if isinstance(v, dict) and "__datetime__" in v else v
            for k, v in row.items()}


def run_facts(run: dict) -> dict:
    """A runs row with its JSON columns decoded: `config` and `host` as dicts (empty if absent)."""
    def decoded(value) -> dict:
        return json.loads(value) if isinstance(value, str) else (value or {})

    return {**run, "config": decoded(run.get("config_json")), "host": decoded(run.get("host_json"))}


# No connection reaches for the network: DuckDB would otherwise download and load an extension to
# read a foreign file (sqlite_scanner for a SQLite file given as --db).
NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

_FOREIGN_MAGIC = ((b"SQLite format 3\0", "a SQLite database"), (b"PAR1", "a Parquet file"),
                  (b"PK\x03\x04", "a ZIP archive (an xlsx or docx?)"), (b"%PDF", "a PDF"))


def connect(path: str | Path, read_only: bool = False):
    """A DuckDB connection with extension auto-install and auto-load off; a file that exists and is
    not a DuckDB file is refused, saying what it is, before DuckDB looks at it."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:  # missing (DuckDB makes it) or unreadable (DuckDB says why)
        head = b""
    kind = next((what for magic, what in _FOREIGN_MAGIC if head.startswith(magic)), None)
    if kind:
        raise StoreError(f"{path} is {kind}, not a ModelPick results file; it was left unchanged")
    if len(head) >= 12 and head[8:12] != b"DUCK":
        raise StoreError(f"{path} is not a readable DuckDB results file (no DuckDB header: not a DuckDB "
                         "file, or corrupted); it was left unchanged")
    con = duckdb.connect(path, read_only=read_only)
    # set once open, not as the connection's configuration: another connection to the same file in
    # this process (a notebook, a test) with the default configuration would otherwise be refused
    for name, value in NO_EXTENSIONS.items():
        con.execute(f"SET {name} = {str(value).lower()}")
    return con


def _describe_open_error(path: str, exc: BaseException) -> str:
    msg = _first_line(exc)
    low = msg.lower()
    if "permission denied" in low or "read-only" in low:
        return f"{path}: cannot open for writing ({msg}); reading commands open it read-only"
    if "no space" in low:
        return f"{path}: the disk is full ({msg})"
    if "not a valid duckdb" in low or "serializ" in low or "corrupt" in low or "checksum" in low \
            or "invalid" in low or "internal" in low or "magic" in low:
        return f"{path} is not a readable DuckDB results file (truncated or corrupted?): {msg}"
    return f"{path}: cannot open: {msg}"


def new_run_id() -> str:
    return utcnow().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class StoreError(RuntimeError):
    """The results file cannot be used as asked; the message names the file and why."""


class StoreBusy(StoreError):
    """Another process held the file for longer than the wait allowed."""


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def default_db_path() -> str:
    return os.environ.get("MODELPICK_DB") or DEFAULT_DB


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows sharing the first row's columns; error texts with secrets masked."""
    if not rows:
        return
    cols = list(rows[0])
    con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [[_clean(c, r[c]) for c in cols] for r in rows])


_REDACTED = {"error", "detail", "raw_verdict"}
_MODEL_TEXT = {"output_text", "reasoning_text"}  # a secret of this process echoed by a model is masked too
MAX_ERROR_CHARS = 2000  # what a server sends back in an error is untrusted and may be huge


def _clean(column: str, value):
    if column in _MODEL_TEXT:
        return mask_held(value)
    if column not in _REDACTED:
        return value
    value = redact(value)
    if column == "error" and isinstance(value, str) and len(value) > MAX_ERROR_CHARS:
        value = value[:MAX_ERROR_CHARS] + f"... [{len(value) - MAX_ERROR_CHARS} more characters cut]"
    return value


def _schema_of(sql: str) -> list[tuple[str, str]]:
    """(table, column) pairs a migration creates: what a file that lists it must have."""
    out = []
    for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\s*\);", sql, re.S):
        for line in body.split(",\n"):
            word = line.strip().split(" ", 1)[0]
            if word and word.isidentifier() and word.upper() not in ("PRIMARY", "UNIQUE", "FOREIGN", "CHECK"):
                out.append((table, word))
    out += re.findall(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", sql)
    return out


# Opening a DuckDB file builds its whole function catalog: about 30 ms, where a connection to a file
# this process has open costs 0.04 ms. So a file stays open in the process for LINGER_S after its last
# use, lent to each operation as a cursor of its own, and is then closed (freeing its lock): bursts of
# queries open it once, and other processes (the dashboard while a worker writes) wait at most that
# much longer than the operation itself. Each operation that wrote ends with a checkpoint, so
# the file on disk is whole between operations, as when each one closed it. Short, so the file is free
# between the polls of a reader (the dashboard watching a run): at 0.1 s a reader polling every 0.05 s
# kept a writing worker out for its whole lock timeout (tests/test_store.py).
LINGER_S = 0.02


class _Open:
    """One file open in this process: its connection, its mode, how many operations use it."""

    def __init__(self, key: str, con: duckdb.DuckDBPyConnection, read_only: bool):
        self.key, self.con, self.read_only, self.users, self.idle_since = key, con, read_only, 0, time.monotonic()
        self.broken = False  # DuckDB invalidated it (a fatal error such as a full disk): reopened once idle

    def put_back(self) -> None:
        """An operation is done with it: it is idle from now when no other one uses it, and closed at once
        when DuckDB invalidated it."""
        with _OPEN_LOCK:
            self.users -= 1
            self.idle_since = time.monotonic()
            if self.users == 0 and (self.broken or LINGER_S <= 0):
                self.close()

    def close(self) -> None:
        """Forget and close it (under _OPEN_LOCK, no operation using it)."""
        if _OPEN.get(self.key) is self:
            del _OPEN[self.key]
        with contextlib.suppress(duckdb.Error):  # an invalidated database may refuse its last checkpoint
            self.con.close()


_OPEN: dict[str, _Open] = {}
_OPEN_LOCK = threading.Condition()
_closer: threading.Thread | None = None


def _close_idle(linger_s: float) -> None:
    """Close the files no operation has used for linger_s (under _OPEN_LOCK)."""
    now = time.monotonic()
    for entry in list(_OPEN.values()):
        if entry.users == 0 and now - entry.idle_since >= linger_s:
            entry.close()


def _closer_loop() -> None:
    global _closer
    with _OPEN_LOCK:
        while _OPEN:
            _close_idle(LINGER_S)
            _OPEN_LOCK.wait(max(LINGER_S, 0.01) / 2)
        _closer = None


def release(path: str | Path) -> None:
    """Close this process's idle connection to `path` now (before another connection opens the file
    in another mode: an ATTACH, a read-only open)."""
    with _OPEN_LOCK:
        entry = _OPEN.get(os.path.realpath(path))
        if entry is not None and entry.users == 0:
            entry.close()


@atexit.register
def _close_all() -> None:
    """At exit, before the interpreter stops its threads: no thread is left closing a file."""
    with _OPEN_LOCK:
        _close_idle(0.0)


def _checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """What an operation wrote goes from the write-ahead log into the file now, as a close did (5 ms, not
    30): a copy of the file is whole, and a full disk fails this operation. An operation that only read
    left no log (a checkpoint empties it) and does not come here. While another thread of this process
    is inside a write transaction on the file, DuckDB refuses the checkpoint; that operation checkpoints
    when it ends (the last writer to end always can), so the refusal is not this operation's failure:
    what it wrote is committed."""
    try:
        con.execute("CHECKPOINT")
    except duckdb.TransactionException as exc:
        if "other write transactions" not in str(exc):
            raise


class Store:
    """A ModelPick results file. `read_only` opens it without a write lock and creates or
    changes nothing; otherwise the file is created when missing and migrated, but only
    once it is recognised as ours: a DuckDB file of another program is never modified."""

    def __init__(self, path: str | Path | None = None, lock_timeout_s: float = 30.0,
                 read_only: bool = False, give_up: threading.Event | None = None):
        self.path = str(path or default_db_path())
        self.lock_timeout_s = lock_timeout_s
        # set (by a second Ctrl-C) to stop waiting for a database another process holds
        self.give_up = give_up or threading.Event()
        self._local = threading.local()  # the connection held by held() in this thread
        self.read_only = read_only
        if read_only and not Path(self.path).is_file():
            raise StoreError(f"no results database at {self.path}")
        if read_only:
            pending = self._check_ours()
            if pending and os.access(self.path, os.W_OK):
                Store(self.path, lock_timeout_s)  # our own file from an older version: upgrade it first
            elif pending:
                raise StoreError(f"{self.path} was written by an older ModelPick and needs upgrading "
                                 f"({', '.join(pending)}), but it is read-only; open it once with write access")
        else:
            self.migrate()
            self.replay_journals()

    @contextmanager
    def held(self) -> Iterator[None]:
        """One connection for a block of queries (every connect() inside it in this thread
        reuses it): opening the file costs several ms, and a decision or a page makes dozens
        of queries. Other processes wait for the block as they wait for one query."""
        if getattr(self._local, "con", None) is not None:
            yield
            return
        with self.connect() as con:
            self._local.con = con
            try:
                yield
            finally:
                self._local.con = None

    @contextmanager
    def connect(self, lock_timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        held = getattr(self._local, "con", None)
        if held is not None:
            try:
                yield held
            except duckdb.Error as exc:
                raise self._error(exc) from None
            return
        entry = self._open(self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s)
        try:
            con = entry.con.cursor()
        except BaseException:
            entry.put_back()
            raise
        try:
            yield con
            if not self.read_only and os.path.exists(self.path + ".wal"):
                _checkpoint(con)
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.FatalException) or "invalidated" in str(exc):
                entry.broken = True
            raise self._error(exc) from None
        finally:
            con.close()
            entry.put_back()

    def _open(self, wait: float) -> _Open:
        """This file, open in this process in this store's mode (opened if need be; while another
        process holds it, retried until `wait` seconds have passed)."""
        global _closer
        key = os.path.realpath(self.path)
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            with _OPEN_LOCK:
                entry = _OPEN.get(key)
                if entry is not None and (entry.read_only != self.read_only or entry.broken) and entry.users == 0:
                    entry.close()  # idle, and open in the other mode or invalidated: opened afresh
                    entry = None
                if entry is None:
                    try:
                        entry = _Open(key, connect(self.path, read_only=self.read_only), self.read_only)
                    except duckdb.Error as exc:
                        msg = str(exc)
                        if not ("lock" in msg.lower() and "conflicting" in msg.lower() or "Could not set lock" in msg):
                            raise StoreError(_describe_open_error(self.path, exc)) from None
                        busy: str | None = _first_line(exc)
                    else:
                        _OPEN[key] = entry
                        if _closer is None:
                            _closer = threading.Thread(target=_closer_loop, daemon=True, name="store-closer")
                            _closer.start()
                if entry is not None and entry.read_only == self.read_only and not entry.broken:
                    entry.users += 1
                    return entry
                if entry is not None:
                    busy = "open in this process in the other mode, or being reopened"
            if self.give_up.is_set():
                raise StoreBusy(f"database {self.path} is held by another process; stopped waiting "
                                "(interrupted)") from None
            if time.monotonic() > deadline:
                raise StoreBusy(f"database {self.path} is held by another process "
                                f"(waited {wait:.0f} s): {busy}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _error(self, exc: duckdb.Error) -> StoreError:
        msg = _first_line(exc)
        full = "the disk is full: " if "no space left" in msg.lower() else ""
        return StoreError(f"database {self.path}: {full}{msg}")

    # --- schema -------------------------------------------------------------------
    def _check_ours(self) -> list[str]:
        """The migrations still to apply; StoreError if the file is not a ModelPick file."""
        with self.connect() as con:
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
            if "migrations" not in tables:
                if tables:
                    shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
                    raise StoreError(f"{self.path} is not a ModelPick results file (it has tables {shown} "
                                     "and no migrations table); it was left unchanged: choose another file")
                return [name for name, _ in MIGRATIONS]
            try:
                done = {r[0] for r in con.execute("SELECT name FROM migrations").fetchall()}
            except duckdb.Error as exc:
                raise StoreError(f"{self.path}: cannot read its migrations table ({_first_line(exc)}): the file "
                                 "is truncated or corrupted, or not ModelPick's; it was left unchanged") from None
            ours = [name for name, _ in MIGRATIONS]
            unknown = sorted(done - set(ours))
            if unknown:
                raise StoreError(f"{self.path} was written by a newer ModelPick or another program "
                                 f"(unknown migrations {', '.join(unknown)}); it was left unchanged")
            have = set(con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                   "WHERE table_schema = 'main'").fetchall())
        missing = [f"{table}.{column}" for name, sql in MIGRATIONS if name in done
                   for table, column in _schema_of(sql) if (table, column) not in have]
        if missing:
            raise StoreError(f"{self.path} is not a ModelPick results file: its migrations table lists ours, but "
                             f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} "
                             "is missing; it was left unchanged: choose another file")
        return [name for name in ours if name not in done]

    def migrate(self) -> list[str]:
        pending = self._check_ours()
        applied_now: list[str] = []
        if not pending:
            return applied_now
        with self.connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS migrations "
                        "(id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)")
            for i, (name, sql) in enumerate(MIGRATIONS, start=1):
                if name not in pending:
                    continue
                with _transaction(con):
                    con.execute(sql)
                    con.execute("INSERT INTO migrations VALUES (?, ?, ?)", [i, name, utcnow()])
                applied_now.append(name)
        return applied_now

    # --- the journal: finished generations kept while the file is busy ---------------
    def journal_path(self, run_id: str) -> Path:
        return Path(f"{self.path}.runs") / f"{run_id}.journal.jsonl"

    def journal(self, run_id: str, row: dict[str, Any], checks: list[dict[str, Any]]) -> None:
        """Append a finished generation durably (fsync) beside the database."""
        path = self.journal_path(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        row = {k: _clean(k, v) for k, v in row.items()}
        checks = [{k: _clean(k, v) for k, v in c.items()} for c in checks]
        line = json.dumps({"row": row, "checks": checks}, ensure_ascii=False, default=_json_default)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def flush_journal(self, run_id: str, lock_timeout_s: float | None = None) -> int:
        """Write a run's journaled generations into the database (once each); the number
        written. StoreBusy if the file is still held."""
        path = self.journal_path(run_id)
        if not path.is_file():
            return 0
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash: its generation was never acknowledged
        written = 0
        with self.connect(lock_timeout_s) as con, _transaction(con):
            for e in entries:
                row = _revive(e["row"])
                key = [row["run_id"], row["model_spec"], row["case_id"], row["repeat"], row["turn"]]
                if _count(con, "SELECT count(*) FROM generations WHERE run_id = ? AND model_spec = ? "
                          "AND case_id = ? AND repeat = ? AND turn = ?", key):
                    continue
                _insert(con, "generations", [row])
                _insert(con, "check_results", e["checks"])
                written += 1
        path.unlink()
        return written

    def replay_journals(self) -> int:
        """Generations a run kept while the file was busy (or before it crashed)."""
        folder = Path(f"{self.path}.runs")
        total = 0
        for path in sorted(folder.glob("*.journal.jsonl")) if folder.is_dir() else []:
            try:
                total += self.flush_journal(path.name.removesuffix(".journal.jsonl"), lock_timeout_s=1.0)
            except StoreBusy:
                pass  # the run that owns it is still writing; it flushes its own journal
        return total

    # --- writes -------------------------------------------------------------------
    def create_run(self, scenario_id: str, config: dict, host: dict, planned_generations: int,
                   run_id: str | None = None) -> str:
        """A new run owned by this process (pid, host and a heartbeat tell others it lives)."""
        run_id = run_id or new_run_id()
        with self.connect() as con:
            if _count(con, "SELECT count(*) FROM runs WHERE run_id = ?", [run_id]):
                raise StoreError(f"run {run_id} exists already in {self.path}: "
                                 f"continue it with `python -m engine resume {run_id}`")
            now = utcnow()
            con.execute(
                "INSERT INTO runs (run_id, scenario_id, status, started_at, planned_generations, "
                "config_json, host_json, owner_pid, owner_host, heartbeat_at) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                [run_id, scenario_id, now, planned_generations,
                 json.dumps(config, ensure_ascii=False), json.dumps(host, ensure_ascii=False),
                 os.getpid(), socket.gethostname(), now],
            )
        return run_id

    def reopen_run(self, run_id: str) -> None:
        """A resumed run: running again, owned by this process."""
        with self.connect() as con:
            con.execute("UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, owner_pid = ?, "
                        "owner_host = ?, heartbeat_at = ? WHERE run_id = ?",
                        [os.getpid(), socket.gethostname(), utcnow(), run_id])

    def heartbeat(self, run_id: str) -> None:
        with self.connect(lock_timeout_s=1.0) as con:
            con.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", [utcnow(), run_id])

    def delete_cells(self, run_id: str, cells: list[tuple[str, str, int]]) -> None:
        """Remove the rows of (model, case, repeat) cells that a resume runs again."""
        with self.connect() as con, _transaction(con):
            for model, case, repeat in cells:
                for table in ("generations", "check_results"):
                    con.execute(f"DELETE FROM {table} WHERE run_id = ? AND model_spec = ? AND case_id = ? "
                                "AND repeat = ?", [run_id, model, case, repeat])

    def replace_vote(self, row: dict[str, Any]) -> None:
        """A rater's blind vote on a pair, in place of any earlier vote of theirs on the same two
        answers (shown in either order): one vote per rater and pair, the latest."""
        with self.connect() as con, _transaction(con):
            con.execute("DELETE FROM ab_votes WHERE scenario_id = ? AND case_id = ? AND turn = ? AND rater = ? AND ("
                        "(left_run_id = ? AND left_model = ? AND right_run_id = ? AND right_model = ?) OR "
                        "(left_run_id = ? AND left_model = ? AND right_run_id = ? AND right_model = ?))",
                        [row["scenario_id"], row["case_id"], row["turn"], row["rater"],
                         row["left_run_id"], row["left_model"], row["right_run_id"], row["right_model"],
                         row["right_run_id"], row["right_model"], row["left_run_id"], row["left_model"]])
            _insert(con, "ab_votes", [row])

    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows of one table in one transaction (all rows share the first row's columns)."""
        with self.connect() as con, _transaction(con):
            _insert(con, table, rows)

    def update_run_config(self, run_id: str, patch: dict, column: str = "config_json") -> None:
        """Merge keys into a run's config_json (e.g. the schedule the runner chose) or host_json."""
        if column not in ("config_json", "host_json"):
            raise ValueError(f"not a JSON column of runs: {column}")
        with self.connect() as con, _transaction(con):
            row = con.execute(f"SELECT {column} FROM runs WHERE run_id = ?", [run_id]).fetchone()
            data = json.loads(row[0]) if row and row[0] else {}
            data.update(patch)
            con.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?",
                        [json.dumps(data, ensure_ascii=False), run_id])

    def finish_run(self, run_id: str, status: str, error: str | None = None,
                   lock_timeout_s: float | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self.connect(lock_timeout_s) as con:
            con.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
                        [status, utcnow(), _clean("error", error), run_id])

    def finish_sweep(self, sweep_id: str, status: str, error: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown sweep status {status!r}")
        with self.connect() as con:
            con.execute("UPDATE sweeps SET status = ?, finished_at = ?, error = ? WHERE sweep_id = ?",
                        [status, utcnow(), _clean("error", error), sweep_id])

    def mark_sweep_max(self, sweep_id: str, *, rate_per_s: float | None = None,
                       concurrency: int | None = None) -> None:
        """The level a search found (the highest meeting the SLOs): flagged, and kept on the sweep."""
        if (rate_per_s is None) == (concurrency is None):
            raise ValueError("mark_sweep_max: give the rate or the concurrency found")
        with self.connect() as con, _transaction(con):
            if rate_per_s is not None:
                con.execute("UPDATE sweep_levels SET is_max = true WHERE sweep_id = ? AND rate_per_s = ?",
                            [sweep_id, rate_per_s])
                con.execute("UPDATE sweeps SET max_rate_per_s = ? WHERE sweep_id = ?", [rate_per_s, sweep_id])
            else:
                con.execute("UPDATE sweep_levels SET is_max = true WHERE sweep_id = ? AND rate_per_s IS NULL "
                            "AND concurrency = ?", [sweep_id, concurrency])
                con.execute("UPDATE sweeps SET max_concurrency = ? WHERE sweep_id = ?", [concurrency, sweep_id])

    def add_generation(self, row: dict[str, Any], checks: list[dict[str, Any]],
                       lock_timeout_s: float | None = None) -> None:
        """One generation and its check results, in one transaction."""
        with self.connect(lock_timeout_s) as con, _transaction(con):
            _insert(con, "generations", [row])
            _insert(con, "check_results", checks)

    # --- reads --------------------------------------------------------------------
    def query(self, sql: str, params: list | None = None):
        """A pandas DataFrame for read queries used by summaries and pages."""
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    def columns(self, table: str) -> list[str]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position", [table]).fetchall()
        return [r[0] for r in rows]

    def get_run(self, run_id: str) -> dict | None:
        df = self.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
        return None if df.empty else df.iloc[0].to_dict()

    def list_runs(self, limit: int = 50):
        return self.query(
            "SELECT r.run_id, r.scenario_id, r.status, r.started_at, r.finished_at, "
            "r.planned_generations, count(g.run_id) AS generations_done, "
            "coalesce(list(DISTINCT g.model_spec ORDER BY g.model_spec) FILTER (WHERE g.model_spec IS NOT NULL), "
            "[]::VARCHAR[]) AS models "
            "FROM (SELECT * FROM runs ORDER BY started_at DESC LIMIT ?) r LEFT JOIN generations g USING (run_id) "
            "GROUP BY ALL ORDER BY r.started_at DESC", [limit])

    def generations(self, run_id: str):
        return self.query("SELECT * FROM generations WHERE run_id = ? "
                          "ORDER BY started_at, model_spec, case_id, repeat, turn", [run_id])

    def check_results(self, run_id: str):
        return self.query("SELECT * FROM check_results WHERE run_id = ? "
                          "ORDER BY model_spec, case_id, repeat, turn", [run_id])


# --- whether a run marked running is alive ---------------------------------------------

STALE_AFTER_S = 60  # a run on another host whose heartbeat is older than this is dead


def _owner_alive(pid: int, since) -> bool:
    """Whether `pid` is the process that owned the run: alive, and started no later than
    the run's last heartbeat (so a reused pid does not count)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
        if proc.status() == psutil.STATUS_ZOMBIE:  # killed, its parent has not reaped it yet: dead
            return False
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    if since is None:
        return True

    return created <= since.replace(tzinfo=UTC).timestamp() + 2


def stale_reason(run: dict) -> str | None:
    """Why a run marked running is dead (its owner process is gone, or its host stopped
    its heartbeat); None while it may still be running."""
    import socket

    if run.get("status") != "running":
        return None
    pid, host, beat = run.get("owner_pid"), run.get("owner_host"), run.get("heartbeat_at")
    if pid is None or pid != pid:
        return None  # a run from before owners were recorded: nothing to tell by
    beat = None if beat is None or beat != beat else beat
    if host == socket.gethostname():
        return None if _owner_alive(int(pid), beat) else f"the process that ran it (pid {int(pid)}) is gone"
    age = (utcnow() - beat).total_seconds() if beat is not None else None
    if age is None or age > STALE_AFTER_S:
        return f"no heartbeat from {host} for {age:.0f} s" if age is not None else f"no heartbeat from {host}"
    return None
