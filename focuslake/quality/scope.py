"""What the Great Expectations suites validate in one run of the gate: every partition (a full
validation) or only the partitions touched since the last passing audit (incremental), and in
which batches (docs/quality.md, "What each run validates").

A *partition* is the unit every expectation of a suite is judged within:

- bronze: one lake file, ``lake/<stream>/date=D/<user>~<device>.parquet`` -- the rows of one
  device and UTC day (the ingest writes them so; the SQL check ``lake_partitions`` proves it for
  every file from its Parquet statistics on every run). A file is touched when its size, mtime
  or inode differs from the last passing audit's record of it, or it is new.
- gold: one user and day of a gold table, touched when its rows changed: its fingerprint (row
  count and the sum of the rows' hashes, computed in DuckDB) differs, or it is new.

Keys hold the partition's identity and day, row bounds are per scope and day, ranges, types and
nulls per row: so the changed partitions, validated whole, prove what validating the whole
table would. The table-wide forms (rows of the table within their bounds, null and duplicate
rates per day over every row) are SQL checks run over the whole warehouse every time.

A full validation runs when asked (``run_checks(full=True)``, ``python -m focuslake quality
--full``, ``FOCUSLAKE_QUALITY_FULL=1``; the weekly metrics DAG does), when no passing audit is
recorded (``<data>/quality/baseline.json``), when the suites, the frames or the bronze views
changed since it, when the last full validation is older than FULL_EVERY_S, and when the ledger
names new segments the lake files do not show. The baseline is written only by an audit that
passed, so everything changed since the last pass is validated again until one passes.

Pure Python + DuckDB + pyarrow metadata: no Great Expectations import here.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from focuslake.config import Paths
from focuslake.quality.suites import SUITES, Suite

BASELINE_FILE = "baseline.json"
FULL_ENV = "FOCUSLAKE_QUALITY_FULL"
CHUNK_ENV = "FOCUSLAKE_GX_CHUNK_ROWS"
# the weekly metrics DAG validates fully every Monday; this is the safety net if it does not run
FULL_EVERY_S = 8 * 86_400
# rows per GX batch: a DataFrame of at most this many rows (plus one partition) is in memory
CHUNK_ROWS = 500_000
# bump when what a frame holds changes (derived columns, filters): forces one full validation
FRAME_VERSION = 1


@dataclass(frozen=True)
class Part:
    """One partition of a suite's table."""
    day: str | None          # YYYY-MM-DD (None: rows without a day, gold only)
    user: str | None
    device: str | None       # bronze only
    rows: int
    file: str = ""           # bronze: the lake file, relative to the lake

    @property
    def key(self) -> str:
        return self.file or f"{self.day}|{self.user}"


@dataclass
class SuiteScope:
    parts: list[Part]        # partitions to validate
    total_parts: int         # partitions the table has
    whole: bool              # the parts are the whole table (no filter needed)


@dataclass
class Plan:
    mode: str                              # "full" | "incremental"
    reason: str
    baseline_run: str | None               # the passing audit an incremental run starts from
    suites: dict[str, SuiteScope] = field(default_factory=dict)
    state: dict = field(default_factory=dict)   # the next baseline, if this audit passes
    seconds: float = 0.0
    # bronze suite -> the days whose rows may have changed (None: every day), and the per-day
    # figures of the SQL checks the last passing audit measured (checks.null_and_duplicate_rates)
    touched_days: dict[str, list[str] | None] = field(default_factory=dict)
    carried_day_stats: dict[str, dict] = field(default_factory=dict)

    def describe(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "since_run": self.baseline_run,
                "partitions": {n: [len(s.parts), s.total_parts] for n, s in self.suites.items()},
                "rows": {n: sum(p.rows for p in s.parts) for n, s in self.suites.items()}}


def baseline_path(paths: Paths) -> Path:
    return paths.root / "quality" / BASELINE_FILE


def load_baseline(paths: Paths) -> dict | None:
    p = baseline_path(paths)
    try:
        doc = json.loads(p.read_text()) if p.exists() else None
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def chunk_rows() -> int:
    return max(1, int(os.environ.get(CHUNK_ENV) or CHUNK_ROWS))


def want_full(full: bool | None) -> bool:
    if full is not None:
        return bool(full)
    return os.environ.get(FULL_ENV, "").strip().lower() in ("1", "true", "yes", "full")


