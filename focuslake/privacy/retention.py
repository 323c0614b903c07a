"""Retention by data class (:mod:`focuslake.privacy.policy`), across every copy: the landing
zone, the quarantine, the lake, the ledger, the receiver's state, the working warehouse, the
published copy, quality records and generated reports/exports. Run daily by the
``focus_maintenance`` DAG (task ``retention``, pool ``warehouse_writer``) or by hand::

    python -m focuslake.privacy retention [--now 2026-12-01T00:00:00Z] [--dry-run]

The unit is the UTC day: day D of class K goes once ``D < (now - days[K]).date()``. A row's day
is its timestamp's day (for the lake: the partition; for landing/quarantine: the segment's
date folder; for warehouse tables: their model's ``retention_last_day``; for generated files
without a day in their path: the file's modification time). Key identity in the `events`
stream is sensitive: where a keystroke-dynamics grant let key codes in, they are zeroed in the
lake and the warehouse after the sensitive class's age, and the raw landing segments holding
them removed, while the events themselves stay for their own class's age.

Returns (and the DAG logs) a report of what was removed, by layer, in counts and bytes.
"""
from __future__ import annotations

import os
import re
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from focuslake import events as ev
from focuslake.config import Paths
from focuslake.privacy.forget import log_roots
from focuslake.privacy.policy import GENERAL, SENSITIVE, SYSTEM, Policy, load_policy
from focuslake.privacy.warehouse import Plan, Table, apply_plan, apply_to_published, describe, load_manifest

KEY_TYPES = [int(t) for t in ev.KEY_TYPES]


LOG_FILE = re.compile(r"\.log(\.\d+)?$")  # in the log folders only log files age out (dbt.log.1 ...)


def _day(s: str) -> date | None:
    s = s.removeprefix("date=")
    try:
        return date.fromisoformat(s) if len(s) == 10 else None
    except ValueError:
        return None


def _mtime_day(p: Path) -> date:
    return datetime.fromtimestamp(p.stat().st_mtime, UTC).date()


def _remove(p: Path, tally: Counter) -> None:
    tally["files"] += 1
    tally["bytes"] += p.stat().st_size
    p.unlink()


def _prune_empty_dirs(root: Path) -> None:
    if not root.exists():
        return
    for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
        d = Path(dirpath)
        if d != root and not any(d.iterdir()):
            d.rmdir()


def _key_consent_segment(p: Path) -> bool:
    """A binary segment whose header carries keystroke-dynamics consent (may hold key codes)."""
    try:
        with open(p, "rb") as fh:
            h = np.frombuffer(fh.read(ev.HEADER_SIZE), ev.HEADER_DTYPE)[0]
    except (OSError, ValueError):
        return False
    return bytes(h["magic"]) == ev.SEGMENT_MAGIC and bool(int(h["flags"]) & ev.FLAG_KEY_IDENTITY_CONSENT)


