"""One read-only query against a DuckDB file, for tests: opened, read, closed (a test never
holds a connection another process's writer would wait on)."""
from __future__ import annotations

from pathlib import Path

import duckdb


def q(db: Path | str, sql: str, params: list | tuple | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params or [])).fetchall()
    finally:
        con.close()
