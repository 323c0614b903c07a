"""Landing zone -> Parquet lake.

For each sealed segment not yet in the ledger:
  * the landing path names stream/user/device/date (a path that doesn't is quarantined);
  * a file whose checksum was already processed is a no-op ("duplicate");
  * binary segments are validated (header, footer, count, CRC-32) and decoded in one
    vectorised numpy view; CSV segments are checked against focuslake.schemas and parsed by
    DuckDB (typed, strict). A partition whose new CSV segments are all good is parsed,
    validated and written in one pass (csv_single_pass: nothing bad is proven from the written
    file's exact column statistics); any doubt sends its segments to the two-pass path
    (decode_csv_group: per-line reject reasons, every bad row explained);
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
from concurrent.futures import ThreadPoolExecutor
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
from focuslake.privacy.consent import Registry
from focuslake.privacy.policy import KEYSTROKE_DYNAMICS
from focuslake.schemas import BINARY_STREAM, CSV_STREAMS, ID_RE, MAX_FUTURE_SKEW_US, MIN_TS_US, CsvStream
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
    rows_no_consent: int = 0   # of rows_quarantined: denied by the consent registry, nothing kept
    # the landing copy holds what must not be kept (rows without consent, unscrubbed key codes):
    # deleted once the ledger has the segment (a re-drop of it is then a checksum no-op)
    purge_landing: bool = False
    forgotten: bool = False    # every row refused because its user was forgotten (ledger: no identity)
    single_pass: bool = False  # CSV: proven good and written in one pass (csv_single_pass)

    def quarantine_rows(self, n: int, reason: str) -> None:
        self.rows_quarantined += n
        if reason not in self.reasons:
            self.reasons.append(reason)

    def drop_without_consent(self, n: int) -> None:
        """n rows timed where the registry denies this stream: counted, nothing of them kept."""
        self.quarantine_rows(n, f"no consent: {self.stream} (rows dropped, nothing kept)")
        self.rows_no_consent += n
        self.purge_landing = True


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
    """Good rows per lake partition, gathered before the partitions are rewritten. A source is
    an Arrow table (binary segments) or a SQL SELECT over a DuckDB temp table (CSV groups)."""

    def __init__(self):
        self.sources: dict[tuple[str, str, str, str], list[pa.Table | str]] = defaultdict(list)
        self.segments: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        # partitions the CSV single pass already wrote in full (kept old rows + new rows) to a
        # temp file beside the partition; _write_partitions fsyncs and renames them
        self.prepared: dict[tuple[str, str, str, str], Path] = {}

    def touch(self, seg: Segment) -> None:
        """Mark a segment as (re)processed: its earlier rows, if any, leave the lake."""
        self.segments[(seg.stream, seg.user_id, seg.device_id)].add(seg.rel)

    def add_table(self, seg: Segment, table: pa.Table, ts: np.ndarray) -> None:
        """File one segment's good rows under their partitions, split by UTC date."""
        self.touch(seg)
        if not len(table):
            return
        key = (seg.stream, seg.user_id, seg.device_id)
        days = ts // DAY_US
        if (days == days[0]).all():
            self.sources[(*key, _day_str(days[0]))].append(table)
            return
        for d in np.unique(days):
            self.sources[(*key, _day_str(d))].append(table.filter(pa.array(days == d)))

    def add_sql(self, key: tuple[str, str, str, str], select: str) -> None:
        self.sources[key].append(select)


def _day_str(day_number) -> str:
    return str(np.datetime64(int(day_number), "D"))


def init_lake(lake: Path) -> None:
    """Write a zero-row Parquet file per stream under lake/_schemas/ so readers (dbt's
    lake_scan macro) know every stream's columns even before its first segment lands. Missing
    or outdated files are written side by side (each atomically, with its own fsync): on a new
    data root the six fsyncs then wait together instead of one after another."""
    todo = []
    for stream in (BINARY_STREAM, *CSV_STREAMS):
        target = lake / "_schemas" / f"{stream}.parquet"
        schema = lake_schema(stream)
        if not target.exists() or pq.read_schema(target) != schema:
            todo.append((schema, target))
    if todo:
        with ThreadPoolExecutor(len(todo)) as pool:
            list(pool.map(lambda st: write_parquet_atomic(st[0].empty_table(), st[1]), todo))


def partition_path(lake: Path, stream: str, day: str, user_id: str, device_id: str) -> Path:
    return lake / stream / f"date={day}" / f"{user_id}~{device_id}.parquet"


