"""One home for the CSV streams' columns. Writers (collectors, the simulator) and the
ingest's validation both read these declarations; nothing else lists the columns.

Every stream's first column is `ts_us`: integer microseconds since the Unix epoch, UTC.
`user_id` and `device_id` are not CSV columns: they come from the landing path
(landing/<stream>/<user_id>/<device_id>/<YYYY-MM-DD>/<segment>) and are added to every
lake row by the ingest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$")  # user_id / device_id: fits 20 bytes
# Timestamps older than this (2000-01-01) or further than MAX_FUTURE_SKEW_US past the
# ingest's clock are rejected as unparseable clocks, not stored.
MIN_TS_US = 946_684_800_000_000
MAX_FUTURE_SKEW_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str            # DuckDB type used to parse the CSV text
    required: bool = True    # NULL/empty is a row error when required
    min: float | None = None
    max: float | None = None
    accepted: tuple[str, ...] | None = None
    doc: str = ""


@dataclass(frozen=True)
class CsvStream:
    name: str
    columns: tuple[Column, ...]
    doc: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


TS = Column("ts_us", "BIGINT", doc="UTC microseconds since the Unix epoch")

SYSTEM_METRICS = CsvStream("system_metrics", (
    TS,
    Column("cpu_percent", "DOUBLE", min=0, max=100, doc="system-wide CPU %, 0-100"),
    Column("mem_percent", "DOUBLE", min=0, max=100),
    Column("swap_percent", "DOUBLE", required=False, min=0, max=100),
    Column("disk_read_bytes", "BIGINT", min=0, doc="bytes read since the previous sample"),
    Column("disk_write_bytes", "BIGINT", min=0),
    Column("net_sent_bytes", "BIGINT", min=0),
    Column("net_recv_bytes", "BIGINT", min=0),
    Column("battery_percent", "DOUBLE", required=False, min=0, max=100),
    Column("on_ac_power", "BOOLEAN", required=False),
    Column("top_process", "VARCHAR", required=False),
    Column("top_process_cpu", "DOUBLE", required=False, min=0),
), doc="psutil sample every 5 s")

ACTIVE_WINDOW = CsvStream("active_window", (
    TS,
    Column("app_name", "VARCHAR", doc="process name of the focused window"),
    Column("window_title", "VARCHAR", required=False),
    Column("pid", "BIGINT", required=False, min=0),
    Column("reason", "VARCHAR", accepted=("change", "heartbeat", "close"),
           doc="change: focus/title changed; heartbeat: periodic poll; close: last sample before "
               "the screen locked or the collector stopped"),
), doc="active app and window title, on change plus a heartbeat every poll interval")

INPUT_COUNTS = CsvStream("input_counts", (
    TS,
    Column("bucket_s", "INTEGER", min=1, max=3600, doc="bucket length in seconds (5)"),
    Column("key_presses", "INTEGER", min=0),
    Column("clicks", "INTEGER", min=0),
    Column("wheel", "INTEGER", min=0),
    Column("mouse_moves", "INTEGER", min=0),
    Column("mouse_distance_px", "DOUBLE", min=0),
), doc="input counts per bucket; never any key identity")

SYSTEM_EVENTS = CsvStream("system_events", (
    TS,
    Column("event", "VARCHAR", accepted=("lock", "unlock", "suspend", "resume", "collector_start",
                                          "collector_stop", "network_up", "network_down",
                                          "not_afk", "afk"),
           doc="not_afk / afk: an AFK status change recorded by another tracker (the ActivityWatch "
               "import: a not-afk period starts / ends); the collector derives AFK from input instead"),
), doc="screen lock/unlock, suspend/resume, collector lifecycle, connectivity, imported AFK status")

# Generic JSON events (seeds 002/004 and seed 000's EyeCore payload) as landed by the receiver
# (focuslake/receiver, docs/receiver.md), and ActivityWatch web-tab events landed by its importer
# (focuslake/importers/activitywatch.py): one row per accepted event; JSON objects as text.
APP_EVENTS = CsvStream("app_events", (
    TS,
    Column("event_id", "VARCHAR", doc="client's event id (EyeCore: derived from its content)"),
    Column("event_name", "VARCHAR", doc="event_name, else event_type (seed 002 performance events)"),
    Column("event_type", "VARCHAR", required=False, doc="event_category (seed 004) or event_type (002)"),
    Column("session_id", "VARCHAR", required=False),
    Column("source", "VARCHAR", accepted=("generic", "eyecore", "activitywatch"),
           doc="payload shape it came in (activitywatch: focuslake.importers.activitywatch)"),
    Column("properties_json", "VARCHAR", required=False, doc="properties (EyeCore: data), JSON object"),
    Column("context_json", "VARCHAR", required=False, doc="context + unknown top-level fields, JSON"),
    Column("consent_json", "VARCHAR", required=False, doc="privacy flags (seed 004 privacy), JSON"),
    Column("received_us", "BIGINT", min=0, doc="receiver clock when the batch arrived (UTC us); imports: "
                                                "the end of the export's newest event"),
), doc="generic app events posted to the receiver's POST /v1/events, and imported browser-tab events")

CSV_STREAMS: dict[str, CsvStream] = {s.name: s for s in (SYSTEM_METRICS, ACTIVE_WINDOW, INPUT_COUNTS,
                                                          SYSTEM_EVENTS, APP_EVENTS)}
BINARY_STREAM = "events"
ALL_STREAMS = (*CSV_STREAMS, BINARY_STREAM)
