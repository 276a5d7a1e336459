"""Runs one model-written SQL query in a process of its own, started by path so it imports
only DuckDB: a read-only connection with file and network access off, one thread, and an
address-space limit set by the parent, so a query that builds a huge string ends this process
rather than growing the app's. Reads {"db", "sql", "max_rows"} as JSON on stdin; prints
{"rows": [...]} or {"error": "..."}."""
from __future__ import annotations

import json
import sys


def normal(value):
    """A cell as compared: numbers rounded to 6 places, dates as ISO text."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, (float, Decimal)):
        return round(float(value), 6)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def main() -> None:
    import duckdb

    job = json.load(sys.stdin)
    try:
        con = duckdb.connect(job["db"], read_only=True, config={
            "enable_external_access": False, "autoinstall_known_extensions": False,
            "autoload_known_extensions": False, "threads": "1", "memory_limit": job.get("memory", "256MB")})
        rows = con.execute(job["sql"]).fetchmany(job["max_rows"] + 1)
    except (duckdb.Error, MemoryError) as exc:
        print(json.dumps({"error": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}))
        return
    print(json.dumps({"rows": [[normal(v) for v in row] for row in rows]}))


if __name__ == "__main__":
    main()
