"""Landing zone -> Parquet lake.

For each sealed segment not yet in the ledger:
  * the landing path names stream/user/device/date (a path that doesn't is quarantined);
  * a file whose checksum was already processed is a no-op ("duplicate");
  * binary segments are validated (header, footer, count, CRC-32) and decoded in one
    vectorised numpy view; CSV segments are checked against focuslake.schemas and parsed by
    DuckDB (typed, with per-line reject reasons);
  * bad rows go to quarantine/rows/<segment>.rejects.parquet with their reason and raw text;
    bad files move whole to quarantine/files/<segment> with <segment>.reason.json;
  * good rows are merged into lake/<stream>/date=YYYY-MM-DD/<user_id>~<device_id>.parquet:
    the partition is rewritten (temp file + rename) without the rows of the segments being
    (re)processed, plus their new rows, so a crash anywhere and a rerun give the same lake;
  * the ledger records rows_read = rows_written + rows_quarantined for every segment, after
    the lake writes (so a crash before it only causes an idempotent redo).
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date as Date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from focuslake import events as ev
from focuslake.config import Paths
from focuslake.ledger import Ledger, LedgerEntry, write_parquet_atomic
from focuslake.schemas import (BINARY_STREAM, CSV_STREAMS, ID_RE, MAX_FUTURE_SKEW_US, MIN_TS_US,
                               CsvStream)
from focuslake.segments import PART_SUFFIX

log = logging.getLogger("focuslake.ingest")
DAY_US = 86_400 * 1_000_000
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Arrow types of the lake columns. CSV columns follow their DuckDB parse types.
_SQL_TO_ARROW = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(),
                 "BOOLEAN": pa.bool_(), "VARCHAR": pa.string()}
IDENTITY_FIELDS = [pa.field("user_id", pa.string()), pa.field("device_id", pa.string()),
                   pa.field("segment_id", pa.string())]
EVENTS_SCHEMA = pa.schema([
    pa.field("ts_us", pa.int64()), pa.field("event_type", pa.int32()),
    pa.field("process_id", pa.int64()), pa.field("app_name", pa.string()),
    pa.field("window_handle", pa.int64()),
    # the data union's three little-endian uint32 words, unchanged (bronze names them)
    pa.field("data_0", pa.int64()), pa.field("data_1", pa.int64()), pa.field("data_2", pa.int64()),
    *IDENTITY_FIELDS])


def lake_schema(stream: str) -> pa.Schema:
    if stream == BINARY_STREAM:
        return EVENTS_SCHEMA
    cols = CSV_STREAMS[stream].columns
    return pa.schema([pa.field(c.name, _SQL_TO_ARROW[c.sql_type]) for c in cols] + IDENTITY_FIELDS)


REJECTS_SCHEMA = pa.schema([pa.field("line", pa.int64()), pa.field("reason", pa.string()),
                            pa.field("raw", pa.string())])


@dataclass
class Segment:
    rel: str
    path: Path
    size: int
    mtime_ns: int
    stream: str | None = None
    user_id: str | None = None
    device_id: str | None = None
    checksum: str = ""
    # outcome
    status: str = "ingested"
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    reasons: list[str] = field(default_factory=list)
    note: str | None = None

    def quarantine_rows(self, n: int, reason: str) -> None:
        self.rows_quarantined += n
        if reason not in self.reasons:
            self.reasons.append(reason)


class FileRejected(Exception):
    """The whole segment is untrustworthy; it moves to quarantine with this reason."""

    def __init__(self, reason: str, rows: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.rows = rows


# ---------------------------------------------------------------------------------------------
def discover(landing: Path) -> list[Segment]:
    """Sealed segments under the landing root (`.part` and hidden files are ignored)."""
    out = []
    if not landing.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(landing):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(PART_SUFFIX) or name.startswith("."):
                continue
            p = Path(dirpath) / name
            st = p.stat()
            out.append(Segment(p.relative_to(landing).as_posix(), p, st.st_size, st.st_mtime_ns))
    return out


def _classify(seg: Segment) -> None:
    parts = seg.rel.split("/")
    if len(parts) != 5:
        raise FileRejected(f"bad_path: expected <stream>/<user_id>/<device_id>/<YYYY-MM-DD>/<segment>, "
                           f"got {seg.rel!r}")
    stream, user, device, day, name = parts
    if stream != BINARY_STREAM and stream not in CSV_STREAMS:
        raise FileRejected(f"bad_path: unknown stream {stream!r}")
    for kind, v in (("user_id", user), ("device_id", device)):
        if not ID_RE.match(v):
            raise FileRejected(f"bad_path: invalid {kind} {v!r}")
    if not DATE_RE.match(day):
        raise FileRejected(f"bad_path: invalid date directory {day!r}")
    try:
        Date.fromisoformat(day)
    except ValueError:
        raise FileRejected(f"bad_path: invalid date directory {day!r}") from None
    want = ".bin" if stream == BINARY_STREAM else ".csv"
    if not name.endswith(want):
        raise FileRejected(f"bad_path: {stream} segments end in {want}: {name!r}")
    seg.stream, seg.user_id, seg.device_id = stream, user, device


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# ---------------------------------------------------------------------------------------------
class _Batch:
    """Good rows per lake partition, collected before the partitions are rewritten."""

    def __init__(self):
        self.pieces: dict[tuple[str, str, str, str], list[pa.Table]] = defaultdict(list)
        self.segments: dict[tuple[str, str, str], set[str]] = defaultdict(set)

    def add(self, seg: Segment, table: pa.Table, ts: np.ndarray) -> None:
        """Split one segment's good rows by UTC date and file them under their partition."""
        key = (seg.stream, seg.user_id, seg.device_id)
        self.segments[key].add(seg.rel)
        if not len(table):
            return
        days = ts // DAY_US
        if days[0] == days[-1] and (days == days[0]).all():
            self.pieces[(*key, _day_str(days[0]))].append(table)
            return
        order = np.argsort(days, kind="stable")
        days_sorted = days[order]
        table = table.take(pa.array(order))
        cuts = np.flatnonzero(np.diff(days_sorted)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(days_sorted)]):
            self.pieces[(*key, _day_str(days_sorted[lo]))].append(table.slice(lo, hi - lo))


