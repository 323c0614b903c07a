"""Import an ActivityWatch export into the landing zone, as segments of this project's own
streams, so the ingest, dbt and the quality gate treat it like collector data.

    python -m focuslake.importers.activitywatch <export.json> --user U --device D [--data DIR]
                                                [--hostname H] [--strict]

The export is what aw-server's ``GET /api/0/export`` (and the web UI's "Export all buckets as
JSON") returns, ``{"buckets": {<id>: {id, type, client, hostname, created, events: [...]}}}``,
or a one-bucket export (``/api/0/buckets/<id>/export``, or a bare bucket object). Each event
is ``{id?, timestamp (ISO 8601 with offset), duration (seconds), data}``.

Mapping (docs/activitywatch.md has the whole rule):
* ``currentwindow`` buckets (aw-watcher-window) -> ``active_window`` samples: ``change`` at the
  event's start, ``heartbeat`` on the 5 s epoch grid inside it, ``close`` at its end, so that
  slv_window_intervals (heartbeat merge, pulsetime 6 s; a close ends the interval before it)
  gives back exactly [timestamp, timestamp + duration];
* ``afkstatus`` buckets (aw-watcher-afk) -> ``system_events``: ``not_afk`` where a not-afk
  event starts, ``afk`` where it ends; slv_not_afk_periods takes those periods as they are (no
  input events or counts are made up). AW's afk events carry nothing more (AFK is the time that
  is not not-afk): they are read, counted, and land no row;
* ``web.tab.current`` buckets (aw-watcher-web-*) -> ``app_events`` rows (source
  ``activitywatch``, event_name ``web.tab.current``) with the tab's data and its duration in
  the properties; incognito tabs land without URL and title.
Window and AFK pieces are split at UTC midnight (one segment per stream and UTC day).

Idempotence: every piece of time imported is recorded per user, device and timeline (window,
afk, each web bucket) in ``<data>/imports/activitywatch.sqlite``; a later import lands only
the time not imported before (a newer export that overlaps an older one adds only what is
new, e.g. the grown last event), so re-importing the same export lands nothing. Segment names
derive from their rows (``<stream>-activitywatch-<YYYYMMDD>-<sha256 of the rows>``): a segment
already in the landing zone or the ingest ledger is never written again. Writes follow the
receiver's intent / land / done order, so a crash at any point and a rerun land every piece once.

Bad input: a file that is not an ActivityWatch export (not JSON, no buckets, a bucket without
type or events list, window/afk buckets of several hosts without ``--hostname``, a device that
already has collector window data on the same days) is refused and nothing lands. A bad event
(no or unparsable timestamp, negative or non-numeric duration, data without app/status/url...)
is skipped, as is a bucket of a type this importer does not map; each is counted by reason with
the bucket and event index named, and the summary accounts for every event. ``--strict``
refuses the whole import instead when anything would be skipped.
"""
from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import math
import sqlite3
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from focuslake import importers
from focuslake.config import Paths, apply_no_telemetry
from focuslake.receiver.events import MAX_EVENT_BYTES, parse_timestamp
from focuslake.schemas import CSV_STREAMS, MAX_FUTURE_SKEW_US
from focuslake.segments import PART_SUFFIX, CsvSegmentWriter, check_id, utc_date

