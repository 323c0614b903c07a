"""The consent registry: per user and purpose, every grant and withdrawal with the time it takes
effect, in ``<data>/privacy/consent.sqlite`` (SQLite: transactional across the CLI, the
collectors, the ingest and the Airflow tasks).

A purpose is a stream (collected unless the user withdrew it: seed 000's "public, no consent
required") or a sensitive purpose (`keystroke_dynamics`, `file_metadata`: never collected until
granted). The state at time t is the last grant/withdrawal that took effect at or before t, else
the purpose's default. A forgotten user (:mod:`focuslake.privacy.forget`) leaves only a keyed
hash in ``forgotten``: every row of theirs timed before the forget is refused from then on, so
an offline laptop's old queue cannot bring them back.

Both sides enforce it: collectors that share the data root stop writing a withdrawn stream
(and pass key codes to the native capture only with a grant); the ingest drops rows timed
where the registry denies their purpose, whatever the collector did, and scrubs key codes not
covered by a `keystroke_dynamics` grant (:func:`focuslake.ingest.decode_binary`).
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Self

import numpy as np

from focuslake.config import Paths
from focuslake.privacy.keys import user_hash
from focuslake.privacy.policy import PURPOSES, opt_in
from focuslake.schemas import ID_RE

NEG_INF = -(2**63)
POS_INF = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS consent (
    id            INTEGER PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    granted       INTEGER NOT NULL CHECK (granted IN (0, 1)),
    effective_us  INTEGER NOT NULL,   -- UTC microseconds from which it applies
    recorded_us   INTEGER NOT NULL,
    actor         TEXT,
    note          TEXT
);
CREATE INDEX IF NOT EXISTS consent_user ON consent (user_id, purpose, effective_us);
CREATE TABLE IF NOT EXISTS forgotten (
    user_hash       TEXT PRIMARY KEY, -- keyed hash (focuslake.privacy.keys.user_hash)
    forgotten_at_us INTEGER NOT NULL
);
"""


class ConsentError(ValueError):
    pass


def registry_path(paths: Paths):
    return paths.root / "privacy" / "consent.sqlite"


@dataclass(frozen=True)
class Change:
    user_id: str
    purpose: str
    granted: bool
    effective_us: int
    recorded_us: int
    actor: str | None
    note: str | None


def _check(user_id: str, purpose: str) -> None:
    if not ID_RE.match(user_id or ""):
        raise ConsentError(f"bad user id {user_id!r}: letters, digits, '_', '.', '-'; at most 20")
    if purpose not in PURPOSES:
        raise ConsentError(f"unknown purpose {purpose!r} (known: {', '.join(PURPOSES)})")


