"""The segment ledger: every landing segment is processed once, and for every segment
rows_read = rows_written + rows_quarantined. Of the quarantined rows, ``rows_no_consent`` were
dropped because the consent registry denied their stream (focuslake.privacy.consent): counted,
with their reason, but nothing of them is kept -- no evidence file, no landing copy.

SQLite (stdlib, transactional, safe across processes) holds it; after each ingest a Parquet
snapshot is written into the lake (`lake/_ledger/segments.parquet`) so dbt and the quality
checks can reconcile against it with plain DuckDB.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    path              TEXT PRIMARY KEY,   -- relative to the landing root
    stream            TEXT,
    user_id           TEXT,
    device_id         TEXT,
    segment_id        TEXT,
    size_bytes        INTEGER NOT NULL,
    mtime_ns          INTEGER NOT NULL,
    checksum          TEXT NOT NULL,      -- sha256 of the file bytes
    status            TEXT NOT NULL CHECK (status IN ('ingested', 'quarantined', 'duplicate')),
    rows_read         INTEGER NOT NULL,
    rows_written      INTEGER NOT NULL,
    rows_quarantined  INTEGER NOT NULL,
    reason            TEXT,               -- why rows or the whole file were quarantined
    note              TEXT,               -- e.g. key codes scrubbed without consent
    run_id            TEXT NOT NULL,
    ingested_at_us    INTEGER NOT NULL,
    rows_no_consent   INTEGER NOT NULL DEFAULT 0,  -- of rows_quarantined: dropped for lack of consent, nothing kept
    CHECK (rows_read = rows_written + rows_quarantined),
    CHECK (rows_no_consent BETWEEN 0 AND rows_quarantined)
);
CREATE INDEX IF NOT EXISTS segments_checksum ON segments (checksum);
"""


@dataclass
class LedgerEntry:
    path: str
    stream: str | None
    user_id: str | None
    device_id: str | None
    segment_id: str | None
    size_bytes: int
    mtime_ns: int
    checksum: str
    status: str
    rows_read: int
    rows_written: int
    rows_quarantined: int
    reason: str | None
    note: str | None
    run_id: str
    ingested_at_us: int
    rows_no_consent: int = 0


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con = sqlite3.connect(path, timeout=60)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.executescript(SCHEMA)
        cols = {r[1] for r in self.con.execute("PRAGMA table_info(segments)")}
        if "rows_no_consent" not in cols:  # a ledger from before consent enforcement
            self.con.execute("ALTER TABLE segments ADD COLUMN rows_no_consent INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.con.close()

    def known(self) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime_ns) of every segment already recorded."""
        return {p: (s, m) for p, s, m in self.con.execute(
            "SELECT path, size_bytes, mtime_ns FROM segments")}

    def checksum_status(self, checksums: list[str]) -> dict[str, str]:
        """checksum -> status for checksums already processed (ingested or quarantined)."""
        out: dict[str, str] = {}
        for i in range(0, len(checksums), 500):
            chunk = checksums[i:i + 500]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT checksum, status FROM segments WHERE status != 'duplicate' AND checksum IN ({marks})"
            out.update(dict(self.con.execute(q, chunk)))
        return out

    def record(self, entries: list[LedgerEntry]) -> None:
        if not entries:
            return
        cols = list(asdict(entries[0]))
        with self.con:  # one transaction: the whole batch or nothing
            self.con.executemany(
                f"INSERT OR REPLACE INTO segments ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                [tuple(asdict(e).values()) for e in entries])

    def export_parquet(self, target: Path) -> None:
        import pyarrow as pa

        cur = self.con.execute("SELECT * FROM segments ORDER BY path")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)},
                         schema=_export_schema())
        write_parquet_atomic(table, target)


def _export_schema():
    import pyarrow as pa
    s, i = pa.string(), pa.int64()
    return pa.schema([("path", s), ("stream", s), ("user_id", s), ("device_id", s), ("segment_id", s),
                      ("size_bytes", i), ("mtime_ns", i), ("checksum", s), ("status", s),
                      ("rows_read", i), ("rows_written", i), ("rows_quarantined", i), ("reason", s),
                      ("note", s), ("run_id", s), ("ingested_at_us", i), ("rows_no_consent", i)])


def write_parquet_atomic(table, target: Path, **kw) -> None:
    """Write a Parquet file to a temp name beside the target, fsync, then rename over it."""
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    kw.setdefault("compression", "zstd")
    pq.write_table(table, tmp, **kw)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