SOURCE = "activitywatch"
MARK = f"-{SOURCE}-"            # in the name of every segment this importer writes (focuslake.importers)
KINDS = {"currentwindow": "window", "afkstatus": "afk", "web.tab.current": "web"}
STREAM_OF = {"window": "active_window", "afk": "system_events", "web": "app_events"}
WEB_EVENT_NAME = "web.tab.current"
US = 1_000_000
DAY_US = 86_400 * US
HEARTBEAT_US = 5 * US           # the collector's poll interval; pulsetime is 6 s (docs/metrics.md)
TITLE_LIMIT = 1024              # the collector's title rule (collectors/agent/x11.py clean_title)
MAX_EXAMPLES = 5                # skipped events named per bucket and reason
ONE_US = timedelta(microseconds=1)
SCHEMA = """
CREATE TABLE IF NOT EXISTS covered (      -- every piece of time imported, per timeline
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    timeline   TEXT NOT NULL,             -- window | afk | web:<bucket id>
    start_us   INTEGER NOT NULL,
    end_us     INTEGER NOT NULL,
    segment    TEXT,                      -- landing path holding its rows (NULL: none, afk status)
    import_id  TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    CHECK (end_us > start_us)
);
CREATE INDEX IF NOT EXISTS covered_timeline ON covered (user_id, device_id, timeline, start_us);
CREATE TABLE IF NOT EXISTS imports (
    import_id      TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    export_sha256  TEXT NOT NULL,
    started_at_us  INTEGER NOT NULL,
    summary_json   TEXT
);
"""


class ExportError(Exception):
    """The export is refused as a whole; nothing was landed."""


# --- reading the export ---------------------------------------------------------------------------
def _kind_name(v) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
            int: "number", float: "number"}.get(type(v), type(v).__name__)


def load_export(path: Path) -> tuple[dict[str, dict], str]:
    """(bucket id -> bucket, sha256 of the file), or ExportError saying why it is no export."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ExportError(f"{path}: cannot read it: {e.strerror or e}") from None
    sha = hashlib.sha256(raw).hexdigest()
    try:
        doc = json.loads(raw)
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not UTF-8 text; expected an ActivityWatch JSON export") from None
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: not JSON ({e.msg} at line {e.lineno} column {e.colno}); expected an "
                          "ActivityWatch export (aw-server /api/0/export)") from None
    return buckets_of(doc), sha


def buckets_of(doc) -> dict[str, dict]:
    """The buckets of an all-buckets export, a one-bucket export, or a bare bucket object."""
    if not isinstance(doc, dict):
        raise ExportError(f"the top level is a JSON {_kind_name(doc)}; expected an object with \"buckets\" "
                          "(aw-server /api/0/export) or one bucket")
    if "buckets" in doc:
        b = doc["buckets"]
        if not isinstance(b, dict):
            raise ExportError(f"\"buckets\" is a JSON {_kind_name(b)}; expected an object of bucket id -> bucket")
        items = list(b.items())
    elif "events" in doc and "type" in doc:  # one bucket, as aw-server's export_bucket builds it
        items = [(doc.get("id"), doc)]
    else:
        keys = ", ".join(sorted(map(str, doc))[:8]) or "none"
        raise ExportError(f"no \"buckets\" in the export (top-level keys: {keys}); expected an "
                          "ActivityWatch export (aw-server /api/0/export)")
    if not items:
        raise ExportError("the export has no buckets")
    out: dict[str, dict] = {}
    for n, (key, b) in enumerate(items):
        if not isinstance(b, dict):
            raise ExportError(f"bucket {key!r}: a JSON {_kind_name(b)}, expected an object")
        bid = key if isinstance(key, str) and key else b.get("id")
        if not isinstance(bid, str) or not bid:
            raise ExportError(f"bucket number {n}: no id")
        t = b.get("type")
        if not isinstance(t, str) or not t:
            raise ExportError(f"bucket {bid!r}: no \"type\" (currentwindow, afkstatus, web.tab.current, ...)")
        if not isinstance(b.get("events"), list):
            raise ExportError(f"bucket {bid!r}: \"events\" is missing or not an array (an export holds "
                              "every bucket's events)")
        out[bid] = b
    return out


def _one_line(s: str) -> str:
    """The collector's title rule: control characters become spaces, at most 1024 characters."""
    return "".join(" " if (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0) else ch for ch in s)[:TITLE_LIMIT]


@dataclass(frozen=True)
class Span:
    start_us: int
    end_us: int
    bucket: str
    index: int
    payload: tuple    # window: (app, title); afk: (status,); web: (sorted data items JSON,)