_ARROW_TO_SQL = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE",
                 pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR"}


def _write_partitions(con, lake: Path, batch: _Batch) -> int:
    """Rewrite each touched partition: the old file's rows minus those of the segments being
    (re)processed, plus the new rows, in time order, to a temp file that is fsynced and
    renamed over the partition. Arrow sources (binary segments) are written by pyarrow;
    SQL sources (CSV) by DuckDB's parallel Parquet writer, without leaving DuckDB (each is the
    faster path for its input, measured in `make bench`). A partition the CSV single pass
    already wrote (`batch.prepared`) is only fsynced and renamed -- or, if other sources also
    have rows for it (a segment crossing midnight into it), merged with them first."""
    keys = sorted(set(batch.sources) | set(batch.prepared))
    for key in keys:
        stream, user, device, day = key
        target = partition_path(lake, stream, day, user, device)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        redo = sorted(batch.segments[(stream, user, device)])
        sources = batch.sources.get(key, [])
        prepared = batch.prepared.get(key)
        if prepared is not None and not sources:
            tmp = prepared
        elif prepared is not None:  # its kept old rows are in the prepared file already
            sources = [f"SELECT * FROM read_parquet('{_sql_str(prepared.as_posix())}', hive_partitioning=false)",
                       *sources]
            _write_sql_partition(con, sources, None, tmp, redo, lake_schema(stream))
            prepared.unlink()
        elif all(isinstance(src, pa.Table) for src in sources):
            _write_arrow_partition(sources, target, tmp, redo, lake_schema(stream))
        else:
            _write_sql_partition(con, sources, target, tmp, redo, lake_schema(stream))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    return len(keys)


def _write_arrow_partition(tables: list[pa.Table], target: Path, tmp: Path, redo: list[str],
                           schema: pa.Schema) -> None:
    parts = [t.cast(schema) for t in tables]
    if target.exists():
        old = pq.read_table(target, schema=schema)
        parts.insert(0, old.filter(pc.invert(pc.is_in(old["segment_id"], pa.array(redo, pa.string())))))
    new = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    ts = new.column("ts_us").to_numpy()
    if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():
        new = new.take(pc.sort_indices(new, sort_keys=[("ts_us", "ascending")]))
    pq.write_table(new, tmp, compression="zstd", row_group_size=1 << 20)


_ARROW_TO_SQL = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE",
                 pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR"}


def _in_time_order(con, query: str, params: dict) -> bool:
    """Rows of a single source already in time order (the usual case: writers append in
    order) need no sort; checking costs one column scan in numpy."""
    ts = con.execute(f"SELECT ts_us FROM ({query})", params).fetchnumpy()["ts_us"]
    return bool(len(ts) < 2 or (ts[1:] >= ts[:-1]).all())


def _write_sql_partition(con, sources: list, target: Path | None, tmp: Path, redo: list[str],
                         schema: pa.Schema) -> None:
    cols = ", ".join(f'CAST("{f.name}" AS {_ARROW_TO_SQL[f.type]}) AS "{f.name}"' for f in schema)
    selects, params, arrow = [], {}, []
    for i, src in enumerate(sources):
        if isinstance(src, pa.Table):
            arrow.append(name := f"_arrow_src_{i}")
            con.register(name, src)
            src = f"SELECT * FROM {name}"
        selects.append(f"SELECT {cols} FROM ({src})")
    if target is not None and target.exists():
        params["redo"] = redo
        selects.insert(0, f"SELECT {cols} FROM read_parquet('{target}') "
                          "WHERE NOT list_contains($redo, segment_id)")
    try:
        query = " UNION ALL ".join(selects)
        if len(selects) > 1 or not _in_time_order(con, query, params):
            query += " ORDER BY ts_us"
        con.execute(f"COPY ({query}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd, "
                    "COMPRESSION_LEVEL 1)", params)
    finally:
        for name in arrow:
            con.unregister(name)


