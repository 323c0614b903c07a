"""The receiver's own state, in one SQLite file (`<data>/receiver/receiver.sqlite`):

* `tokens`   -- per-device bearer tokens, stored as SHA-256 hashes only (the token itself is
                printed once by `python -m focuslake.receiver token create` and never stored);
* `segments` -- every landed segment: landing path, SHA-256, size (idempotency and 409s);
* `batches`  -- every `POST /v1/events` batch by the SHA-256 of its decoded body, with its
                counts, the segment holding its rows of each date, and the answer it got (a
                retried batch gets the same answer and lands nothing twice); `landing` while
                its segments are being written (focuslake/receiver/commit.py).
                received = accepted + rejected, per batch.

SQLite in WAL mode is safe across processes (the CLI creates tokens while the server runs)
and threads (one connection per thread).
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from focuslake.schemas import ID_RE

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_hash     TEXT PRIMARY KEY,          -- sha256(token), hex
    token_id       TEXT NOT NULL UNIQUE,      -- first 12 hex chars of the hash: for list/revoke
    user_id        TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    created_at_us  INTEGER NOT NULL,
    revoked_at_us  INTEGER,
    note           TEXT
);
CREATE TABLE IF NOT EXISTS segments (
    landing_path   TEXT PRIMARY KEY,          -- <stream>/<user>/<device>/<date>/<segment_id>
    user_id        TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    stream         TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    received_at_us INTEGER NOT NULL,
    origin         TEXT NOT NULL              -- 'upload' (PUT) or 'events' (POST /v1/events)
);
CREATE TABLE IF NOT EXISTS batches (
    user_id         TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    batch_sha256    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('landing', 'done')),
    received_at_us  INTEGER NOT NULL,
    events_received INTEGER NOT NULL,
    events_accepted INTEGER NOT NULL,
    events_rejected INTEGER NOT NULL,
    segments_json   TEXT NOT NULL,            -- {date: segment holding this batch's rows of that date}
    response_json   TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, batch_sha256),
    CHECK (events_received = events_accepted + events_rejected)
);
"""

TOKEN_PREFIX = "flk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    token_id: str

    @property
    def key(self) -> str:
        return f"{self.user_id}/{self.device_id}"


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._con() as con:
            con.executescript(SCHEMA)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints,
            # never corrupt; the landed files themselves are fsynced before they are recorded
            self._local.con = con
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- tokens -----------------------------------------------------------------------------
    def create_token(self, user_id: str, device_id: str, note: str | None = None) -> tuple[str, str]:
        """A new random token for user/device. Returns (token, token_id); only the hash is kept."""
        for kind, v in (("user_id", user_id), ("device_id", device_id)):
            if not ID_RE.match(v or ""):
                raise ValueError(f"{kind} {v!r} must match {ID_RE.pattern} (letters, digits, _ . -; "
                                 "at most 20 bytes)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        h = hash_token(token)
        with self._con() as con:
            con.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL, ?)",
                        (h, h[:12], user_id, device_id, time.time_ns() // 1000, note))
        return token, h[:12]

    def authenticate(self, token: str) -> Device | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        row = self._con().execute("SELECT user_id, device_id, token_id FROM tokens "
                                  "WHERE token_hash = ? AND revoked_at_us IS NULL",
                                  (hash_token(token),)).fetchone()
        return Device(*row) if row else None

    def revoke_token(self, token_id: str) -> int:
        with self._con() as con:
            return con.execute("UPDATE tokens SET revoked_at_us = ? WHERE token_id = ? "
                               "AND revoked_at_us IS NULL", (time.time_ns() // 1000, token_id)).rowcount

    def list_tokens(self) -> list[dict]:
        cur = self._con().execute("SELECT token_id, user_id, device_id, created_at_us, revoked_at_us, "
                                  "note FROM tokens ORDER BY created_at_us")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # -- segments ---------------------------------------------------------------------------
    def segment(self, landing_path: str) -> tuple[str, int] | None:
        return self._con().execute("SELECT sha256, size_bytes FROM segments WHERE landing_path = ?",
                                   (landing_path,)).fetchone()

    def record_segment(self, landing_path: str, device: Device, stream: str, sha256: str, size: int,
                       origin: str) -> None:
        with self._con() as con:
            con.execute("INSERT OR IGNORE INTO segments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (landing_path, device.user_id, device.device_id, stream, sha256, size,
                         time.time_ns() // 1000, origin))

    # -- event batches ----------------------------------------------------------------------
    @contextmanager
    def _tx(self):
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def batch_record(self, device: Device, batch_sha256: str) -> tuple[str, dict, dict] | None:
        """(state, answer, {date: segment}) of a batch seen before, else None."""
        row = self._con().execute("SELECT state, response_json, segments_json FROM batches WHERE user_id = ? "
                                  "AND device_id = ? AND batch_sha256 = ?",
                                  (device.user_id, device.device_id, batch_sha256)).fetchone()
        return (row[0], json.loads(row[1]), json.loads(row[2])) if row else None

    def record_batches(self, batches: list[tuple[Device, str, dict, dict]], state: str) -> None:
        now = time.time_ns() // 1000
        with self._tx() as con:
            con.executemany("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(d.user_id, d.device_id, sha, state, now, r["received"], r["accepted"],
                              r["rejected"], json.dumps(days), json.dumps(r)) for d, sha, r, days in batches])

    def complete_batches(self, batches: list[tuple[Device, str, dict]],
                         segments: list[tuple[str, Device, str, str, int]]) -> None:
        now = time.time_ns() // 1000
        with self._tx() as con:
            con.executemany("UPDATE batches SET state = 'done', response_json = ? WHERE user_id = ? "
                            "AND device_id = ? AND batch_sha256 = ?",
                            [(json.dumps(r), d.user_id, d.device_id, sha) for d, sha, r in batches])
            con.executemany("INSERT OR IGNORE INTO segments VALUES (?, ?, ?, ?, ?, ?, ?, 'events')",
                            [(rel, d.user_id, d.device_id, stream, sha, size, now)
                             for rel, d, stream, sha, size in segments])

    def totals(self) -> dict:
        con = self._con()
        b = con.execute("SELECT count(*), coalesce(sum(events_received), 0), "
                        "coalesce(sum(events_accepted), 0), coalesce(sum(events_rejected), 0) "
                        "FROM batches WHERE state = 'done'").fetchone()
        s = con.execute("SELECT count(*), coalesce(sum(size_bytes), 0) FROM segments "
                        "WHERE origin = 'upload'").fetchone()
        return {"batches": b[0], "events_received": b[1], "events_accepted": b[2],
                "events_rejected": b[3], "segments_uploaded": s[0], "bytes_uploaded": s[1]}