class Registry:
    """Open with ``Registry(paths)``; reads work without a registry file (every purpose at its
    default) and never create one."""

    def __init__(self, paths: Paths | None):
        self.paths = paths
        self.path = registry_path(paths) if paths is not None else None  # None: defaults only
        self._con: sqlite3.Connection | None = None
        self._cache: dict[tuple[str, str], list[tuple[int, int]]] = {}

    # -- storage ------------------------------------------------------------------------
    def _db(self, create: bool = False) -> sqlite3.Connection | None:
        if self._con is None:
            if self.path is None:
                if create:
                    raise ConsentError("no data root: this registry only knows the defaults")
                return None
            if not self.path.exists() and not create:
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.executescript(_SCHEMA)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- changes ------------------------------------------------------------------------
    def _change(self, user_id: str, purpose: str, granted: bool, at_us: int | None, actor: str | None,
                note: str | None) -> Change:
        _check(user_id, purpose)
        now = time.time_ns() // 1000
        ch = Change(user_id, purpose, granted, now if at_us is None else int(at_us), now, actor, note)
        self._db(create=True).execute(
            "INSERT INTO consent (user_id, purpose, granted, effective_us, recorded_us, actor, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ch.user_id, ch.purpose, int(ch.granted), ch.effective_us, ch.recorded_us, actor, note))
        self._cache.clear()
        return ch

    def grant(self, user_id: str, purpose: str, *, at_us: int | None = None, actor: str | None = None,
              note: str | None = None) -> Change:
        return self._change(user_id, purpose, True, at_us, actor, note)

    def withdraw(self, user_id: str, purpose: str, *, at_us: int | None = None, actor: str | None = None,
                 note: str | None = None) -> Change:
        return self._change(user_id, purpose, False, at_us, actor, note)

    def history(self, user_id: str) -> list[Change]:
        con = self._db()
        if con is None:
            return []
        rows = con.execute("SELECT user_id, purpose, granted, effective_us, recorded_us, actor, note FROM consent "
                           "WHERE user_id = ? ORDER BY effective_us, id", (user_id,)).fetchall()
        return [Change(u, p, bool(g), e, r, a, n) for u, p, g, e, r, a, n in rows]

    def users(self) -> list[str]:
        con = self._db()
        return [] if con is None else [u for (u,) in con.execute("SELECT DISTINCT user_id FROM consent ORDER BY 1")]

    # -- forgetting ---------------------------------------------------------------------
    def forget(self, user_id: str, at_us: int) -> int:
        """Drop the user's consent history and keep only a keyed-hash tombstone dated ``at_us``.
        Returns the number of consent rows removed."""
        con = self._db(create=True)
        with con:
            n = con.execute("DELETE FROM consent WHERE user_id = ?", (user_id,)).rowcount
            con.execute("INSERT INTO forgotten (user_hash, forgotten_at_us) VALUES (?, ?) "
                        "ON CONFLICT (user_hash) DO UPDATE SET forgotten_at_us = max(forgotten_at_us, excluded.forgotten_at_us)",
                        (user_hash(self.paths, user_id), int(at_us)))
        self._cache.clear()
        return n

    def forgotten_until(self, user_id: str) -> int | None:
        con = self._db()
        if con is None:
            return None
        row = con.execute("SELECT forgotten_at_us FROM forgotten WHERE user_hash = ?",
                          (user_hash(self.paths, user_id),)).fetchone()
        return None if row is None else int(row[0])

    # -- the state over time ------------------------------------------------------------
    def allowed(self, user_id: str, purpose: str) -> list[tuple[int, int]]:
        """Half-open UTC-microsecond intervals [start, end) in which ``purpose`` is consented."""
        key = (user_id, purpose)
        if key in self._cache:
            return self._cache[key]
        _check(user_id, purpose)
        state, since, out = not opt_in(purpose), NEG_INF, []
        for ch in (c for c in self.history(user_id) if c.purpose == purpose):
            if ch.granted != state:
                if state and ch.effective_us > since:
                    out.append((since, ch.effective_us))
                state, since = ch.granted, ch.effective_us
        if state:
            out.append((since, POS_INF))
        floor = self.forgotten_until(user_id)
        if floor is not None:
            out = [(max(a, floor), b) for a, b in out if b > floor]
        self._cache[key] = out
        return out

    def denied(self, user_id: str, purpose: str) -> list[tuple[int, int]]:
        """The complement of :meth:`allowed`: where rows of ``purpose`` must not be kept."""
        out, cur = [], NEG_INF
        for a, b in self.allowed(user_id, purpose):
            if a > cur:
                out.append((cur, a))
            cur = b
        if cur < POS_INF:
            out.append((cur, POS_INF))
        return out

    def allowed_at(self, user_id: str, purpose: str, ts_us: int) -> bool:
        return any(a <= ts_us < b for a, b in self.allowed(user_id, purpose))

    def allowed_mask(self, user_id: str, purpose: str, ts_us: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`allowed_at` over an int64 array of timestamps."""
        ivs = self.allowed(user_id, purpose)
        if ivs == [(NEG_INF, POS_INF)]:
            return np.ones(len(ts_us), bool)
        out = np.zeros(len(ts_us), bool)
        for a, b in ivs:
            out |= (ts_us >= a) & (ts_us < b)
        return out


def state(paths: Paths, user_id: str) -> dict[str, dict]:
    """Every purpose's current state for ``user_id`` (for the CLI and the collector status)."""
    now = time.time_ns() // 1000
    with Registry(paths) as reg:
        hist = reg.history(user_id)
        out = {}
        for p in PURPOSES:
            last = [c for c in hist if c.purpose == p and c.effective_us <= now]
            out[p] = {"allowed": reg.allowed_at(user_id, p, now), "default": "opt-in" if opt_in(p) else "opt-out",
                      "since_us": last[-1].effective_us if last else None}
        return out