# ---------------------------------------------------------------------------------------------
def decode_binary(seg: Segment, now_us: int, consent: Registry | None = None,
                  ) -> tuple[pa.Table, np.ndarray, pa.Table | None]:
    """Validate and decode one binary segment. Returns (good rows, their ts, rejects).

    Rows timed where the consent registry denies the `events` stream are dropped (counted as
    quarantined, nothing of them kept); key identity survives only where both the segment's
    header flag and a `keystroke_dynamics` grant in the registry cover the record."""
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
    consent = consent or Registry(None)
    denied = ~consent.allowed_mask(seg.user_id, BINARY_STREAM, ts)
    if denied.any():  # no consent: dropped before anything else looks at them
        seg.drop_without_consent(int(denied.sum()))
    bad = (bad_type | bad_ts) & ~denied
    data = recs["data"]
    d0, d1 = data[:, 0], data[:, 1]
    keys_ok = (consent.allowed_mask(seg.user_id, KEYSTROKE_DYNAMICS, ts) if header.key_identity_consent
               else np.zeros(n, bool))
    leaked = np.isin(etype, ev.KEY_TYPES) & ((d0 != 0) | (d1 != 0)) & ~keys_ok & ~bad & ~denied
    if leaked.any():  # key identity never reaches the lake without consent
        d0 = np.where(leaked, 0, d0)
        d1 = np.where(leaked, 0, d1)
        seg.note = f"key codes scrubbed (no keystroke-dynamics consent): {int(leaked.sum())} records"
        seg.purge_landing = True
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
    good = ~bad & ~denied
    # app names: dictionary-encode the raw 32-byte values (hash-based, in Arrow), then decode
    # each distinct value once -- no per-record Python work, no sort of 32-byte strings
    names = np.ascontiguousarray(recs["app_name"][good])
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(ev.RECORD_SIZE // 2), len(names),
                                                 [None, pa.py_buffer(names)])
    enc = pc.dictionary_encode(fixed)
    dictionary = pa.array([b.rstrip(b"\0").decode("utf-8", "replace") for b in
                           enc.dictionary.to_pylist()], pa.string())
    app = pa.DictionaryArray.from_arrays(enc.indices, dictionary)
    m = int(good.sum())
    seg.rows_written = m
    table = pa.table({
        "ts_us": ts[good], "event_type": etype[good].astype(np.int32),
        "process_id": recs["process_id"][good].astype(np.int64),
        "app_name": app.cast(pa.string()),
        "window_handle": recs["window_handle"][good].astype(np.int64),
        "data_0": d0[good].astype(np.int64), "data_1": d1[good].astype(np.int64),
        "data_2": data[:, 2][good].astype(np.int64),
        **_identity(seg, m),
    })
    return table, ts[good], rejects


def _identity(seg: Segment, m: int) -> dict[str, pa.Array]:
    """user_id, device_id, segment_id for m rows (constant per segment)."""
    zeros = pa.array(np.zeros(m, np.int32))
    return {k: pa.DictionaryArray.from_arrays(zeros, pa.array([v], pa.string())).cast(pa.string())
            for k, v in (("user_id", seg.user_id), ("device_id", seg.device_id), ("segment_id", seg.rel))}


def read_csv_header(seg: Segment, stream: CsvStream) -> list[str]:
    with open(seg.path, "rb") as fh:
        first = fh.readline()
    if not first.strip():
        data_lines = _count_rows(seg)
        raise FileRejected("schema: empty file, no header row", rows=data_lines)
    try:
        header = next(csv.reader([first.decode("utf-8").rstrip("\r\n")]))
    except UnicodeDecodeError:
        raise FileRejected("schema: header row is not UTF-8", rows=_count_rows(seg)) from None
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
        raise FileRejected("schema: " + "; ".join(parts), rows=_count_rows(seg))
    return header


@dataclass(frozen=True)
class _Rule:
    """One declared constraint of a CSV stream: a row is bad when it fires. `kind` is "null"
    (required value missing), "below" (< lo), "above" (> hi), "outside" (< lo or > hi) or
    "notin" (not one of `values`). The same rules are evaluated per row in SQL (`sql`) and, on
    the single-pass path, over a written file's exact column statistics (`_may_fire`)."""
    column: str
    kind: str
    reason: str
    lo: float | None = None
    hi: float | None = None
    values: tuple[str, ...] = ()

    @property
    def sql(self) -> str:
        c = f'"{self.column}"'
        if self.kind == "null":
            return f"{c} IS NULL"
        if self.kind == "below":
            return f"{c} < {self.lo}"
        if self.kind == "above":
            return f"{c} > {self.hi}"
        if self.kind == "outside":
            return f"{c} < {self.lo} OR {c} > {self.hi}"
        return f"{c} NOT IN (" + ", ".join("'" + v + "'" for v in self.values) + ")"