# --- what the tables hold now -------------------------------------------------------------------
def _stat(f: Path) -> list[int]:
    st = f.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def lake_file_identity(meta) -> tuple[str | None, str | None, int | None, int | None, int]:
    """(user, device, min ts_us, max ts_us, problems) of a lake file from its Parquet statistics:
    user/device None unless one value throughout; problems counts row groups without the
    statistics to tell (then the caller reads the columns)."""
    names = meta.schema.names
    users, devices, lo, hi, unknown = set(), set(), None, None, 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        if rg.num_rows == 0:
            continue
        for col, into in (("user_id", users), ("device_id", devices)):
            if col not in names:
                unknown += 1
                continue
            s = rg.column(names.index(col)).statistics
            if s is None or not s.has_min_max or (s.null_count or 0) > 0:
                unknown += 1
                continue
            into.update({s.min, s.max})
        if "ts_us" in names:
            s = rg.column(names.index("ts_us")).statistics
            if s is None or not s.has_min_max:
                unknown += 1
            else:
                lo = s.min if lo is None else min(lo, s.min)
                hi = s.max if hi is None else max(hi, s.max)
        else:
            unknown += 1
    user = next(iter(users)) if len(users) == 1 else None
    device = next(iter(devices)) if len(devices) == 1 else None
    return user, device, lo, hi, unknown


def lake_state(paths: Paths, stream: str, before: dict | None = None) -> dict[str, list]:
    """rel -> [size, mtime_ns, inode, rows, day, user, device, min ts_us, max ts_us] of every
    lake file of a stream;
    the Parquet footer is read only for files whose stat differs from `before`."""
    import pyarrow.parquet as pq

    before = before or {}
    out: dict[str, list] = {}
    for f in sorted((paths.lake / stream).glob("date=*/*.parquet")):
        rel = f.relative_to(paths.lake).as_posix()
        try:
            st = _stat(f)
        except FileNotFoundError:  # removed under us (retention): not there
            continue
        old = before.get(rel)
        if old and old[:3] == st and len(old) == 9:
            out[rel] = old
            continue
        day = f.parent.name.removeprefix("date=")
        try:
            meta = pq.read_metadata(f)
            user, device, lo, hi, _ = lake_file_identity(meta)
            rows = meta.num_rows
        except Exception:  # noqa: BLE001 -- unreadable: lake_schema names it; validate the day
            user, device, rows, lo, hi = None, None, 0, None, None
        out[rel] = [*st, rows, day, user, device, lo, hi]
    return out


def gold_state(con, suite: Suite) -> dict[str, list]:
    """'day|user' -> [rows, sum of row hashes] of a gold table: its rows' fingerprint per
    partition (one scan in DuckDB)."""
    rows = con.execute(f"""SELECT ({suite.day})::DATE::VARCHAR, user_id::VARCHAR, count(*),
                                  sum(hash(t))::VARCHAR
                           FROM {suite.table} AS t GROUP BY ALL""").fetchall()
    return {f"{d}|{u}": [n, h] for d, u, n, h in rows}


def _split_gold_key(key: str) -> tuple[str | None, str | None]:
    d, u = key.split("|", 1)
    return (None if d == "None" else d), (None if u == "None" else u)


def suites_hash() -> str:
    """The expectations (the committed context as generated), the frame definition, and the
    suites' declarations the run-time suite parameters read (row-count bound per scope and day,
    scope, day, future skew: focuslake.quality.gx.suite_parameters), which the rendered context
    holds only as $PARAMETER placeholders."""
    from focuslake.quality.gx import GX_VERSION, render_context
    from focuslake.quality.suites import FUTURE_SKEW_S

    h = hashlib.sha256(f"{GX_VERSION}/{FRAME_VERSION}/{FUTURE_SKEW_S}".encode())
    for name, suite in sorted(SUITES.items()):
        h.update(f"{name}:{suite!r}".encode())
    for rel, text in sorted(render_context().items()):
        h.update(rel.encode())
        h.update(text.encode())
    return h.hexdigest()


