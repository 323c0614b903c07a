"""The one place the quality contract of each table is declared: one `Suite` per bronze stream
and gold table, and the seed thresholds. Pure data (no Great Expectations import): the GX
suites in expectations/gx/ are generated from it (`python -m focuslake.quality.gx sync`), and
the SQL checks (null rate per day, duplicate rate per day) read the same declarations.

Bronze suites derive from the ingest contract (focuslake.schemas: columns, ranges, accepted
values, required columns); a CSV stream gets its suite once its natural key is in CSV_KEYS.
To cover a new gold table, add one `Suite(...)` to GOLD_SUITES; then run the sync.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from focuslake.schemas import BINARY_STREAM, CSV_STREAMS

# --- seed thresholds (seed 000 monitoring, seed 004 "Data Quality Issue"/"High Event Error Rate")
NULL_RATE_MAX = 0.05            # null_rate > 5 %  (seed 004)
DUPLICATE_RATE_MAX = 0.01       # duplicate_rate > 1 %  (seed 004)
INGEST_ERROR_RATE_MAX = 0.01    # error_rate > 1 %, critical (seed 004)
FRESHNESS_MAX_LAG_S = 2 * 3600  # data freshness > 2 hours old, critical (seed 000)
EVENT_ORDER_ERROR_MAX = 0.001   # accuracy: < 0.1 % error rate (seed 004 success metrics)
FUTURE_SKEW_S = 300             # a timestamp may run ahead of the checker's clock by this much
SCHEMA_VIOLATIONS_MAX = 0       # any unresolved schema-drifted segment blocks publishing
# a collector never stays silent longer than this after the screen locks or the machine sleeps
STOP_GRACE_S = 60

# Streams with a cadence: `while` says when the collector must be producing rows. A stream
# whose newest row lags its device's newest row (or the as-of time) by more than
# FRESHNESS_MAX_LAG_S while it should have been producing is stale. Measured on collector rows
# only (imported history is no live feed), and per device only for the cadence streams its
# collectors have landed at least once (a stream switched off in its config, or a device with
# imported history only, is not expected to produce it).
CADENCE_STREAMS = {
    "system_metrics": {"every_s": 5, "while": "powered"},   # psutil sample, also when locked
    "active_window": {"every_s": 5, "while": "unlocked"},   # heartbeat while unlocked
    "input_counts": {"every_s": 5, "while": "unlocked"},    # one bucket per 5 s while unlocked
}

# pandas dtype names a DuckDB column of each kind may arrive as (DuckDB -> pandas: integers with
# NULLs arrive as nullable Int64, HUGEINT sums as float64, so "number" takes them all; text
# arrives as pandas 3's str dtype, normalised to StringDtype() before validation because GX
# cannot name str's NaN-backed variant).
KINDS = {
    "number": ["int8", "int16", "int32", "int64", "float32", "float64", "Int8Dtype", "Int16Dtype",
               "Int32Dtype", "Int64Dtype", "Float64Dtype"],
    "string": ["StringDtype"],
    "timestamp": ["datetime64[us]", "datetime64[ns]", "datetime64[ms]", "datetime64[s]"],
    "bool": ["bool", "BooleanDtype"],
}
_SQL_KIND = {"BIGINT": "number", "INTEGER": "number", "DOUBLE": "number", "BOOLEAN": "bool",
             "VARCHAR": "string"}


@dataclass(frozen=True)
class Col:
    name: str
    kind: str                          # a key of KINDS
    max_null_rate: float | None = 0.0  # 0: never NULL; None: NULL allowed at any rate
    min: float | None = None
    max: float | None = None
    accepted: tuple | None = None
    # the null-rate bound is a collector's (EXPECTED_FILLED): measured on collector rows only,
    # since an importer cannot fill what the other tracker never recorded (ActivityWatch: no pid)
    collector_only: bool = False


@dataclass(frozen=True)
class Suite:
    table: str                   # warehouse relation, schema.name
    columns: tuple[Col, ...]
    key: tuple[str, ...]         # rows are unique on it (duplicates <= DUPLICATE_RATE_MAX)
    ts: str                      # the row's timestamp column (sanity: not in the future, ...)
    day: str                     # expression giving a row's UTC day (partitions of the checks)
    scope: tuple[str, ...] = ("user_id", "device_id")  # whose first segment bounds `ts`
    max_rows_per_scope_day: int | None = None  # row-count bound per scope and day
    required: bool = True        # False: validated when the relation exists (models in progress)
    pairs: tuple[tuple[str, str], ...] = ()    # (a, b): a >= b on every row
    # a table must have at least these columns and may grow new ones (models add derived
    # columns); the lake files' exact columns and types are the SQL check `lake_schema`
    exact_columns: bool = False
    doc: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.table.split(".")[-1]

    def column(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)


IDENT = (Col("user_id", "string"), Col("device_id", "string"))
BRONZE_TAIL = (Col("segment_id", "string"), Col("date", "timestamp"))
DAY_US_CAP = 86_400 // 5 + 1  # one row per 5 s, for a whole day

# Optional CSV columns a healthy collector still fills almost always (null rate <= 5 % of the
# collector's rows: imported rows are not counted, see Col.collector_only); the others (battery
# on a desktop, swap off, ...) may be NULL at any rate.
EXPECTED_FILLED = {("active_window", "window_title"), ("active_window", "pid"),
                   ("system_metrics", "top_process"), ("system_metrics", "top_process_cpu")}
# the CSV streams' natural keys (a collector writes one row per key)
CSV_KEYS = {"system_metrics": ("user_id", "device_id", "ts_us"),
            "active_window": ("user_id", "device_id", "ts_us", "reason"),
            "input_counts": ("user_id", "device_id", "ts_us"),
            "system_events": ("user_id", "device_id", "ts_us", "event")}


def _csv_suite(stream: str) -> Suite:
    cols = [*IDENT, Col("ts", "timestamp"), Col("ts_us", "number")]
    for c in CSV_STREAMS[stream].columns[1:]:
        if c.required:
            rate = 0.0
        elif (stream, c.name) in EXPECTED_FILLED:
            rate = NULL_RATE_MAX
        else:
            rate = None
        cols.append(Col(c.name, _SQL_KIND[c.sql_type], rate, c.min, c.max, c.accepted,
                        collector_only=(stream, c.name) in EXPECTED_FILLED))
    cadence = CADENCE_STREAMS.get(stream)
    return Suite(
        f"bronze.brz_{stream}", (*cols, *BRONZE_TAIL),
        key=CSV_KEYS[stream],
        ts="ts", day="ts::DATE",
        max_rows_per_scope_day=DAY_US_CAP if cadence else None,
        doc=CSV_STREAMS[stream].doc)


EVENT_TYPES = tuple(range(1, 16))  # focuslake.events.VALID_EVENT_TYPES (UNKNOWN is quarantined)
EVENTS_SUITE = Suite(
    "bronze.brz_events",
    (*IDENT, Col("ts", "timestamp"), Col("ts_us", "number"),
     Col("event_type", "number", accepted=EVENT_TYPES), Col("event_name", "string"),
     Col("is_input", "bool"), Col("process_id", "number", min=0), Col("app_name", "string"),
     Col("window_handle", "number", min=0),
     Col("key_code", "number", None, min=0), Col("scan_code", "number", None, min=0),
     Col("key_flags", "number", None, min=0),
     Col("x", "number", None), Col("y", "number", None), Col("speed_pps", "number", None, min=0),
     Col("button", "number", None, min=0), Col("old_window", "number", None, min=0),
     Col("new_window", "number", None, min=0), Col("category_hint", "number", None, min=0),
     Col("idle_duration_ms", "number", None, min=0),
     Col("data_0", "number", min=0, max=2**32 - 1), Col("data_1", "number", min=0, max=2**32 - 1),
     Col("data_2", "number", min=0, max=2**32 - 1), *BRONZE_TAIL),
    key=("user_id", "device_id", "ts_us", "event_type", "process_id", "app_name", "window_handle",
         "data_0", "data_1", "data_2"),
    ts="ts", day="ts::DATE", max_rows_per_scope_day=20_000_000,
    doc="64-byte binary event records")

# one suite per CSV stream listed in CSV_KEYS (a new stream: add its key there, then sync)
BRONZE_SUITES = (EVENTS_SUITE, *(_csv_suite(s) for s in CSV_KEYS if s in CSV_STREAMS))
assert BINARY_STREAM == "events"

USER = (Col("user_id", "string"),)
HOUR_COUNTS = (
    Col("active_seconds", "number", min=0, max=3600), Col("keystrokes", "number", min=0),
    Col("clicks", "number", min=0), Col("wheel_events", "number", min=0),
    Col("mouse_moves", "number", min=0), Col("mouse_distance_px", "number", min=0),
    Col("input_events", "number", min=0), Col("context_switches", "number", min=0),
    Col("idle_periods", "number", min=0))

GOLD_SUITES = (
    Suite("gold.gld_user_hourly",
          (*USER, Col("hour_start", "timestamp"), Col("day", "timestamp"), *HOUR_COUNTS,
           Col("apps_used", "number", min=0)),
          key=("user_id", "hour_start"), ts="hour_start", day="day", scope=("user_id",),
          max_rows_per_scope_day=24, doc="hourly metrics per user"),
    Suite("gold.gld_user_daily",
          (*USER, Col("day", "timestamp"),
           *(Col(c.name, c.kind, min=c.min, max=86_400 if c.name == "active_seconds" else None)
             for c in HOUR_COUNTS),
           Col("active_hours", "number", min=0, max=24)),
          key=("user_id", "day"), ts="day", day="day", scope=("user_id",),
          max_rows_per_scope_day=1, doc="daily metrics per user"),
    Suite("gold.gld_user_app_hourly",
          (*USER, Col("hour_start", "timestamp"), Col("day", "timestamp"), Col("app_name", "string"),
           Col("active_seconds", "number", min=0, max=3600)),
          key=("user_id", "hour_start", "app_name"), ts="hour_start", day="day", scope=("user_id",),
          doc="active seconds per user, hour and app"),
    Suite("gold.gld_user_app_daily",
          (*USER, Col("day", "timestamp"), Col("app_name", "string"),
           Col("active_seconds", "number", min=0, max=86_400)),
          key=("user_id", "day", "app_name"), ts="day", day="day", scope=("user_id",),
          doc="active seconds per user, day and app"),
    # the focus score (seed 003): validated once the model exists in the warehouse
    Suite("gold.gld_focus_scores",
          (*USER, Col("device_id", "string"), Col("window_start", "timestamp"),
           Col("focus_score", "number", min=0, max=100),
           Col("distraction_risk", "number", min=0, max=1),
           Col("risk_category", "string", accepted=("LOW", "MEDIUM", "HIGH"))),
          key=("user_id", "device_id", "window_start"), ts="window_start", day="window_start::DATE",
          required=False, doc="focus score per 30 s window"),
)

SUITES: dict[str, Suite] = {s.name: s for s in (*BRONZE_SUITES, *GOLD_SUITES)}