def _rules(stream: CsvStream, now_us: int) -> list[_Rule]:
    """Every declared constraint of the stream (focuslake.schemas), in reporting order."""
    rules = [_Rule("ts_us", "null", "missing required value: ts_us"),
             _Rule("ts_us", "outside", "ts_us out of range (before 2000 or in the future)",
                   lo=MIN_TS_US, hi=now_us + MAX_FUTURE_SKEW_US)]
    for c in stream.columns[1:]:
        if c.required:
            rules.append(_Rule(c.name, "null", f"missing required value: {c.name}"))
        if c.min is not None:
            rules.append(_Rule(c.name, "below", f"{c.name} below minimum {c.min:g}", lo=c.min))
        if c.max is not None:
            rules.append(_Rule(c.name, "above", f"{c.name} above maximum {c.max:g}", hi=c.max))
        if c.accepted:
            rules.append(_Rule(c.name, "notin", f"{c.name} not one of {list(c.accepted)}",
                               values=tuple(c.accepted)))
    return rules


def _validation_rules(stream: CsvStream, now_us: int) -> list[tuple[str, str]]:
    """(condition that makes a row bad, reason) for every declared constraint of the stream."""
    return [(r.sql, r.reason) for r in _rules(stream, now_us)]


def _ok_sql(rules) -> str:
    """A cheap vectorised flag: true when no rule fires (NULL comparisons count as not firing)."""
    return "NOT (" + " OR ".join(f"coalesce({cond}, false)" for cond, _ in rules) + ")"


def _reason_sql(rules) -> str:
    """The first rule that fires, as text; evaluated only for rows already known bad."""
    return "CASE " + " ".join(f"WHEN {cond} THEN " + "'" + msg.replace("'", "''") + "'"
                              for cond, msg in rules) + " END"


def _consent_sql(con, stream: CsvStream, segs: list[Segment], consent: Registry, group_no: int) -> str:
    """SQL for "this row's time is covered by consent for its stream": a constant when no
    segment of the group has a denied interval (the usual case), else a lookup in a small
    temp table of the denied intervals per file."""
    denied = [(s.path.as_posix(), a, b) for s in segs for a, b in consent.denied(s.user_id, stream.name)]
    if not denied:
        return "true"
    name = f"denied_{stream.name}_{group_no}"
    con.execute(f"CREATE TEMP TABLE {name} (filename VARCHAR, a BIGINT, b BIGINT)")
    con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?)", denied)
    return (f"NOT EXISTS (SELECT 1 FROM {name} d WHERE d.filename = src.filename "
            "AND src.ts_us >= d.a AND src.ts_us < d.b)")


def decode_csv_group(con, stream: CsvStream, segs: list[Segment], header: list[str], batch: _Batch,
                     rejects_out: dict[str, list[pa.Table]], now_us: int, group_no: int,
                     consent: Registry | None = None) -> None:
    """Parse files sharing one header with a single DuckDB scan, validating rows in the same
    statement; file the good rows under their partitions as SELECTs over the checked table.
    Rows timed where the consent registry denies the stream are dropped first: counted as
    quarantined, nothing of them kept (not even as reject evidence)."""
    types = {c.name: c.sql_type for c in stream.columns}
    columns = "{" + ", ".join(f"'{h}': '{types[h]}'" for h in header) + "}"
    files = [s.path.as_posix() for s in segs]
    table = f"checked_{stream.name}_{group_no}"
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    cols = ", ".join(f'"{c}"' for c in stream.names)
    rules = _validation_rules(stream, now_us)
    consented = _consent_sql(con, stream, segs, consent or Registry(None), group_no)
    con.execute(f"""CREATE TEMP TABLE {table} AS
        SELECT *, _consent AND {_ok_sql(rules)} AS _ok FROM (
            SELECT {cols}, filename, {consented} AS _consent
            FROM read_csv($files, header=true, columns={columns}, filename=true, store_rejects=true,
                          auto_detect=false, delim=',', quote='"', escape='"', strict_mode=true) AS src)""",
                {"files": files})
    # parser rejects: one row per bad line (a line may carry several errors)
    by_path = {s.path.as_posix(): s for s in segs}
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
    for path, n, ngood, nden in con.execute(
            f"SELECT filename, count(*), count(*) FILTER (WHERE _ok), count(*) FILTER (WHERE NOT _consent) "
            f"FROM {table} GROUP BY ALL").fetchall():
        s = by_path[path]
        s.rows_read += n
        s.rows_written += ngood
        if nden:
            s.drop_without_consent(nden)
    bad = con.execute(f"""SELECT filename, {_reason_sql(rules)}, to_json(struct_pack({cols}))
                          FROM {table} WHERE NOT _ok AND _consent ORDER BY filename""").fetchall()
    for path, why, raw in bad:
        s = by_path[path]
        s.quarantine_rows(1, why)
        rejects_out[s.rel].append(pa.table({"line": pa.array([None], pa.int64()), "reason": [why],
                                            "raw": [raw]}, schema=REJECTS_SCHEMA))
    for s in segs:
        batch.touch(s)
    parts = con.execute(f"SELECT DISTINCT filename, ts_us // {DAY_US} FROM {table} "
                        "WHERE _ok ORDER BY ALL").fetchall()
    for path, day in parts:
        s = by_path[path]
        batch.add_sql((s.stream, s.user_id, s.device_id, _day_str(day)),
                      f"SELECT {cols}, '{s.user_id}' AS user_id, '{s.device_id}' AS device_id, "
                      f"'{_sql_str(s.rel)}' AS segment_id FROM {table} WHERE _ok "
                      f"AND filename = '{_sql_str(path)}' AND ts_us // {DAY_US} = {day}")