def bronze_hash(con) -> str:
    """What bronze rows are computed from besides the lake files: the dbt sources of the bronze
    views (their models, the macros, the seeds, dbt_project.yml), the views' columns and the
    lake paths they read, and the seed tables they join. A change there changes bronze rows
    without changing a lake file. (The views' SQL text itself is no fingerprint: DuckDB stores
    dbt's text until a checkpoint and its own rendering of it after.)"""
    import re

    from focuslake.config import DBT_PROJECT_DIR

    h = hashlib.sha256()
    for sub in ("models/bronze", "macros", "seeds"):
        for f in sorted((DBT_PROJECT_DIR / sub).rglob("*")):
            if f.is_file() and f.suffix in (".sql", ".yml", ".csv"):
                h.update(f.relative_to(DBT_PROJECT_DIR).as_posix().encode())
                h.update(f.read_bytes())
    h.update((DBT_PROJECT_DIR / "dbt_project.yml").read_bytes())
    for name, sql in con.execute("SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'bronze' "
                                 "ORDER BY view_name").fetchall():
        cols = [(c[0], c[1]) for c in con.execute(f'DESCRIBE bronze."{name}"').fetchall()]
        reads = sorted(set(re.findall(r"read_parquet[(]'([^']+)", sql)))
        h.update(f"{name}:{cols}:{reads}".encode())
    for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'ref' "
                            "ORDER BY table_name").fetchall():
        n, s = con.execute(f'SELECT count(*), sum(hash(x))::VARCHAR FROM ref."{t}" AS x').fetchone()
        h.update(f"{t}:{n}:{s}".encode())
    return h.hexdigest()


def _ledger_watermark(con) -> int:
    return con.execute("SELECT coalesce(max(ingested_at_us), 0) FROM q_ledger WHERE status = 'ingested'"
                       ).fetchone()[0]


def _stream(suite: Suite) -> str | None:
    return suite.name.removeprefix("brz_") if suite.table.startswith("bronze.") else None


def _bronze_part(rel: str, entry: list) -> Part:
    _, _, _, rows, day, user, device = entry[:7]
    return Part(day, user if device else None, device if user else None, rows, rel)


