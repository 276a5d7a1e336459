"""Merge another ModelPick results file (a colleague's, a rented GPU box's) into this one.

Idempotent by id: a run (with its generations, check results, star ratings and judge pairs), a
load sweep (with its levels and requests) or a saved decision already here is left as it is;
blind A/B votes are added unless the same vote is here already. The source is opened read-only
and never changed; it must be a ModelPick file of exactly this schema version. Prices saved on
the Recommend page are the user's own and are not merged.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from .store import MIGRATIONS, Store, StoreError, connect, release

BY_RUN = ("generations", "check_results", "ratings", "judge_pairs")
BY_SWEEP = ("sweep_levels", "sweep_requests")


def source_schema(path: str | Path) -> list[str]:
    """The migrations a file has, read without changing it; StoreError if it is not ours."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such file")
    release(path)  # this process may still hold it open for writing
    try:
        con = connect(path, read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"{path}: not a DuckDB file ModelPick can read ({str(exc).splitlines()[0]})") from None
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        if "migrations" not in tables:
            raise StoreError(f"{path} is not a ModelPick results file (no migrations table)")
        return [r[0] for r in con.execute("SELECT name FROM migrations ORDER BY id").fetchall()]
    finally:
        con.close()


def merge(target: Store, source: str | Path) -> dict[str, int]:
    """Rows added per table (zero everywhere when merged before)."""
    source = Path(source)
    if source.resolve() == Path(target.path).resolve():
        raise StoreError(f"{source}: that is the database being merged into")
    theirs, ours = source_schema(source), [name for name, _ in MIGRATIONS]
    if theirs != ours:
        newer = sorted(set(theirs) - set(ours))
        older = [m for m in ours if m not in theirs]
        why = (f"it was written by a newer ModelPick (migrations {', '.join(newer)})" if newer else
               f"it was written by an older ModelPick (it lacks {', '.join(older)}); open it once with this "
               f"version (python -m engine list --db {source}) to upgrade it, then merge")
        raise StoreError(f"{source}: not merged: {why}")
    added: dict[str, int] = {}
    with target.connect() as con:
        con.execute(f"ATTACH '{str(source).replace(chr(39), chr(39) * 2)}' AS other (READ_ONLY)")
        try:
            con.execute("BEGIN TRANSACTION")
            new_runs = [r[0] for r in con.execute(
                "SELECT run_id FROM other.runs WHERE run_id NOT IN (SELECT run_id FROM main.runs)").fetchall()]
            new_sweeps = [r[0] for r in con.execute(
                "SELECT sweep_id FROM other.sweeps WHERE sweep_id NOT IN (SELECT sweep_id FROM main.sweeps)"
            ).fetchall()]
            added["runs"] = _copy(con, "runs", "run_id = ANY(?)", [new_runs])
            for table in BY_RUN:
                added[table] = _copy(con, table, "run_id = ANY(?)", [new_runs])
            added["sweeps"] = _copy(con, "sweeps", "sweep_id = ANY(?)", [new_sweeps])
            for table in BY_SWEEP:
                added[table] = _copy(con, table, "sweep_id = ANY(?)", [new_sweeps])
            added["decisions"] = _copy(con, "decisions",
                                       "decision_id NOT IN (SELECT decision_id FROM main.decisions)", [])
            same = " AND ".join(f"m.{c} IS NOT DISTINCT FROM o.{c}" for c in _columns(con, "ab_votes").split(", "))
            added["ab_votes"] = _copy(con, "ab_votes", f"NOT EXISTS (SELECT 1 FROM main.ab_votes m WHERE {same})", [])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.execute("DETACH other")
    return added


def _columns(con, table: str) -> str:
    names = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
    return ", ".join(f'"{n}"' for n in names)


def _copy(con, table: str, where: str, params: list) -> int:
    cols = _columns(con, table)
    before = con.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0]
    con.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM other.{table} o WHERE {where}", params)
    return con.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0] - before