def _sql_str(v: str) -> str:
    return v.replace("'", "''")


# -- the single pass ---------------------------------------------------------------------------
# A partition's new CSV segments without a single bad row (the usual case) need no reject capture
# and no materialised checked table: one COPY parses them strictly and writes the whole new
# partition (kept old rows + new rows) to its temp file, in one streaming parallel pass. The
# pass is optimistic and proves afterwards that nothing was bad: a parse error or an
# accepted-values violation aborts it, and every other rule (required, min, max, the ts_us range)
# and "all rows in this partition's day" are decided from the written file's exact column
# statistics (COPY ... RETURN_STATS). Anything it cannot prove -- a bad row, a row of another
# day, denied consent on that day, inexact statistics, a NaN -- throws the attempt away and the
# partition's segments take the two-pass path (decode_csv_group), which finds, explains and
# quarantines every bad row.
def _stat_number(st: dict, key: str, sql_type: str) -> float | None:
    """An exact numeric min/max from COPY ... RETURN_STATS, else None (nothing proven)."""
    if st.get(key) is None or st.get(f"{key}_is_exact") != "true":
        return None
    try:
        return int(st[key]) if sql_type in ("BIGINT", "INTEGER") else float(st[key])
    except ValueError:
        return None


def _may_fire(rule: _Rule, st: dict | None, sql_type: str) -> bool:
    """False only when the exact column statistics of a written file prove that `rule` fires
    on none of its rows (with the SQL path's semantics: NULLs fire only "null", NaN is above
    every number)."""
    if rule.kind == "notin" or st is None:  # accepted values: not decidable from min/max
        return True
    try:
        values, nulls = int(st["num_values"]), int(st["null_count"])
        nans = int(st.get("nan_count", 1 if st.get("has_nan") == "true" else 0))
    except (KeyError, ValueError):
        return True
    if rule.kind == "null":
        return nulls != 0
    if nans and rule.kind in ("above", "outside"):
        return True
    if values - nulls - nans <= 0:
        return False  # only NULLs (and NaN for "below"): no comparison fires
    lo, hi = _stat_number(st, "min", sql_type), _stat_number(st, "max", sql_type)
    if rule.kind in ("below", "outside") and (lo is None or lo < rule.lo):
        return True
    return rule.kind in ("above", "outside") and (hi is None or hi > rule.hi)