def _day_str(day_number) -> str:
    return str(np.datetime64(int(day_number), "D"))


def init_lake(lake: Path) -> None:
    """Write a zero-row Parquet file per stream under lake/_schemas/ so readers (dbt's
    lake_scan macro) know every stream's columns even before its first segment lands."""
    for stream in (BINARY_STREAM, *CSV_STREAMS):
        target = lake / "_schemas" / f"{stream}.parquet"
        schema = lake_schema(stream)
        if not target.exists() or pq.read_schema(target) != schema:
            write_parquet_atomic(schema.empty_table(), target)


def partition_path(lake: Path, stream: str, day: str, user_id: str, device_id: str) -> Path:
    return lake / stream / f"date={day}" / f"{user_id}~{device_id}.parquet"


def _write_partitions(lake: Path, batch: _Batch) -> int:
    written = 0
    for (stream, user, device, day), pieces in sorted(batch.pieces.items()):
        schema = lake_schema(stream)
        new = pa.concat_tables([p.cast(schema) for p in pieces])
        target = partition_path(lake, stream, day, user, device)
        if target.exists():  # merge: drop rows of the segments being (re)processed, add new ones
            old = pq.read_table(target, schema=schema)
            redo = pa.array(sorted(batch.segments[(stream, user, device)]), pa.string())
            old = old.filter(pc.invert(pc.is_in(old["segment_id"], value_set=redo)))
            new = pa.concat_tables([old, new])
        new = new.take(pc.sort_indices(new, sort_keys=[("ts_us", "ascending")]))
        write_parquet_atomic(new, target, row_group_size=1 << 20)
        written += 1
    return written


