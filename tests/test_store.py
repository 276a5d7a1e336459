import subprocess
import sys
import time
from pathlib import Path

import duckdb

from engine.store import MIGRATIONS, Store

GENERATION_COLUMNS = [
    "run_id", "model_spec", "case_id", "category", "repeat", "turn", "ok", "error",
    "output_text", "finish_reason", "load_ms", "ttft_ms", "e2e_ms", "prompt_tokens",
    "output_tokens", "output_chars", "prompt_tok_per_s", "decode_tok_per_s",
    "stream_decode_tok_per_s", "chars_per_s", "engine_prompt_ms", "engine_decode_ms",
    "tokens_source", "rss_mb", "vram_mb", "started_at",
    # 002_reasoning_and_server_timings
    "first_token_ms", "reasoning_text", "chunk_gaps_ms", "engine_load_ms", "engine_total_ms",
    # 004_scoring_and_ratings
    "exceeds_context",
    # 008_context_per_generation
    "context_tokens",
    # 009_telemetry
    "peak_rss_mb", "peak_ram_used_mb", "mean_cpu_pct", "peak_vram_mb", "mean_gpu_util_pct", "mean_gpu_power_w",
    "telemetry_samples",
    # 010_prompt_cache
    "cache_mode", "cache_marker", "cached_prompt_tokens",
    # 012_server_counters
    "request_id",
    # 014_token_count_doubts
    "tokens_note",
    # 015_tool_calls
    "tool_calls_json", "tool_steps_json", "tool_steps", "tool_ms", "tools_note",
    # 016_server_failures
    "failed_by", "retries", "retry_wait_ms",
]


def test_schema_has_exact_columns(store):
    assert store.columns("runs") == [
        "run_id", "scenario_id", "status", "started_at", "finished_at", "planned_generations",
        "error", "config_json", "host_json",
        "owner_pid", "owner_host", "heartbeat_at"]  # 006_run_owner
    assert store.columns("generations") == GENERATION_COLUMNS
    assert store.columns("check_results") == [
        "run_id", "model_spec", "case_id", "repeat", "turn", "check_type", "passed", "score",
        "weight", "detail", "raw_verdict", "critical"]
    assert store.columns("ratings") == [
        "run_id", "model_spec", "case_id", "repeat", "turn", "dimension", "stars", "rater", "created_at"]
    assert store.columns("ab_votes") == [
        "scenario_id", "case_id", "turn", "left_run_id", "left_model", "right_run_id", "right_model",
        "vote", "rater", "created_at"]
    assert store.columns("judge_pairs") == [
        "run_id", "case_id", "turn", "judge_spec", "model_1", "model_2", "score_1", "winner_12",
        "winner_21", "raw_12", "raw_21", "created_at"]
    assert store.columns("sweeps") == [
        "sweep_id", "model_spec", "scenario_id", "status", "started_at", "finished_at", "config_json", "host_json",
        "error",  # 007_sweep_error
        "max_rate_per_s", "max_concurrency"]  # 013_find_max
    assert store.columns("sweep_levels") == [
        "sweep_id", "concurrency", "requests", "ok_requests", "errors", "wall_s", "output_tok_per_s",
        "req_per_s", "ttft_ms_p50", "ttft_ms_p95", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p95", "itl_ms_p99",
        "e2e_ms_p50", "e2e_ms_p95", "goodput_req_per_s", "slo_json",
        "rate_per_s", "saturated", "arrival_seed",  # 011_sweep_rates
        "server_json",  # 012_server_counters
        "meets_slo", "search_step", "is_max"]  # 013_find_max
    assert store.columns("sweep_requests") == [
        "sweep_id", "concurrency", "request_index", "ok", "error", "ttft_ms", "e2e_ms", "output_tokens",
        "tokens_source", "chunk_gaps_ms", "started_at", "rate_per_s", "request_id"]  # 011, 012
    assert store.columns("migrations") == ["id", "name", "applied_at"]
    # 005_decisions_and_prices
    assert store.columns("gpu_prices") == [
        "gpu", "provider", "tier", "price_per_hour", "currency", "source", "memory_gb", "bandwidth_gb_per_s",
        "updated_at"]
    assert store.columns("decisions") == [
        "decision_id", "name", "scenario_id", "created_at", "weights_json", "constraints_json", "cost_json",
        "verdict", "result_json"]
    tables = store.query("SELECT table_name FROM information_schema.tables ORDER BY 1").table_name.tolist()
    assert tables == sorted(["migrations", "runs", "generations", "check_results", "sweeps", "sweep_levels",
                             "sweep_requests", "judge_pairs", "ratings", "ab_votes", "gpu_prices", "decisions"])