def _single_pass_doubt(stream: CsvStream, rules: list[_Rule], stats: dict, day: str) -> str | None:
    """Why the written file is not proven good, or None. (Accepted-values rules were checked per
    row during the pass: a violation aborted it.)"""
    types = {c.name: c.sql_type for c in stream.columns}
    for r in rules:
        if r.kind != "notin" and _may_fire(r, stats.get(f'"{r.column}"'), types[r.column]):
            return f"a row may break: {r.reason}"
    ts = stats.get('"ts_us"', {})
    lo, hi = _stat_number(ts, "min", "BIGINT"), _stat_number(ts, "max", "BIGINT")
    d = (Date.fromisoformat(day) - Date(1970, 1, 1)).days
    if lo is None or hi is None or not (lo // DAY_US == hi // DAY_US == d):
        return f"rows outside {day}"
    return None


def _denied_on_day(consent: Registry, user_id: str, stream: str, day: str) -> bool:
    d0 = (Date.fromisoformat(day) - Date(1970, 1, 1)).days * DAY_US
    return any(a < d0 + DAY_US and b > d0 for a, b in consent.denied(user_id, stream))


def csv_single_pass(con, lake: Path, stream: CsvStream, segs: list[Segment], header: list[str],
                    day: str, batch: _Batch, now_us: int) -> bool:
    """Try to write the partition lake/<stream>/date=<day>/<user>~<device> of `segs` (new
    segments of one user, device and landing date, sharing one header) in a single pass.
    True: the partition's temp file is in batch.prepared and the segments' counts are set.
    False: nothing changed; the caller takes the two-pass path for these segments."""
    import duckdb

    user, device = segs[0].user_id, segs[0].device_id
    target = partition_path(lake, stream.name, day, user, device)
    tmp = target.with_name(f".{target.name}.single.tmp-{os.getpid()}")  # maintenance removes orphans
    types = {c.name: c.sql_type for c in stream.columns}
    columns = "{" + ", ".join(f"'{h}': '{types[h]}'" for h in header) + "}"
    cols = ", ".join(f'"{c}"' for c in stream.names)
    rules = _rules(stream, now_us)
    params: dict = {"files": [s.path.as_posix() for s in segs]}
    # constant identity as one-value ENUMs: written as the same plain Parquet strings, but the
    # writer takes the dictionary as given instead of hashing every row's value (measured:
    # ~12 % of the pass's CPU for the three columns as VARCHAR literals)
    const = lambda v: f"CAST('{_sql_str(v)}' AS ENUM('{_sql_str(v)}'))"
    if len(segs) == 1:
        segment_id = const(segs[0].rel)
    else:
        params["rels"] = [s.rel for s in segs]
        segment_id = "$rels[file_index::BIGINT + 1]"
    query = (f"SELECT {cols}, {const(user)} AS user_id, {const(device)} AS device_id, {segment_id} AS segment_id "
             f"FROM read_csv($files, header=true, columns={columns}, auto_detect=false, delim=',', "
             "quote='\"', escape='\"', strict_mode=true)")
    per_row = [r for r in rules if r.kind == "notin"]
    if per_row:
        query += (" WHERE CASE WHEN " + " OR ".join(f"coalesce({r.sql}, false)" for r in per_row)
                  + " THEN error('single pass: a row breaks a rule') ELSE true END")
    old = target.exists()
    if old:
        schema = lake_schema(stream.name)
        cast = ", ".join(f'CAST("{f.name}" AS {_ARROW_TO_SQL[f.type]}) AS "{f.name}"' for f in schema)
        params["redo"] = sorted(batch.segments[(stream.name, user, device)])
        query = (f"SELECT {cast} FROM read_parquet('{_sql_str(target.as_posix())}', hive_partitioning=false) "
                 f"WHERE NOT list_contains($redo, segment_id) UNION ALL {query}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        row = con.execute(f"COPY ({query}) TO '{_sql_str(tmp.as_posix())}' (FORMAT parquet, "
                          "COMPRESSION zstd, COMPRESSION_LEVEL 1, RETURN_STATS true)", params).fetchone()
        doubt = _single_pass_doubt(stream, rules, row[4], day)
        if doubt is None:
            # read back for the time-order check (and the rows per segment): one or two columns,
            # no thread pool -- the cheapest read of them measured (pq.read_table: ~3x the time)
            ts_seg = pq.ParquetFile(tmp, read_dictionary=["segment_id"]).read(
                columns=["ts_us", "segment_id"] if old or len(segs) > 1 else ["ts_us"], use_threads=False)
            if old or len(segs) > 1:
                counts = {d: n for d, n in zip(*(c.to_pylist() for c in
                          pc.value_counts(ts_seg["segment_id"]).flatten()), strict=True)}
            else:
                counts = {segs[0].rel: int(row[1])}
            if not sum(counts.get(s.rel, 0) for s in segs):
                doubt = "no new rows"
    except duckdb.Error as e:
        doubt = str(e).splitlines()[0]
    if doubt is not None:
        tmp.unlink(missing_ok=True)
        log.debug("single pass declined for %s/%s/%s/%s: %s", stream.name, user, device, day, doubt)
        return False
    ts = ts_seg["ts_us"].to_numpy()
    if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():  # rare: rows not in time order
        tmp2 = target.with_name(f".{target.name}.sorted.tmp-{os.getpid()}")
        con.execute(f"COPY (SELECT * FROM read_parquet('{_sql_str(tmp.as_posix())}', hive_partitioning=false) "
                    f"ORDER BY ts_us) TO '{_sql_str(tmp2.as_posix())}' (FORMAT parquet, COMPRESSION zstd, "
                    "COMPRESSION_LEVEL 1)")
        os.replace(tmp2, tmp)
    for s in segs:
        batch.touch(s)
        s.rows_read = s.rows_written = counts.get(s.rel, 0)
        s.single_pass = True
    batch.prepared[(stream.name, user, device, day)] = tmp
    return True


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


CHUNK_BYTES = int(os.environ.get("FOCUSLAKE_INGEST_CHUNK_MB", "256")) << 20


def _chunks(segs: list[Segment], limit: int) -> list[list[Segment]]:
    """Consecutive runs of segments (landing order: stream/user/device/date) of at most `limit`
    bytes each, so memory stays bounded whatever the backlog, and a partition's segments mostly
    land in one chunk (one rewrite)."""
    out, cur, size = [], [], 0
    for s in segs:
        if cur and size + s.size > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(s)
        size += s.size
    if cur:
        out.append(cur)
    return out


def ingest_landing(paths: Paths, now_us: int | None = None, run_id: str | None = None,
                   chunk_bytes: int = CHUNK_BYTES, csv_single_pass: bool = True) -> dict:
    """Process every new sealed segment in the landing zone, in chunks of at most
    `chunk_bytes` of segments; each chunk is fully written to the lake and recorded in the
    ledger before the next starts. CSV partitions whose new segments are all good are parsed,
    validated and written in one pass (`csv_single_pass=False` forces the two-pass path, which
    gives the same lake). Returns a summary of counts."""
    t0 = time.perf_counter()
    paths.ensure()
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    run_id = run_id or f"ingest-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    ledger = Ledger(paths.ledger)
    consent = Registry(paths)
    timings: dict[str, float] = {}
    lap = [time.perf_counter()]

    def mark(phase: str) -> None:
        now = time.perf_counter()
        timings[phase] = round(timings.get(phase, 0.0) + now - lap[0], 4)
        lap[0] = now

    todo: list[Segment] = []
    partitions = 0
    try:
        known = ledger.known()
        todo = [s for s in discover(paths.landing) if known.get(s.rel) != (s.size, s.mtime_ns)]
        seen_now: set[str] = set()
        init_lake(paths.lake)
        for chunk in _chunks(todo, chunk_bytes):
            partitions += _ingest_chunk(paths, ledger, consent, chunk, seen_now, now_us, run_id, mark,
                                        csv_single_pass)
        ledger.export_parquet(paths.ledger_export)
        mark("ledger")
    finally:
        ledger.close()
        consent.close()

    summary = {
        "run_id": run_id,
        "segments_new": len(todo),
        "segments_ingested": sum(s.status == "ingested" for s in todo),
        "segments_quarantined": sum(s.status == "quarantined" for s in todo),
        "segments_duplicate": sum(s.status == "duplicate" for s in todo),
        "segments_with_row_rejects": sum(1 for s in todo if s.status == "ingested" and s.rows_quarantined),
        "csv_segments_single_pass": sum(s.single_pass for s in todo),
        "rows_read": sum(s.rows_read for s in todo),
        "rows_written": sum(s.rows_written for s in todo),
        "rows_quarantined": sum(s.rows_quarantined for s in todo),
        "rows_no_consent": sum(s.rows_no_consent for s in todo),
        "partitions_written": partitions,
        "landing_purged": sum(s.purge_landing for s in todo),
        "seconds": round(time.perf_counter() - t0, 3),
        "phase_seconds": timings,
    }
    log.info("ingest %s", summary)
    return summary


def _ingest_chunk(paths: Paths, ledger: Ledger, consent: Registry, chunk: list[Segment], seen_now: set[str],
                  now_us: int, run_id: str, mark, single_pass: bool = True) -> int:
    import duckdb

    for s in chunk:
        s.checksum = _sha256(s.path)
    done = ledger.checksum_status([s.checksum for s in chunk])
    batch, rejects = _Batch(), defaultdict(list)
    live: list[Segment] = []
    for s in chunk:
        if s.checksum in done or s.checksum in seen_now:
            s.status = "duplicate"
            s.reasons = [f"same checksum already processed ({done.get(s.checksum, 'this run')})"]
            continue
        seen_now.add(s.checksum)
        try:
            _classify(s)
        except FileRejected as e:
            _quarantine_file(paths, s, e.reason, _count_rows(s), run_id)
            continue
        live.append(s)
    mark("discover_checksum")

    for s in (s for s in live if s.stream == BINARY_STREAM):
        try:
            table, ts, rej = decode_binary(s, now_us, consent)
        except FileRejected as e:
            _quarantine_file(paths, s, e.reason, e.rows, run_id)
            continue
        batch.add_table(s, table, ts)
        if rej is not None:
            rejects[s.rel].append(rej)
    mark("binary_decode")

    con = duckdb.connect()
    try:
        checked: list[tuple[Segment, CsvStream, tuple[str, ...]]] = []
        for name, stream in CSV_STREAMS.items():
            for s in (s for s in live if s.stream == name):
                try:
                    checked.append((s, stream, tuple(read_csv_header(s, stream))))
                except FileRejected as e:
                    _quarantine_file(paths, s, e.reason, e.rows, run_id)
        for s, _, _ in checked:
            batch.touch(s)  # before any partition is written: every redone segment is known
        two_pass = checked
        if single_pass:
            units: dict[tuple[str, str, str, str], list] = defaultdict(list)
            for s, stream, header in checked:  # one unit per target partition (by landing date)
                units[(stream.name, s.user_id, s.device_id, s.rel.split("/")[3])].append((s, stream, header))
            two_pass = []
            for (name, user, _device, day), members in units.items():
                headers = {h for _, _, h in members}
                if (len(headers) == 1 and not _denied_on_day(consent, user, name, day)
                        and csv_single_pass(con, paths.lake, CSV_STREAMS[name], [m[0] for m in members],
                                            list(members[0][2]), day, batch, now_us)):
                    continue
                two_pass.extend(members)
        groups: dict[tuple[str, tuple[str, ...]], list[Segment]] = defaultdict(list)
        for s, stream, header in two_pass:
            groups[(stream.name, header)].append(s)
        for group_no, ((name, header), segs) in enumerate(groups.items()):
            decode_csv_group(con, CSV_STREAMS[name], segs, list(header), batch, rejects, now_us, group_no, consent)
        mark("csv_parse_validate")
        for rel, tables in rejects.items():
            _write_row_rejects(paths, rel, tables)
        mark("quarantine_write")
        partitions = _write_partitions(con, paths.lake, batch)
        mark("lake_write")
    finally:
        con.close()

    now_rec = time.time_ns() // 1000
    for s in chunk:
        if (s.status == "ingested" and s.rows_read and s.rows_no_consent == s.rows_read
                and consent.forgotten_until(s.user_id) is not None):
            s.forgotten = True  # a forgotten user's old data: counted, but their identity is not recorded again
    entries = [LedgerEntry(
        path=f"forgotten/{s.stream}/{s.checksum[:32]}" if s.forgotten else s.rel, stream=s.stream,
        user_id=None if s.forgotten else s.user_id, device_id=None if s.forgotten else s.device_id,
        segment_id=s.rel if s.status == "ingested" and not s.forgotten else None, size_bytes=s.size,
        mtime_ns=s.mtime_ns, checksum=s.checksum, status=s.status, rows_read=s.rows_read,
        rows_written=s.rows_written, rows_quarantined=s.rows_quarantined,
        reason="; ".join(s.reasons) or None, note=s.note, run_id=run_id, ingested_at_us=now_rec,
        rows_no_consent=s.rows_no_consent)
        for s in chunk]
    for e in entries:
        assert e.rows_read == e.rows_written + e.rows_quarantined, e
    ledger.record(entries)  # after the lake writes: a crash before this only causes a redo
    for s in chunk:
        if s.purge_landing and s.status == "ingested":
            s.path.unlink(missing_ok=True)  # the ledger has it: a re-drop is a checksum no-op
            log.info("removed landing copy of %s: %s", "a forgotten user's segment" if s.forgotten else s.rel,
                     "; ".join(s.reasons) or s.note)
    mark("ledger")
    return partitions


def _count_rows(seg: Segment) -> int:
    """Rows a file that is rejected by its path claims to hold (CSV data lines or records)."""
    if seg.rel.endswith(".bin"):
        return max(0, seg.size - ev.HEADER_SIZE - ev.FOOTER_SIZE) // ev.RECORD_SIZE
    with open(seg.path, "rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)