# ---------------------------------------------------------------------------------------------
def decode_binary(seg: Segment, now_us: int) -> tuple[pa.Table, np.ndarray, pa.Table | None]:
    """Validate and decode one binary segment. Returns (good rows, their ts, rejects)."""
    buf = np.fromfile(seg.path, dtype=np.uint8)
    try:
        header, recs = ev.decode_segment(buf)
    except ev.SegmentError as e:
        body = max(0, buf.size - ev.HEADER_SIZE - ev.FOOTER_SIZE)
        raise FileRejected(f"{e.reason}: {e.detail}", rows=body // ev.RECORD_SIZE) from None
    if (header.user_id, header.device_id) != (seg.user_id, seg.device_id):
        raise FileRejected(f"identity_mismatch: header says {header.user_id}/{header.device_id}, "
                           f"landing path says {seg.user_id}/{seg.device_id}", rows=len(recs))
    n = len(recs)
    seg.rows_read = n
    ts = recs["timestamp_us"].view(np.int64)  # > 2**63 reads as negative: rejected below
    etype = recs["event_type"]
    bad_type = ~np.isin(etype, ev.VALID_EVENT_TYPES)
    bad_ts = (ts < MIN_TS_US) | (ts > now_us + MAX_FUTURE_SKEW_US)
    bad = bad_type | bad_ts
    data = recs["data"]
    d0, d1 = data[:, 0], data[:, 1]
    if not header.key_identity_consent:  # consent off: key identity never reaches the lake
        leaked = np.isin(etype, ev.KEY_TYPES) & ((d0 != 0) | (d1 != 0)) & ~bad
        if leaked.any():
            d0 = np.where(leaked, 0, d0)
            d1 = np.where(leaked, 0, d1)
            seg.note = f"key codes scrubbed (no keystroke-dynamics consent): {int(leaked.sum())} records"
    rejects = None
    if bad.any():
        idx = np.flatnonzero(bad)
        reasons = np.where(bad_type[idx], "unknown event_type", "timestamp out of range")
        for r in np.unique(reasons):
            seg.quarantine_rows(int((reasons == r).sum()), str(r))
        raw = recs[idx].tobytes()
        rejects = pa.table({
            "line": pa.array(idx, pa.int64()),
            "reason": pa.array(reasons.tolist(), pa.string()),
            "raw": pa.array([raw[i * 64:(i + 1) * 64].hex() for i in range(len(idx))], pa.string()),
        }, schema=REJECTS_SCHEMA)
    good = ~bad
    # app names: decode each distinct 32-byte value once, then index (no per-record loop)
    names, inverse = np.unique(recs["app_name"][good], return_inverse=True)
    dictionary = pa.array([bytes(b).rstrip(b"\0").decode("utf-8", "replace") for b in names],
                          pa.string())
    app = pa.DictionaryArray.from_arrays(pa.array(inverse.astype(np.int32)), dictionary)
    m = int(good.sum())
    seg.rows_written = m
    table = pa.table({
        "ts_us": ts[good], "event_type": etype[good].astype(np.int32),
        "process_id": recs["process_id"][good].astype(np.int64),
        "app_name": app.cast(pa.string()),
        "window_handle": recs["window_handle"][good].astype(np.int64),
        "data_0": d0[good].astype(np.int64), "data_1": d1[good].astype(np.int64),
        "data_2": data[:, 2][good].astype(np.int64),
        "user_id": pa.array([seg.user_id] * 1, pa.string()).take(pa.array(np.zeros(m, np.int32))),
        "device_id": pa.array([seg.device_id], pa.string()).take(pa.array(np.zeros(m, np.int32))),
        "segment_id": pa.array([seg.rel], pa.string()).take(pa.array(np.zeros(m, np.int32))),
    })
    return table, ts[good], rejects


def read_csv_header(seg: Segment, stream: CsvStream) -> list[str]:
    with open(seg.path, "rb") as fh:
        first = fh.readline()
        data_lines = sum(1 for _ in fh)
    if not first.strip():
        raise FileRejected("schema: empty file, no header row", rows=data_lines)
    try:
        header = next(csv.reader([first.decode("utf-8").rstrip("\r\n")]))
    except UnicodeDecodeError:
        raise FileRejected("schema: header row is not UTF-8", rows=data_lines) from None
    header = [h.strip() for h in header]
    want = stream.names
    missing = [c for c in want if c not in header]
    extra = [c for c in header if c not in want]
    if missing or extra or len(set(header)) != len(header):
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        if len(set(header)) != len(header):
            parts.append("duplicate column names")
        raise FileRejected("schema: " + "; ".join(parts), rows=data_lines)
    return header


def _validation_sql(stream: CsvStream, now_us: int) -> str:
    rules = [(f"ts_us IS NULL", "missing required value: ts_us"),
             (f"ts_us < {MIN_TS_US} OR ts_us > {now_us + MAX_FUTURE_SKEW_US}",
              "ts_us out of range (before 2000 or in the future)")]
    for c in stream.columns[1:]:
        if c.required:
            rules.append((f'"{c.name}" IS NULL', f"missing required value: {c.name}"))
        if c.min is not None:
            rules.append((f'"{c.name}" < {c.min}', f"{c.name} below minimum {c.min:g}"))
        if c.max is not None:
            rules.append((f'"{c.name}" > {c.max}', f"{c.name} above maximum {c.max:g}"))
        if c.accepted:
            vals = ", ".join("'" + v + "'" for v in c.accepted)
            rules.append((f'"{c.name}" NOT IN ({vals})', f"{c.name} not one of {list(c.accepted)}"))
    return "CASE " + " ".join(f"WHEN {cond} THEN " + "'" + msg.replace("'", "''") + "'"
                              for cond, msg in rules) + " END"


def decode_csv_group(con, stream: CsvStream, segs: list[Segment], header: list[str], batch: _Batch,
                     rejects_out: dict[str, list[pa.Table]], now_us: int) -> None:
    """Parse files sharing one header with a single DuckDB scan; validate rows in SQL."""
    types = {c.name: c.sql_type for c in stream.columns}
    columns = "{" + ", ".join(f"'{h}': '{types[h]}'" for h in header) + "}"
    files = [s.path.as_posix() for s in segs]
    by_path = {s.path.as_posix(): s for s in segs}
    con.execute("DROP TABLE IF EXISTS raw; DROP TABLE IF EXISTS reject_errors; "
                "DROP TABLE IF EXISTS reject_scans")
    con.execute(f"""CREATE TEMP TABLE raw AS SELECT * FROM read_csv($files, header=true,
        columns={columns}, filename=true, store_rejects=true, auto_detect=false, delim=',',
        quote='"', escape='"', strict_mode=true)""", {"files": files})
    # parser rejects: one row per bad line (a line may carry several errors)
    perr = con.execute("""SELECT s.file_path, e.line, string_agg(DISTINCT e.error_type || ': ' ||
            e.error_message, '; ') AS reason, any_value(e.csv_line) AS raw
        FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)
        GROUP BY s.file_path, e.line ORDER BY s.file_path, e.line""").fetchall()
    for path, line, reason, raw in perr:
        s = by_path[path]
        s.rows_read += 1
        s.quarantine_rows(1, "unparseable row")
        rejects_out[s.rel].append(pa.table({"line": [line], "reason": [f"unparseable row: {reason}"],
                                            "raw": [raw]}, schema=REJECTS_SCHEMA))
    names = stream.names
    cols = ", ".join(f'"{c}"' for c in names)
    reason = _validation_sql(stream, now_us)
    con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS SELECT {cols}, filename, {reason} AS _reason "
                "FROM raw")
    counts = con.execute("SELECT filename, count(*), count(_reason) FROM checked GROUP BY ALL").fetchall()
    for path, n, nbad in counts:
        by_path[path].rows_read += n
        by_path[path].rows_written += n - nbad
    bad = con.execute(f"""SELECT filename, _reason, to_json(struct_pack({cols})) AS raw FROM checked
                          WHERE _reason IS NOT NULL ORDER BY filename""").fetchall()
    for path, why, raw in bad:
        s = by_path[path]
        s.quarantine_rows(1, why)
        rejects_out[s.rel].append(pa.table({"line": pa.array([None], pa.int64()), "reason": [why],
                                            "raw": [raw]}, schema=REJECTS_SCHEMA))
    good = con.sql(f"SELECT {cols}, filename FROM checked WHERE _reason IS NULL "
                  "ORDER BY filename, ts_us").to_arrow_table()
    fn = good.column("filename").to_numpy(zero_copy_only=False)
    good = good.drop_columns(["filename"])
    if not len(fn):
        for s in segs:
            batch.add(s, good.slice(0, 0), np.empty(0, np.int64))
        return
    cuts = np.flatnonzero(fn[1:] != fn[:-1]) + 1
    seen = set()
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(fn)]):
        s = by_path[fn[lo]]
        seen.add(s.rel)
        part = good.slice(lo, hi - lo)
        m = len(part)
        ident = {"user_id": s.user_id, "device_id": s.device_id, "segment_id": s.rel}
        for k, v in ident.items():
            part = part.append_column(k, pa.array([v], pa.string()).take(pa.array(np.zeros(m, np.int32))))
        batch.add(s, part, part.column("ts_us").to_numpy())
    for s in segs:
        if s.rel not in seen:
            batch.add(s, good.slice(0, 0), np.empty(0, np.int64))