def parse_event(kind: str, bucket: str, index: int, ev, now_us: int) -> tuple[Span | None, str | None]:
    """One event -> (Span, None), or (None, the reason it is skipped)."""
    if not isinstance(ev, dict):
        return None, f"event is a JSON {_kind_name(ev)}, not an object"
    errors: list[str] = []
    start = parse_timestamp(ev.get("timestamp"), now_us, errors)
    if start is None:
        return None, errors[0]
    d = ev.get("duration", 0)  # aw-core and aw-server-rust default a missing duration to 0
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        return None, f"duration: must be a number of seconds, got a JSON {_kind_name(d)}"
    if not math.isfinite(d):
        return None, "duration: not a finite number"
    if d < 0:
        return None, f"duration: negative ({d:g} s)"
    try:
        end = start + timedelta(seconds=d) // ONE_US  # rounded to the microsecond like aw-core
    except OverflowError:
        return None, f"duration: too large ({d:g} s)"
    if end > now_us + MAX_FUTURE_SKEW_US:
        return None, "ends more than 24 h in the future"
    data = ev.get("data")
    if not isinstance(data, dict):
        return None, "data: missing or not an object"
    if kind == "window":
        app, title = data.get("app"), data.get("title")
        if not isinstance(app, str) or not app.strip():
            return None, "data.app: missing or not a non-empty string"
        if title is not None and not isinstance(title, str):
            return None, f"data.title: a JSON {_kind_name(title)}, not a string"
        payload = (_one_line(app), _one_line(title) if title else None)
    elif kind == "afk":
        status = data.get("status")
        if status not in ("afk", "not-afk"):
            return None, f"data.status: must be \"afk\" or \"not-afk\", got {str(status)[:40]!r}"
        payload = (status,)
    else:
        if not isinstance(data.get("url"), str) or not data["url"]:
            return None, "data.url: missing or not a non-empty string"
        if data.get("title") is not None and not isinstance(data["title"], str):
            return None, f"data.title: a JSON {_kind_name(data['title'])}, not a string"
        payload = (json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")),)
        if len(payload[0].encode()) > MAX_EVENT_BYTES:  # e.g. a data: URL; the receiver's limit
            return None, f"data: larger than {MAX_EVENT_BYTES} bytes of JSON (the receiver's limit for an event)"
    return Span(start, end, bucket, index, payload), None


# --- intervals ------------------------------------------------------------------------------------
class Coverage:
    """Disjoint half-open intervals [start, end), sorted."""

    def __init__(self, intervals=()):
        self.starts: list[int] = []
        self.ends: list[int] = []
        for s, e in sorted(intervals):
            self.add(s, e)

    def subtract(self, s: int, e: int) -> list[tuple[int, int]]:
        """The parts of [s, e) not covered."""
        out, cur = [], s
        i = bisect.bisect_right(self.ends, s)
        while i < len(self.starts) and self.starts[i] < e and cur < e:
            if self.starts[i] > cur:
                out.append((cur, self.starts[i]))
            cur = max(cur, self.ends[i])
            i += 1
        if cur < e:
            out.append((cur, e))
        return out

    def add(self, s: int, e: int) -> None:
        i = bisect.bisect_left(self.ends, s)     # first interval ending at or after s (touching)
        j = bisect.bisect_right(self.starts, e)  # past the last one starting at or before e
        if i < j:
            s, e = min(s, self.starts[i]), max(e, self.ends[j - 1])
        self.starts[i:j] = [s]
        self.ends[i:j] = [e]


def split_at_midnight(s: int, e: int) -> list[tuple[int, int]]:
    out = []
    while s // DAY_US != (e - 1) // DAY_US:
        cut = (s // DAY_US + 1) * DAY_US
        out.append((s, cut))
        s = cut
    out.append((s, e))
    return out


# --- the report -----------------------------------------------------------------------------------
@dataclass
class BucketReport:
    bucket_id: str
    type: str
    kind: str | None
    hostname: str | None
    events: int = 0
    imported: int = 0         # events with time landed (afk: recorded as AFK, no row)
    covered: int = 0          # events entirely imported before / overlapped within the export
    zero: int = 0             # zero-duration events: no time to land
    skipped: Counter = field(default_factory=Counter)   # reason -> events
    examples: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    landed_us: int = 0        # window / web seconds, afk: not-afk seconds landed
    already_us: int = 0       # time imported by an earlier import
    overlap_us: int = 0       # time an earlier event of the same timeline in this export had
    not_imported: str | None = None   # why the whole bucket was skipped

    def skip(self, index: int, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples[reason]) < MAX_EXAMPLES:
            self.examples[reason].append(index)

    def as_dict(self) -> dict:
        return {"bucket": self.bucket_id, "type": self.type, "kind": self.kind, "events": self.events,
                "imported": self.imported, "already_imported": self.covered, "zero_duration": self.zero,
                "skipped": dict(self.skipped), "skipped_examples": {k: list(v) for k, v in self.examples.items()},
                "landed_s": self.landed_us / US, "already_imported_s": self.already_us / US,
                "overlap_s": self.overlap_us / US, "not_imported": self.not_imported}


@dataclass
class ImportResult:
    export: str
    export_sha256: str
    user_id: str
    device_id: str
    import_id: str
    buckets: list[BucketReport]
    segments_written: list[str] = field(default_factory=list)
    segments_existing: list[str] = field(default_factory=list)
    rows: Counter = field(default_factory=Counter)    # stream -> rows in written segments

    @property
    def events(self) -> int:
        return sum(b.events for b in self.buckets)

    @property
    def skipped(self) -> int:
        return sum(sum(b.skipped.values()) for b in self.buckets)

    def skip_messages(self) -> list[str]:
        """One line per bucket and reason, naming the bucket and the first event indexes."""
        out = []
        for b in self.buckets:
            for reason, n in sorted(b.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
                idx = b.examples.get(reason) or []
                where = (f" (event index {', '.join(map(str, idx))}{', ...' if n > len(idx) else ''})"
                         if idx else "")
                out.append(f"bucket {b.bucket_id!r}: {n} event(s) skipped: {reason}{where}")
        return out

    def as_dict(self) -> dict:
        return {"export": self.export, "export_sha256": self.export_sha256, "user_id": self.user_id,
                "device_id": self.device_id, "import_id": self.import_id, "events": self.events,
                "skipped": self.skipped, "segments_written": self.segments_written,
                "segments_existing": self.segments_existing, "rows": dict(self.rows),
                "buckets": [b.as_dict() for b in self.buckets]}


# --- the import state -----------------------------------------------------------------------------
def state_path(paths: Paths) -> Path:
    return paths.root / "imports" / "activitywatch.sqlite"


def _in_ledger(paths: Paths, rels: list[str]) -> set[str]:
    """Landing paths the ingest ledger already recorded (a segment may have left the landing)."""
    if not paths.ledger.exists() or not rels:
        return set()
    con = sqlite3.connect(f"file:{paths.ledger}?mode=ro", uri=True, timeout=60)
    try:
        out: set[str] = set()
        for i in range(0, len(rels), 500):
            chunk = rels[i:i + 500]
            out.update(r for (r,) in con.execute(
                f"SELECT path FROM segments WHERE path IN ({','.join('?' * len(chunk))})", chunk))
        return out
    finally:
        con.close()


def _resolve_pending(con: sqlite3.Connection, paths: Paths) -> None:
    """Pieces of an import that stopped between its intent and its end: kept when their segment
    landed (a segment is all or nothing), dropped otherwise (a rerun lands them again)."""
    segs = [s for (s,) in con.execute("SELECT DISTINCT segment FROM covered WHERE state = 'pending' "
                                      "AND segment IS NOT NULL")]
    landed = _in_ledger(paths, segs) | {s for s in segs if (paths.landing / s).exists()}
    with con:
        for s in segs:
            if s in landed:
                con.execute("UPDATE covered SET state = 'done' WHERE state = 'pending' AND segment = ?", [s])
            else:
                con.execute("DELETE FROM covered WHERE state = 'pending' AND segment = ?", [s])
        con.execute("DELETE FROM covered WHERE state = 'pending'")  # afk-status pieces: no rows


# --- the import -----------------------------------------------------------------------------------
def _timeline(kind: str, bucket: str) -> str:
    return f"web:{bucket}" if kind == "web" else kind


def _select_buckets(buckets: dict[str, dict], hostname: str | None,
                    reports: dict[str, BucketReport]) -> None:
    hosts = sorted({str(b.get("hostname")) for bid, b in buckets.items()
                    if KINDS.get(b["type"]) in ("window", "afk")})
    if hostname is None and len(hosts) > 1:
        raise ExportError(f"the export holds window/AFK buckets of {len(hosts)} hosts ({', '.join(hosts)}): "
                          "import one host per device with --hostname H (and its own --device)")
    for bid, b in buckets.items():
        r = reports[bid]
        if r.kind is None:
            r.not_imported = (f"type {b['type']!r} is not imported (currentwindow, afkstatus and "
                              "web.tab.current are)")
        elif hostname is not None and str(b.get("hostname")) != hostname and not (
                r.kind == "web" and b.get("hostname") in (None, "", "unknown")):
            r.not_imported = f"host {b.get('hostname')!r}, not --hostname {hostname!r}"


_COLUMNS = {s: tuple(CSV_STREAMS[s].names) for s in STREAM_OF.values()}


def _line(stream: str, **values) -> list:
    """One CSV row in the stream's column order (focuslake.schemas, the one home of columns)."""
    cols = _COLUMNS[stream]
    if values.keys() != set(cols):
        raise ValueError(f"{stream}: columns {sorted(values)} != {sorted(cols)}")
    return [values[c] for c in cols]


def plan_rows(kind: str, pieces: list[tuple[int, int, Span]], received_us: int) -> dict[str, list[tuple[list, int]]]:
    """CSV rows per UTC day for one kind's landed pieces: day -> [(row, piece number), ...], in
    time order (pieces come disjoint and sorted; a close sorts before the next change at the
    same time, as the models order them). A piece's rows all go to the segment of the day it
    starts (window and AFK pieces never cross midnight, they were split there; a piece ending
    at midnight keeps its close sample), so every piece lives in exactly one segment."""
    by_day: dict[str, list] = defaultdict(list)
    stream = STREAM_OF[kind]
    assert CSV_STREAMS[stream].names[0] == "ts_us"  # every stream's first column (schemas.py)
    for n, (s, e, sp) in enumerate(pieces):
        if kind == "window":
            app, title = sp.payload
            hb = _line(stream, ts_us=0, app_name=app, window_title=title, pid=None, reason="heartbeat")
            rows = [_line(stream, ts_us=s, app_name=app, window_title=title, pid=None, reason="change")]
            rows += [[g, *hb[1:]] for g in range((s // HEARTBEAT_US + 1) * HEARTBEAT_US, e, HEARTBEAT_US)]
            rows.append(_line(stream, ts_us=e, app_name=app, window_title=title, pid=None, reason="close"))
        elif kind == "afk":
            if sp.payload[0] != "not-afk":
                continue
            rows = [_line(stream, ts_us=s, event="not_afk"), _line(stream, ts_us=e, event="afk")]
        else:
            data = json.loads(sp.payload[0])
            incognito = data.get("incognito") is True
            props = {k: v for k, v in data.items() if not (incognito and k in ("url", "title"))}
            props["duration_s"] = (e - s) / US
            event_id = "aw-" + hashlib.sha256(json.dumps([sp.bucket, s, e, sp.payload[0]]).encode()).hexdigest()[:32]
            rows = [_line(stream, ts_us=s, event_id=event_id, event_name=WEB_EVENT_NAME, event_type="browser",
                          session_id=None, source=SOURCE,
                          properties_json=json.dumps(props, ensure_ascii=False, sort_keys=True,
                                                     separators=(",", ":")),
                          context_json=json.dumps({"aw_bucket": sp.bucket, "importer": SOURCE}, sort_keys=True,
                                                  separators=(",", ":")),
                          consent_json=None, received_us=received_us)]
        by_day[utc_date(s)].extend((r, n) for r in rows)
    return by_day


def segment_name(stream: str, day: str, lines: list[list]) -> str:
    """Content-derived, in the form that marks imported rows for the quality gate
    (focuslake.importers: the one rule)."""
    digest = hashlib.sha256(json.dumps([stream, day, lines], ensure_ascii=False).encode()).hexdigest()
    return importers.segment_name(stream, SOURCE, day, digest)


def _collector_days(paths: Paths, user: str, device: str, days: set[str]) -> list[str]:
    """Days on which the device already has active_window segments not written by an import."""
    out = []
    for day in sorted(days):
        d = paths.landing / "active_window" / user / device / day
        if d.is_dir() and any(importers.source_of(f"active_window/{user}/{device}/{day}/"
                                                  + p.name.removesuffix(PART_SUFFIX)) == importers.COLLECTOR
                              for p in d.iterdir() if not p.name.startswith(".")):
            out.append(day)
    return out


def import_export(paths: Paths, export: str | Path, user_id: str, device_id: str, *,
                  hostname: str | None = None, strict: bool = False, now_us: int | None = None,
                  durable: bool = True) -> ImportResult:
    """Land an ActivityWatch export for one user and device. Raises ExportError (nothing landed)
    when the export is refused; otherwise returns what was landed, skipped and why."""
    try:
        check_id("user_id", user_id)
        check_id("device_id", device_id)
    except ValueError as e:
        raise ExportError(str(e)) from None
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    buckets, sha = load_export(Path(export))
    reports = {bid: BucketReport(bid, b["type"], KINDS.get(b["type"]), b.get("hostname"), events=len(b["events"]))
               for bid, b in sorted(buckets.items())}
    _select_buckets(buckets, hostname, reports)

    spans: dict[str, list[Span]] = defaultdict(list)  # timeline -> spans
    newest = 0
    for bid, r in reports.items():
        if r.not_imported:
            continue
        for i, ev in enumerate(buckets[bid]["events"]):
            sp, why = parse_event(r.kind, bid, i, ev, now_us)
            if sp is None:
                r.skip(i, why)
            elif sp.end_us == sp.start_us:
                r.zero += 1
            else:
                spans[_timeline(r.kind, bid)].append(sp)
                newest = max(newest, sp.end_us)
    skipped_buckets = [r for r in reports.values() if r.not_imported]
    result = ImportResult(str(export), sha, user_id, device_id,
                          f"aw-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}",
                          list(reports.values()))
    if strict and (result.skipped or skipped_buckets):
        raise ExportError("--strict: nothing imported, because " + "; ".join(
            [f"bucket {r.bucket_id!r} would be skipped ({r.not_imported})" for r in skipped_buckets]
            + result.skip_messages()))

    sp_path = state_path(paths)
    sp_path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(sp_path, timeout=60)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(SCHEMA)
        _resolve_pending(con, paths)
        landed: dict[str, list[tuple[int, int, Span]]] = {}
        for tl, items in sorted(spans.items()):
            prior = Coverage(con.execute("SELECT start_us, end_us FROM covered WHERE user_id = ? AND device_id = ? "
                                         "AND timeline = ?", [user_id, device_id, tl]).fetchall())
            now = Coverage()
            out = []
            for sp in sorted(items, key=lambda x: (x.start_us, x.end_us, x.bucket, x.index)):
                r = reports[sp.bucket]
                fresh = prior.subtract(sp.start_us, sp.end_us)
                r.already_us += (sp.end_us - sp.start_us) - sum(e - s for s, e in fresh)
                got = False
                for s0, e0 in fresh:
                    new = now.subtract(s0, e0)
                    r.overlap_us += (e0 - s0) - sum(e - s for s, e in new)
                    for s, e in new:
                        now.add(s, e)
                        for s1, e1 in (split_at_midnight(s, e) if r.kind != "web" else [(s, e)]):
                            out.append((s1, e1, sp))
                            if r.kind != "afk" or sp.payload[0] == "not-afk":
                                r.landed_us += e1 - s1
                        got = True
                if got:
                    r.imported += 1
                else:
                    r.covered += 1
            landed[tl] = out

        # rows per stream and day, and the segment of every piece
        segs: dict[tuple[str, str], list[list]] = defaultdict(list)
        piece_seg: list[tuple[str, int, int, str | None]] = []  # timeline, start, end, segment rel
        for tl, pieces in sorted(landed.items()):
            kind = "web" if tl.startswith("web:") else tl
            stream = STREAM_OF[kind]
            owner: dict[int, str] = {}
            for day, rows in plan_rows(kind, pieces, newest).items():
                for row, n in rows:
                    segs[(stream, day)].append(row)
                    owner.setdefault(n, day)
            for n, (s, e, _sp) in enumerate(pieces):
                piece_seg.append((tl, s, e, (stream, owner[n]) if n in owner else None))
        names = {k: (segment_name(k[0], k[1], lines), lines) for k, lines in sorted(segs.items())}

        window_days = {day for (stream, day) in names if stream == "active_window"}
        clash = _collector_days(paths, user_id, device_id, window_days)
        if clash:
            raise ExportError(f"device {device_id!r} of user {user_id!r} already has collector window data on "
                              f"{', '.join(clash)}: one device has one active window at a time, so an import "
                              "must not interleave with it. Import into a device id of its own "
                              f"(e.g. --device {device_id[:17]}-aw)")

        rel = {k: f"{k[0]}/{user_id}/{device_id}/{k[1]}/{name}.csv" for k, (name, _l) in names.items()}
        # A. intent: the pieces and the segments that will hold them (one transaction)
        with con:
            con.execute("INSERT INTO imports (import_id, user_id, device_id, export_sha256, started_at_us) "
                        "VALUES (?, ?, ?, ?, ?)", [result.import_id, user_id, device_id, sha, now_us])
            con.executemany("INSERT INTO covered VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                            [(user_id, device_id, tl, s, e, rel[k] if k else None, result.import_id)
                             for tl, s, e, k in piece_seg])
        # B. the segments, each written once, atomically (segments.py: .part, fsync, rename)
        existing = _in_ledger(paths, list(rel.values()))
        for k, (name, lines) in sorted(names.items()):
            stream, day = k
            if rel[k] in existing or (paths.landing / rel[k]).exists():
                result.segments_existing.append(rel[k])
                continue
            w = CsvSegmentWriter(paths.landing, stream, user_id, device_id, name=name,
                                 rotate_seconds=86_400, durable=durable)
            try:
                w.write_rows(lines)
                w.seal()
            except FileExistsError:  # another import landed the same content meanwhile
                result.segments_existing.append(rel[k])
                continue
            result.segments_written.append(rel[k])
            result.rows[stream] += len(lines)
        # C. done
        with con:
            con.execute("UPDATE covered SET state = 'done' WHERE import_id = ?", [result.import_id])
            con.execute("UPDATE imports SET summary_json = ? WHERE import_id = ?",
                        [json.dumps(result.as_dict(), default=str), result.import_id])
    finally:
        con.close()
    for r in reports.values():  # every event is accounted for
        if r.not_imported:
            continue
        assert r.events == r.imported + r.covered + r.zero + sum(r.skipped.values()), r
    from focuslake.privacy import access_log

    access_log.record(paths, "import", user_id=user_id, source=SOURCE, export_sha256=sha,
                      events=result.events, skipped=result.skipped, segments=len(result.segments_written))
    return result


# --- CLI ------------------------------------------------------------------------------------------
def _fmt_s(us: int) -> str:
    s = us / US
    return f"{s / 3600:,.2f} h" if s >= 3600 else f"{s:,.1f} s"


def print_summary(result: ImportResult, console=None) -> None:
    """The rich summary: per bucket, events read / with time landed / already imported earlier /
    zero length / skipped, and the time landed; then every skip reason with its event indexes."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"ActivityWatch import -> {result.user_id}/{result.device_id}", title_justify="left")
    t.add_column("bucket", no_wrap=True)
    for col in ("events", "landed", "before", "zero", "skipped", "time"):
        t.add_column(col, justify="right", no_wrap=True)
    for b in result.buckets:
        if b.not_imported:
            t.add_row(b.bucket_id, f"{b.events:,}", "-", "-", "-", f"{b.events:,}", "-")
            continue
        landed = _fmt_s(b.landed_us)
        t.add_row(b.bucket_id, f"{b.events:,}", f"{b.imported:,}", f"{b.covered:,}", f"{b.zero:,}",
                  f"{sum(b.skipped.values()):,}", landed)
    console.print(t)
    console.print("landed: events with time landed; before: events imported earlier (or overlapped); "
                  "zero: zero-length events; time: window/web time, or not-afk time of an afk bucket",
                  style="dim", highlight=False)
    for b in result.buckets:
        if b.not_imported:
            console.print(f"[yellow]not imported:[/yellow] bucket {b.bucket_id!r} ({b.events:,} events): "
                          f"{b.not_imported}", highlight=False)
    for line in result.skip_messages():
        console.print(f"[yellow]skipped:[/yellow] {line}", highlight=False)
    for b in result.buckets:
        if b.already_us or b.overlap_us:
            console.print(f"{b.bucket_id}: {_fmt_s(b.already_us)} imported before and {_fmt_s(b.overlap_us)} "
                          "overlapping an earlier event of this export: not landed again", highlight=False)
    rows = ", ".join(f"{n:,} {s}" for s, n in sorted(result.rows.items())) or "no rows"
    console.print(f"Segments written: {len(result.segments_written)} ({rows}); already landed: "
                  f"{len(result.segments_existing)}. Next: `python -m focuslake ingest`, then dbt.",
                  highlight=False)


def main(argv: list[str] | None = None) -> int:
    apply_no_telemetry()
    ap = argparse.ArgumentParser(prog="python -m focuslake.importers.activitywatch",
                                 description="Import an ActivityWatch export (aw-server /api/0/export) "
                                             "into the landing zone. docs/activitywatch.md")
    ap.add_argument("export", type=Path, help="the export's JSON file")
    ap.add_argument("--user", required=True, help="user_id to file the history under")
    ap.add_argument("--device", required=True, help="device_id (its own: not one a collector writes)")
    ap.add_argument("--data", type=Path, default=None, help="data root (default: FOCUSLAKE_DATA, else <repo>/data)")
    ap.add_argument("--hostname", default=None,
                    help="import the window/AFK buckets of this host only (required when the export has several)")
    ap.add_argument("--strict", action="store_true", help="refuse the import if any event or bucket would be skipped")
    ap.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    args = ap.parse_args(argv)
    paths = Paths(args.data.resolve()) if args.data else Paths.from_env()
    from rich.console import Console

    err = Console(stderr=True)
    try:
        result = import_export(paths, args.export, args.user, args.device, hostname=args.hostname,
                               strict=args.strict)
    except ExportError as e:
        err.print(f"[red]refused, nothing imported:[/red] {e}", highlight=False)
        return 2
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