class Retention:
    def __init__(self, paths: Paths, now: datetime, policy: Policy, dry_run: bool = False):
        self.paths, self.now, self.policy, self.dry_run = paths, now, policy, dry_run
        self.cut = {k: policy.cutoff_day(k, now) for k in policy.days}

    def expired(self, klass: str, day: date) -> bool:
        return day < self.cut[klass]

    # -- files laid out <stream>/<user>/<device>/<YYYY-MM-DD>/... --------------------------------
    def segment_tree(self, root: Path, *, sensitive_events: bool = False) -> dict:
        tally: Counter = Counter()
        if not root.exists():
            return {}
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                parts = p.relative_to(root).parts
                stream = parts[0] if parts else ""
                day = _day(parts[3]) if len(parts) >= 5 and stream in self.policy.streams else None
                if day is None:  # not in the layout (a bad_path file, the receiver's event rejects)
                    klass, day = GENERAL, _mtime_day(p)
                else:
                    klass = self.policy.stream_class(stream)
                if self.expired(klass, day):
                    self._drop(p, tally)
                elif (sensitive_events and stream == "events" and self.expired(SENSITIVE, day)
                      and _key_consent_segment(p)):
                    tally["sensitive_segments"] += 1
                    self._drop(p, tally)
        if not self.dry_run:
            _prune_empty_dirs(root)
        return dict(tally)

    def by_mtime(self, root: Path, klass: str, only: re.Pattern | None = None) -> dict:
        tally: Counter = Counter()
        if root.exists():
            for p in [p for p in root.rglob("*") if p.is_file() and (only is None or only.search(p.name))]:
                if self.expired(klass, _mtime_day(p)):
                    self._drop(p, tally)
            if not self.dry_run:
                _prune_empty_dirs(root)
        return dict(tally)

    def _drop(self, p: Path, tally: Counter) -> None:
        if self.dry_run:
            tally["files"] += 1
            tally["bytes"] += p.stat().st_size
        else:
            _remove(p, tally)

    # -- the lake ----------------------------------------------------------------------------------
    def lake(self) -> dict:
        out: dict = {}
        for stream in self.policy.streams:
            base = self.paths.lake / stream
            if not base.exists():
                continue
            tally: Counter = Counter()
            for part in sorted(base.glob("date=*")):
                day = _day(part.name)
                if day is None:
                    continue
                if self.expired(self.policy.stream_class(stream), day):
                    for f in part.glob("*.parquet"):
                        tally["rows"] += pq.read_metadata(f).num_rows
                        self._drop(f, tally)
                    tally["partitions"] += 1
                elif stream == "events" and self.expired(SENSITIVE, day):
                    for f in part.glob("*.parquet"):
                        if n := self._scrub_key_codes(f):
                            tally["key_codes_zeroed"] += n
            if not self.dry_run:
                _prune_empty_dirs(base)
            out[stream] = dict(tally)
        return out

    def _scrub_key_codes(self, f: Path) -> int:
        from focuslake.ledger import write_parquet_atomic

        t = pq.read_table(f)
        is_key = pc.is_in(t["event_type"], pa.array(KEY_TYPES, t["event_type"].type))
        leak = pc.and_(is_key, pc.or_(pc.not_equal(t["data_0"], 0), pc.not_equal(t["data_1"], 0)))
        n = pc.sum(leak).as_py() or 0
        if n and not self.dry_run:
            zero = pa.scalar(0, t["data_0"].type)
            for c in ("data_0", "data_1"):
                t = t.set_column(t.schema.get_field_index(c), c, pc.if_else(leak, zero, t[c]))
            write_parquet_atomic(t, f)
        return int(n)

    # -- the ledger and the receiver's state ---------------------------------------------------------
    def ledger(self) -> dict:
        from focuslake.ledger import Ledger

        if not self.paths.ledger.exists():
            return {}
        led = Ledger(self.paths.ledger)
        try:
            gone = []
            for path, stream in led.con.execute("SELECT path, stream FROM segments").fetchall():
                parts = path.split("/")
                day = _day(parts[3]) if len(parts) == 5 else None
                klass = self.policy.streams.get(stream or parts[0], GENERAL)
                if day is not None and self.expired(klass, day):
                    gone.append(path)
            if gone and not self.dry_run:
                with led.con:
                    led.con.executemany("DELETE FROM segments WHERE path = ?", [(p,) for p in gone])
                led.con.execute("VACUUM")
                led.export_parquet(self.paths.ledger_export)
        finally:
            led.close()
        return {"segments": len(gone)}

    def _start_us(self, klass: str) -> int:
        return int(datetime.combine(self.cut[klass], dtime(), UTC).timestamp() * 1_000_000)

    def receiver(self) -> dict:
        return self._sqlite_rows(self.paths.root / "receiver" / "receiver.sqlite",
                                 {"segments": "received_at_us", "batches": "received_at_us"}, SYSTEM)

    def imports(self) -> dict:
        """The ActivityWatch importer's record of what time it landed (general: it says when a
        person was at their computer). A re-import of history past retention lands it again,
        to be removed by the next run."""
        return self._sqlite_rows(self.paths.root / "imports" / "activitywatch.sqlite", {"covered": "end_us"}, GENERAL)

    def _sqlite_rows(self, db: Path, tables: dict[str, str], klass: str) -> dict:
        if not db.exists():
            return {}
        before = self._start_us(klass)
        con = sqlite3.connect(db, timeout=30)
        try:
            out = {}
            for table, col in tables.items():
                q = f"FROM {table} WHERE {col} < ?"
                out[table] = con.execute(f"SELECT count(*) {q}", (before,)).fetchone()[0]
                if out[table] and not self.dry_run:
                    with con:
                        con.execute(f"DELETE {q}", (before,))
            if any(out.values()) and not self.dry_run:
                con.execute("VACUUM")
        finally:
            con.close()
        return out

    # -- DuckDB files ------------------------------------------------------------------------------
    def plan(self, con, manifest: dict) -> Plan:
        """Retention in the warehouse's own table descriptions. Rollups without a day are rebuilt."""
        plan = Plan()
        tables = describe(con, manifest, self.policy)
        for t in tables:
            if t.klass is None:
                continue  # reference data (seeds)
            if t.last_day is None:
                if t.model is None:
                    continue
                if t.materialized == "incremental":
                    raise RuntimeError(f"incremental model {t.model} has no retention_last_day: it cannot be "
                                       "rebuilt from what is left (dbt_project.yml)")
                plan.rebuild.append(t.model)
                continue
            where = f"({t.last_day}) < DATE '{self.cut[t.klass]}'"
            if _count(con, t, where):
                plan.deletes[t.qualified] = where
            if t.meta.get("sensitive_scrub"):
                sw = f"({t.last_day}) < DATE '{self.cut[SENSITIVE]}' AND ({t.meta['sensitive_where']})"
                if _count(con, t, sw):
                    plan.scrubs[t.qualified] = (t.meta["sensitive_scrub"], sw)
        if not plan.deletes and not plan.scrubs:
            plan.rebuild = []  # nothing changed: nothing to rebuild
        return plan

    def duckdb_files(self) -> dict:
        import duckdb

        manifest = load_manifest()
        out: dict = {}
        db = self.paths.warehouse
        if db.exists():
            con = duckdb.connect(str(db))
            try:
                plan = self.plan(con, manifest)
            finally:
                con.close()
            out["warehouse"] = _plan_summary(plan) if self.dry_run or not (plan.deletes or plan.scrubs) \
                else apply_plan(db, self.paths, plan)
        if self.paths.published.exists():
            if self.dry_run:
                con = duckdb.connect(str(self.paths.published), read_only=True)
                try:
                    out["published"] = _plan_summary(self.plan(con, manifest))
                finally:
                    con.close()
            else:
                def retention_plan(con):
                    """retention by data class"""
                    return self.plan(con, manifest)
                con = duckdb.connect(str(self.paths.published), read_only=True)
                try:
                    todo = self.plan(con, manifest)
                finally:
                    con.close()
                out["published"] = (apply_to_published(self.paths, retention_plan)
                                    if todo.deletes or todo.scrubs else _plan_summary(todo))
        return out

    def run(self) -> dict:
        p = self.paths
        report = {"now": self.now.isoformat(), "dry_run": self.dry_run, "policy": self.policy.source,
                  "days": dict(self.policy.days), "removed_before": {k: str(v) for k, v in self.cut.items()},
                  "landing": self.segment_tree(p.landing, sensitive_events=True),
                  "quarantine": {name: self.segment_tree(p.quarantine / name) for name in
                                 ("files", "rows", "events", "resolved/files", "resolved/rows")
                                 if (p.quarantine / name).exists()},
                  "lake": self.lake(), "ledger": self.ledger(), "receiver": self.receiver(),
                  "imports": self.imports()}
        report.update(self.duckdb_files())
        report["quality"] = {name: self.by_mtime(p.root / name, SYSTEM) for name in ("quality", "quality_docs")
                             if (p.root / name).exists()}
        report["outputs"] = {name: self.by_mtime(p.root / name, GENERAL) for name in ("reports", "exports")
                             if (p.root / name).exists()}
        # Airflow's task logs and dbt's log (outside the data root): a task log may name a user
        # (an export's summary line), so its files age out with the general class
        report["logs"] = {str(root): self.by_mtime(root, GENERAL, LOG_FILE) for root in log_roots(p)}
        return report


def _count(con, t: Table, where: str) -> int:
    return con.execute(f"SELECT count(*) FROM {t.qualified} WHERE {where}").fetchone()[0]


def _plan_summary(plan: Plan) -> dict:
    return {"delete_where": {k.replace('"', ""): v for k, v in plan.deletes.items()},
            "scrub_where": {k.replace('"', ""): v[1] for k, v in plan.scrubs.items()}, "rebuild": plan.rebuild}


def apply_retention(paths: Paths | None = None, *, now: datetime | None = None, policy: Policy | None = None,
                    dry_run: bool = False) -> dict:
    """Remove everything past its class's age from every layer; returns what was removed."""
    from focuslake.privacy import access_log

    paths = paths or Paths.from_env()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    report = Retention(paths, now, policy or load_policy(paths), dry_run).run()
    if not dry_run:
        access_log.record(paths, "retention", now=report["now"], removed_before=report["removed_before"])
    return report