def test_migrations_are_recorded_and_applied_once(tmp_path):
    path = tmp_path / "m.duckdb"
    s1 = Store(path)
    names = s1.query("SELECT name FROM migrations ORDER BY id")["name"].tolist()
    assert names == [name for name, _ in MIGRATIONS]
    assert Store(path).migrate() == []  # reopening applies nothing


def test_run_lifecycle_and_status_constraint(store):
    run_id = store.create_run("standard", {"models": ["fake/echo"]}, {"cpu": "x"}, 3)
    assert store.get_run(run_id)["status"] == "running"
    store.finish_run(run_id, "done")
    run = store.get_run(run_id)
    assert run["status"] == "done" and run["finished_at"] is not None
    with duckdb.connect(store.path) as con:
        try:
            con.execute("UPDATE runs SET status = 'bogus'")
            raised = False
        except duckdb.ConstraintException:
            raised = True
    assert raised


def test_waits_for_another_process_holding_the_file(store):
    from tests.conftest import hold_file

    # A second process holds the database for a moment (as a worker does mid-write).
    holder = hold_file(store.path, 1.0)
    t0 = time.monotonic()
    run_id = store.create_run("standard", {}, {}, 1)
    waited = time.monotonic() - t0
    holder.wait()
    assert store.get_run(run_id) is not None
    assert waited > 0.2  # it did have to wait for the lock, and then succeeded


def test_a_burst_of_queries_opens_the_file_once_and_it_is_closed_once_idle(store, monkeypatch):
    import threading

    import pytest

    from engine import store as store_module
    from engine.store import LINGER_S, StoreError, release

    opened = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or real(*a, **k))
    release(store.path)
    run_id = store.create_run("standard", {}, {}, 1)
    for _ in range(20):
        assert store.get_run(run_id)["status"] == "running"
    with pytest.raises(StoreError, match=store.path):
        store.query("SELECT * FROM no_such_table")
    assert store.list_runs().run_id.tolist() == [run_id]  # the connection survives the error
    other = threading.Thread(target=lambda: store.get_run(run_id))  # another thread: a cursor of its own
    other.start()
    other.join()
    assert len(opened) == 1
    deadline = time.monotonic() + 5
    while store_module._OPEN and time.monotonic() < deadline:
        time.sleep(LINGER_S / 2)
    assert not store_module._OPEN  # closed once idle for LINGER_S: another process may take it
    # another process opens it at once (a bare DuckDB connection, which does not wait for a lock)
    out = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                          store.path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with store.held():
        store.get_run(run_id)
        store.list_runs()
    assert len(opened) == 2  # opened again after it was closed, once for the block


def test_threads_writing_at_once_all_succeed_and_leave_the_file_checkpointed(store):
    """A run writes its generations while its heartbeat thread writes the run's row: each operation
    ends with a checkpoint, which DuckDB refuses while another thread's write transaction is open. No
    write may fail for that (what it wrote is committed), and once they are all done the log is in the
    file. (Two threads rewriting the same run's configuration at once conflict in DuckDB, "Conflict on
    update": the recorder's notes take a lock.)"""
    import threading
    from datetime import datetime

    run_id = store.create_run("standard", {}, {}, 1)
    errors: list[str] = []

    def write(n: int) -> None:
        for i in range(150):
            try:
                if n == 0:
                    store.heartbeat(run_id)
                else:
                    store.add_generation({"run_id": run_id, "model_spec": f"fake/m{n}", "case_id": "c", "repeat": i,
                                          "turn": 0, "ok": True, "started_at": datetime(2026, 1, 1)}, [])
            except Exception as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [], f"{len(errors)} of 450 writes failed, first: {errors[0]}"
    assert len(store.generations(run_id)) == 300
    assert not Path(store.path + ".wal").exists()  # the last writer to end checkpointed


def test_a_process_polling_the_file_leaves_it_to_another_one(store):
    """The dashboard polls a run's progress while a worker process writes it: a file kept open between
    operations must still be free between the reader's polls, or the writer starves (it waits for its
    lock timeout). Polled every 0.05 s here, another process gets the file within seconds."""
    import threading

    from tests.conftest import hold_file

    run_id = store.create_run("standard", {}, {}, 1)
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            store.get_run(run_id)
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        t0 = time.monotonic()
        holder = hold_file(store.path, 0)  # retries a bare connection every 20 ms for up to 30 s
        waited = time.monotonic() - t0
        holder.wait(timeout=30)
    finally:
        stop.set()
        poller.join()
    assert holder.returncode == 0 and waited < 10, waited