def _entry_days(entry: list) -> set[str]:
    """The UTC days a lake file's rows may belong to: its date= day and its ts_us range
    ({"*"}: a range over a year, every day is suspect)."""
    from datetime import date, timedelta

    days = {entry[4]}
    lo, hi = (entry[7], entry[8]) if len(entry) >= 9 else (None, None)
    if lo is not None and hi is not None:
        day_us = 86_400_000_000
        d0 = date(1970, 1, 1) + timedelta(days=lo // day_us)
        n = hi // day_us - lo // day_us
        if n > 366:
            return {"*"}
        days.update((d0 + timedelta(days=k)).isoformat() for k in range(n + 1))
    return days


# --- the plan -----------------------------------------------------------------------------------
def plan(con, ctx, full: bool | None = None, ignore_baseline: bool = False) -> Plan:
    """Decide what this run validates (needs the gate's temp view q_ledger). ignore_baseline:
    as if no passing audit were recorded (a full validation that records a new baseline)."""
    from focuslake.quality.checks import relation_exists

    t0 = time.perf_counter()
    base = None if ignore_baseline else load_baseline(ctx.paths)
    now = time.time()
    state: dict = {"suites_hash": suites_hash(), "bronze_hash": bronze_hash(con),
                   "ledger_watermark_us": _ledger_watermark(con), "lake": {}, "gold": {}}
    present = {name: relation_exists(con, s.table) for name, s in SUITES.items()}
    for name, s in SUITES.items():
        stream = _stream(s)
        if stream:
            state["lake"][stream] = lake_state(ctx.paths, stream, ((base or {}).get("lake") or {}).get(stream))
        elif present[name]:
            state["gold"][name] = gold_state(con, s)

    reason = ""
    if want_full(full):
        reason = "asked for (full=True, --full or FOCUSLAKE_QUALITY_FULL)"
    elif base is None:
        reason = "no passing audit recorded (quality/baseline.json)"
    elif base.get("suites_hash") != state["suites_hash"]:
        reason = "the expectation suites or the frames changed since the last passing audit"
    elif now - float(base.get("last_full_at") or 0) > FULL_EVERY_S:
        reason = f"the last full validation is older than {FULL_EVERY_S // 86_400} days"
    elif state["ledger_watermark_us"] < int(base.get("ledger_watermark_us") or 0):
        reason = "the ledger is older than at the last passing audit (restored?)"
    bronze_full = bool(reason) or base.get("bronze_hash") != state["bronze_hash"]
    if not reason:
        missing = _ledger_not_in_lake(con, base, state)
        if missing:
            reason = (f"the ledger names {len(missing)} segment(s) ingested since the last passing audit whose "
                      f"device has no changed lake file (e.g. {missing[0]})")
            bronze_full = True
    mode = "full" if reason else "incremental"
    if mode == "incremental" and bronze_full:
        reason = "bronze views or seeds changed since the last passing audit: bronze validated fully"
    out = Plan(mode, reason or "partitions touched since the last passing audit",
               None if mode == "full" else base.get("run_id"), state=state)
    for name, s in SUITES.items():
        if not present[name]:
            continue
        stream = _stream(s)
        if stream:
            now_files = state["lake"][stream]
            old = ((base or {}).get("lake") or {}).get(stream) or {}
            every = bronze_full or mode == "full"
            parts = [_bronze_part(rel, e) for rel, e in now_files.items()
                     if every or old.get(rel, [None])[:3] != e[:3]]
            out.suites[name] = SuiteScope(parts, len(now_files), every)
            carried = ((base or {}).get("day_stats") or {}).get(name)
            if not every and carried is not None:
                out.carried_day_stats[name] = carried
                days: set[str] = set()
                for p in parts:
                    days |= _entry_days(now_files[p.file])
                for rel, e in old.items():  # removed files: their days lost rows
                    if rel not in now_files:
                        days |= _entry_days(e)
                out.touched_days[name] = None if "*" in days else sorted(days)
        else:
            now_parts = state["gold"][name]
            old = ((base or {}).get("gold") or {}).get(name) or {}
            every = mode == "full"
            parts = [Part(*_split_gold_key(k), None, v[0]) for k, v in sorted(now_parts.items())
                     if every or old.get(k) != v]
            out.suites[name] = SuiteScope(parts, len(now_parts), every)
    out.seconds = round(time.perf_counter() - t0, 3)
    return out


def _ledger_not_in_lake(con, base: dict, state: dict) -> list[str]:
    """Segments the ledger says were ingested (with rows) since the last passing audit, whose
    stream and device have no new or changed lake file: then the file record cannot be trusted."""
    rows = con.execute("""SELECT path, stream, user_id, device_id FROM q_ledger
                          WHERE status = 'ingested' AND rows_written > 0 AND ingested_at_us > ?
                          ORDER BY path""", [int(base.get("ledger_watermark_us") or 0)]).fetchall()
    if not rows:
        return []
    changed: set[tuple] = set()
    for stream, files in state["lake"].items():
        old = (base.get("lake") or {}).get(stream) or {}
        for rel, e in files.items():
            if old.get(rel, [None])[:3] != e[:3]:
                changed.add((stream, e[5], e[6]))
                changed.add((stream, None, None))  # a file of unknown identity changed
    return [p for p, s, u, d in rows if (s, u, d) not in changed and (s, None, None) not in changed]


def save_baseline(paths: Paths, p: Plan, run_id: str) -> None:
    """Record what a passing audit validated against: written only when the audit passed."""
    prev = load_baseline(paths) or {}
    now = time.time()
    full = p.mode == "full"
    doc = {"run_id": run_id, "audited_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
           "mode": p.mode, "last_full_at": now if full else prev.get("last_full_at", 0),
           "last_full_run": run_id if full else prev.get("last_full_run"), **p.state}
    target = baseline_path(paths)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    os.replace(tmp, target)


# --- batches ------------------------------------------------------------------------------------
def chunks(scope: SuiteScope, limit: int | None = None) -> list[list[Part]]:
    """The parts in batches of at most `limit` rows (a larger partition is a batch alone), by
    day so that a batch is a few whole days."""
    limit = limit or chunk_rows()
    out: list[list[Part]] = []
    cur: list[Part] = []
    n = 0
    for p in sorted(scope.parts, key=lambda p: (p.day or "", p.user or "", p.device or "", p.file)):
        if cur and n + p.rows > limit:
            out.append(cur)
            cur, n = [], 0
        cur.append(p)
        n += p.rows
    if cur:
        out.append(cur)
    return out


def _lit(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def where_sql(suite: Suite, parts: list[Part], whole: bool) -> str:
    """The filter selecting the rows of `parts` from the suite's relation; empty when
    they are the whole table. Bronze filters on the lake's `date` partition column, so DuckDB
    reads only those days' files."""
    if whole:
        return ""
    terms = []
    if suite.table.startswith("bronze."):
        by_day: dict[str, list[Part]] = {}
        for p in parts:
            by_day.setdefault(p.day, []).append(p)
        for day, ps in sorted(by_day.items()):
            if any(p.user is None or p.device is None for p in ps):  # identity unknown: the whole day
                terms.append(f"date = DATE {_lit(day)}")
                continue
            who = " OR ".join(f"(user_id = {_lit(p.user)} AND device_id = {_lit(p.device)})" for p in ps)
            terms.append(f"(date = DATE {_lit(day)} AND ({who}))")
    else:
        for p in parts:
            d = "NULL" if p.day is None else f"DATE {_lit(p.day)}"
            u = "NULL" if p.user is None else _lit(p.user)
            terms.append(f"(({suite.day})::DATE IS NOT DISTINCT FROM {d} AND user_id IS NOT DISTINCT FROM {u})")
    return " OR ".join(terms) if terms else "false"
