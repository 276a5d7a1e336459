"""The developer assistant's tools: a SQL tool over the sample shop database (DuckDB, read-only)
and a small repository to read files from.

Each function gets the case's state and the call's arguments. Every query run and every file read
is noted in the state, so a check can see that the model looked before it answered.
"""
import os

import duckdb

SHOP_SQL = """
-- Sample shop database for the developer-assistant scenario.
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR, city VARCHAR);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                     amount DECIMAL(10, 2), order_date DATE);
INSERT INTO customers VALUES
  (1, 'Alice', 'Shanghai'), (2, 'Bob', 'Beijing'), (3, 'Chen', 'Shanghai'),
  (4, 'Dana', 'Shenzhen'), (5, 'Eve', 'Beijing'), (6, 'Fang', 'Hangzhou');
INSERT INTO orders VALUES
  (1, 1, 120.00, '2026-01-05'), (2, 1, 80.50, '2026-02-11'), (3, 2, 300.00, '2026-02-14'),
  (4, 3, 45.00, '2026-03-01'), (5, 3, 410.00, '2026-03-08'), (6, 4, 99.90, '2026-03-09'),
  (7, 5, 250.00, '2026-04-02'), (8, 5, 60.00, '2026-04-20'), (9, 1, 15.00, '2026-05-01'),
  (10, 2, 220.00, '2026-05-03'), (11, 3, 30.00, '2026-05-07'), (12, 6, 500.00, '2026-06-10');
"""
_DB = "/tmp/shop.duckdb" if os.path.isdir("/tmp") else "shop.duckdb"
_con = None


def _db():
    global _con
    if _con is None:
        if not os.path.exists(_DB):
            build = duckdb.connect(_DB, config={"threads": "1"})
            build.execute(SHOP_SQL)
            build.close()
        _con = duckdb.connect(_DB, read_only=True, config={
            "enable_external_access": False, "autoinstall_known_extensions": False,
            "autoload_known_extensions": False, "threads": "1", "memory_limit": "128MB"})
    return _con


def _plain(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return round(value, 6)
    try:
        return round(float(value), 6)  # DECIMAL
    except (TypeError, ValueError):
        return str(value)  # dates


def run_sql(state, query):
    """Run one read-only SQL query on the shop database; at most 50 rows come back."""
    state.setdefault("queries", []).append(query)
    con = _db()
    try:
        cur = con.execute(query)
        rows = cur.fetchmany(50)
    except duckdb.Error as exc:
        return {"error": str(exc).splitlines()[0][:300]}
    columns = [d[0] for d in cur.description or []]
    return {"columns": columns, "rows": [[_plain(v) for v in row] for row in rows]}


def list_files(state):
    """The files of the repository."""
    state["listed"] = True
    return sorted(state["files"])


def read_file(state, path):
    """The text of one file of the repository."""
    path = str(path).lstrip("./")
    state.setdefault("files_read", []).append(path)
    if path not in state["files"]:
        return {"error": f"no file {path} (files: {', '.join(sorted(state['files']))})"}
    return state["files"][path]