# ---------------------------------------------------------------------------------------------
def _quarantine_file(paths: Paths, seg: Segment, reason: str, rows: int, run_id: str) -> None:
    seg.status = "quarantined"
    seg.rows_read = rows
    seg.rows_written = 0
    seg.rows_quarantined = rows
    seg.reasons = [reason]
    target = paths.quarantine / "files" / seg.rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(seg.path, target)
    target.with_name(target.name + ".reason.json").write_text(json.dumps({
        "segment": seg.rel, "reason": reason, "checksum": seg.checksum, "rows": rows,
        "run_id": run_id, "quarantined_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2))
    log.warning("quarantined %s: %s", seg.rel, reason)


def _write_row_rejects(paths: Paths, rel: str, tables: list[pa.Table]) -> None:
    write_parquet_atomic(pa.concat_tables(tables),
                         paths.quarantine / "rows" / f"{rel}.rejects.parquet")


def ingest_landing(paths: Paths, now_us: int | None = None, run_id: str | None = None) -> dict:
    """Process every new sealed segment in the landing zone. Returns a summary of counts."""
    import duckdb

    t0 = time.perf_counter()
    paths.ensure()
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    run_id = run_id or f"ingest-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    ledger = Ledger(paths.ledger)
    try:
        known = ledger.known()
        todo = [s for s in discover(paths.landing) if known.get(s.rel) != (s.size, s.mtime_ns)]
        for s in todo:
            s.checksum = _sha256(s.path)
        done = ledger.checksum_status([s.checksum for s in todo])
        batch, rejects = _Batch(), defaultdict(list)
        live: list[Segment] = []
        seen_now: set[str] = set()
        for s in todo:
            if s.checksum in done or s.checksum in seen_now:
                s.status, s.reasons = "duplicate", [f"same checksum already processed ({done.get(s.checksum, 'this run')})"]
                continue
            seen_now.add(s.checksum)
            try:
                _classify(s)
            except FileRejected as e:
                _quarantine_file(paths, s, e.reason, _count_rows(s), run_id)
                continue
            live.append(s)

        for s in (s for s in live if s.stream == BINARY_STREAM):
            try:
                table, ts, rej = decode_binary(s, now_us)
            except FileRejected as e:
                _quarantine_file(paths, s, e.reason, e.rows, run_id)
                continue
            batch.add(s, table, ts)
            if rej is not None:
                rejects[s.rel].append(rej)

        con = duckdb.connect()
        try:
            for name, stream in CSV_STREAMS.items():
                groups: dict[tuple, list[Segment]] = defaultdict(list)
                for s in (s for s in live if s.stream == name):
                    try:
                        groups[tuple(read_csv_header(s, stream))].append(s)
                    except FileRejected as e:
                        _quarantine_file(paths, s, e.reason, e.rows, run_id)
                for header, segs in groups.items():
                    decode_csv_group(con, stream, segs, list(header), batch, rejects, now_us)
        finally:
            con.close()

        for rel, tables in rejects.items():
            _write_row_rejects(paths, rel, tables)
        init_lake(paths.lake)
        partitions = _write_partitions(paths.lake, batch)

        now_rec = time.time_ns() // 1000
        entries = [LedgerEntry(
            path=s.rel, stream=s.stream, user_id=s.user_id, device_id=s.device_id,
            segment_id=s.rel if s.status == "ingested" else None, size_bytes=s.size,
            mtime_ns=s.mtime_ns, checksum=s.checksum, status=s.status, rows_read=s.rows_read,
            rows_written=s.rows_written, rows_quarantined=s.rows_quarantined,
            reason="; ".join(s.reasons) or None, note=s.note, run_id=run_id, ingested_at_us=now_rec)
            for s in todo]
        for e in entries:
            assert e.rows_read == e.rows_written + e.rows_quarantined, e
        ledger.record(entries)
        ledger.export_parquet(paths.ledger_export)
    finally:
        ledger.close()

    summary = {
        "run_id": run_id,
        "segments_new": len(todo),
        "segments_ingested": sum(s.status == "ingested" for s in todo),
        "segments_quarantined": sum(s.status == "quarantined" for s in todo),
        "segments_duplicate": sum(s.status == "duplicate" for s in todo),
        "segments_with_row_rejects": sum(1 for s in todo if s.status == "ingested" and s.rows_quarantined),
        "rows_read": sum(s.rows_read for s in todo),
        "rows_written": sum(s.rows_written for s in todo),
        "rows_quarantined": sum(s.rows_quarantined for s in todo),
        "partitions_written": partitions,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info("ingest %s", summary)
    return summary


def _count_rows(seg: Segment) -> int:
    """Rows a file that is rejected by its path claims to hold (CSV data lines or records)."""
    if seg.rel.endswith(".bin"):
        return max(0, seg.size - ev.HEADER_SIZE - ev.FOOTER_SIZE) // ev.RECORD_SIZE
    with open(seg.path, "rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)
