"""DuckDB store. The schema changes only through the ordered migrations below.

Each operation opens its own short connection: a run executes in a worker process
while the dashboard reads, and DuckDB lets only one process hold a file at a time,
so a lock is held for milliseconds and retried when another process has it.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import duckdb

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
]


def new_run_id() -> str:
    return utcnow().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class StoreError(RuntimeError):
    pass


def default_db_path() -> str:
    return os.environ.get("MODELPICK_DB") or DEFAULT_DB


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows sharing the first row's columns."""
    if not rows:
        return
    cols = list(rows[0])
    con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [[r[c] for c in cols] for r in rows])


class Store:
    def __init__(self, path: str | Path | None = None, lock_timeout_s: float = 30.0):
        self.path = str(path or default_db_path())
        self.lock_timeout_s = lock_timeout_s
        self.migrate()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.01
        while True:
            try:
                con = duckdb.connect(self.path)
                break
            except duckdb.IOException as exc:
                # Another process holds the file for a moment; anything else is real.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise StoreError(f"database {self.path}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        try:
            yield con
        finally:
            con.close()

    # --- schema -------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied_now = []
        with self.connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS migrations "
                        "(id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)")
            done = {row[0] for row in con.execute("SELECT name FROM migrations").fetchall()}
            for i, (name, sql) in enumerate(MIGRATIONS, start=1):
                if name in done:
                    continue
                with _transaction(con):
                    con.execute(sql)
                    con.execute("INSERT INTO migrations VALUES (?, ?, ?)", [i, name, utcnow()])
                applied_now.append(name)
        return applied_now

    # --- writes -------------------------------------------------------------------
    def create_run(self, scenario_id: str, config: dict, host: dict, planned_generations: int,
                   run_id: str | None = None) -> str:
        run_id = run_id or new_run_id()
        with self.connect() as con:
            con.execute(
                "INSERT INTO runs (run_id, scenario_id, status, started_at, planned_generations, "
                "config_json, host_json) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                [run_id, scenario_id, utcnow(), planned_generations,
                 json.dumps(config, ensure_ascii=False), json.dumps(host, ensure_ascii=False)],
            )
        return run_id

    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows of one table in one transaction (all rows share the first row's columns)."""
        with self.connect() as con, _transaction(con):
            _insert(con, table, rows)

    def update_run_config(self, run_id: str, patch: dict) -> None:
        """Merge keys into a run's config_json (e.g. the schedule the runner chose)."""
        with self.connect() as con, _transaction(con):
            row = con.execute("SELECT config_json FROM runs WHERE run_id = ?", [run_id]).fetchone()
            config = json.loads(row[0]) if row and row[0] else {}
            config.update(patch)
            con.execute("UPDATE runs SET config_json = ? WHERE run_id = ?",
                        [json.dumps(config, ensure_ascii=False), run_id])

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self.connect() as con:
            con.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
                        [status, utcnow(), error, run_id])

    def add_generation(self, row: dict[str, Any], checks: list[dict[str, Any]]) -> None:
        """One generation and its check results, in one transaction."""
        with self.connect() as con, _transaction(con):
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
            "list(DISTINCT g.model_spec ORDER BY g.model_spec) AS models "
            "FROM runs r LEFT JOIN generations g USING (run_id) "
            "GROUP BY ALL ORDER BY r.started_at DESC LIMIT ?", [limit])

    def generations(self, run_id: str):
        return self.query("SELECT * FROM generations WHERE run_id = ? "
                          "ORDER BY started_at, model_spec, case_id, repeat, turn", [run_id])

    def check_results(self, run_id: str):
        return self.query("SELECT * FROM check_results WHERE run_id = ? "
                          "ORDER BY model_spec, case_id, repeat, turn", [run_id])
