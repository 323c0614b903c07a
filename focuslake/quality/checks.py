"""The quality gate's SQL checks, run with DuckDB over the working warehouse, the Parquet lake
and the ledger snapshot. Each returns `Check` rows: a summary row per check (partition "all")
and one row per partition (segment, day, device, ...) that is measured or failed, so a failure
names the segment or day it is about. Thresholds come from focuslake.quality.suites.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from focuslake.config import Paths
from focuslake.importers import COLLECTOR, source_sql
from focuslake.quality import suites as S
from focuslake.schemas import ALL_STREAMS

US = 1_000_000


@dataclass
class Check:
    name: str
    table: str
    observed: float
    threshold: float
    passed: bool
    detail: str = ""
    partition: str = "all"
    column: str = ""
    source: str = "sql"
    severity: str = "critical"   # critical: blocks publishing; info: recorded only


@dataclass
class Ctx:
    paths: Paths
    now: datetime                 # the checker's clock (UTC, naive)
    as_of: datetime | None        # freshness reference; None: each device's newest data
    unresolved_files: set[str]
    unresolved_rows: set[str]
    plan: object = None           # focuslake.quality.scope.Plan: what changed since the last pass


def _summary(name, table, failures: list[Check], threshold=0.0, observed=None, detail="") -> Check:
    bad = [f for f in failures if not f.passed]
    return Check(name, table, float(len(bad) if observed is None else observed), threshold, not bad,
                 detail or "; ".join(f"{f.partition}: {f.detail}" for f in bad[:10])
                 + (f" (+{len(bad) - 10} more)" if len(bad) > 10 else ""))


def relation_exists(con, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name]).fetchone()[0])


def lake_relation(paths: Paths, stream: str) -> str | None:
    if not list((paths.lake / stream).glob("date=*/*.parquet")):
        return None
    return (f"read_parquet('{paths.lake}/{stream}/date=*/*.parquet', hive_partitioning=true, "
            f"union_by_name=true)")


def prepare(con, ctx: Ctx) -> None:
    """Temp views the checks share: the ledger (with each segment's landing day) and the
    unresolved quarantine items."""
    con.execute(f"""CREATE OR REPLACE TEMP VIEW q_ledger AS
        SELECT *, CASE WHEN len(string_split(path, '/')) = 5
                       THEN try_cast(split_part(path, '/', 4) AS DATE) END AS day
        FROM read_parquet('{ctx.paths.ledger_export}')""")
    _LAKE_META.clear()
    con.execute("CREATE OR REPLACE TEMP TABLE q_unresolved (kind VARCHAR, path VARCHAR)")
    rows = [("file", p) for p in ctx.unresolved_files] + [("rows", p) for p in ctx.unresolved_rows]
    if rows:
        con.executemany("INSERT INTO q_unresolved VALUES (?, ?)", rows)


# --- reconciliation ------------------------------------------------------------------------------
def reconcile_segments(con, ctx: Ctx) -> list[Check]:
    out = []
    bad = con.execute("""SELECT path, rows_read, rows_written, rows_quarantined FROM q_ledger
                         WHERE rows_read <> rows_written + rows_quarantined ORDER BY path""").fetchall()
    parts = [Check("segment_rows_reconcile", "ledger", abs(r - w - q), 0, False,
                   f"read {r} != written {w} + quarantined {q}", partition=p) for p, r, w, q in bad]
    out += [_summary("segment_rows_reconcile", "ledger", parts), *parts]
    for stream in ALL_STREAMS:
        rel = lake_relation(ctx.paths, stream)
        lake = (f"SELECT segment_id, count(*) AS n FROM {rel} GROUP BY 1" if rel else
                "SELECT NULL::VARCHAR AS segment_id, 0::BIGINT AS n WHERE false")
        rows = con.execute(f"""
            WITH l AS ({lake}),
                 g AS (SELECT path AS segment_id, rows_written FROM q_ledger
                       WHERE status = 'ingested' AND stream = '{stream}')
            SELECT coalesce(g.segment_id, l.segment_id), coalesce(g.rows_written, 0), coalesce(l.n, 0)
            FROM g FULL OUTER JOIN l USING (segment_id)
            WHERE coalesce(g.rows_written, 0) <> coalesce(l.n, 0) ORDER BY 1""").fetchall()
        parts = [Check("lake_matches_ledger", f"lake.{stream}", n, w, False,
                       f"ledger says {w} rows written, the lake holds {n}", partition=s)
                 for s, w, n in rows]
        out += [_summary("lake_matches_ledger", f"lake.{stream}", parts), *parts]
    # per stream and landing day: read = written + quarantined, and the lake holds `written`
    lake_by_seg = " UNION ALL ".join(
        f"SELECT segment_id, count(*) AS n FROM {rel} GROUP BY 1"
        for rel in (lake_relation(ctx.paths, s) for s in ALL_STREAMS) if rel) or \
        "SELECT NULL::VARCHAR AS segment_id, 0::BIGINT AS n WHERE false"
    rows = con.execute(f"""
        WITH l AS ({lake_by_seg})
        SELECT coalesce(stream, '?') AS stream, coalesce(day::VARCHAR, 'unknown') AS day,
               sum(rows_read), sum(rows_written), sum(rows_quarantined),
               sum(coalesce(l.n, 0)) FILTER (WHERE status = 'ingested')
        FROM q_ledger LEFT JOIN l ON l.segment_id = q_ledger.path
        GROUP BY ALL ORDER BY ALL""").fetchall()
    parts = []
    for stream, day, r, w, q, n in rows:
        n = n or 0
        ok = r == w + q and n == w
        parts.append(Check("day_rows_reconcile", f"lake.{stream}", abs(r - w - q) + abs(n - w), 0, ok,
                           "" if ok else f"read {r}, written {w}, quarantined {q}, in the lake {n}",
                           partition=day))
    out += [_summary("day_rows_reconcile", "ledger", parts), *parts]
    return out


_LAKE_META: dict[tuple, tuple] = {}


def _lake_files(ctx: Ctx, stream: str) -> list:
    """(file, arrow schema or None, identity from the statistics, error) of every lake file of a
    stream: one footer read per file and run, shared by lake_schema and lake_partitions."""
    import pyarrow.parquet as pq

    from focuslake.quality.scope import lake_file_identity

    out = []
    for f in sorted((ctx.paths.lake / stream).glob("date=*/*.parquet")):
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        key = (str(f), st.st_size, st.st_mtime_ns, st.st_ino)
        if key not in _LAKE_META:
            try:
                meta = pq.read_metadata(f)
                _LAKE_META[key] = (meta.schema.to_arrow_schema(), lake_file_identity(meta), "")
            except Exception as e:  # noqa: BLE001 -- an unreadable lake file is a finding
                _LAKE_META[key] = (None, None, f"unreadable: {e}")
        out.append((f, *_LAKE_META[key]))
    return out


def lake_schema(con, ctx: Ctx) -> list[Check]:
    """Every lake file has exactly the ingest's columns and types. Bronze reads the lake with
    union_by_name, so a file written by anything else, with an extra or without a column, would
    otherwise slip in as a new column or as NULLs: each such file is named here."""
    from focuslake.ingest import lake_schema as contract

    parts = []
    for stream in ALL_STREAMS:
        want = {f.name: f.type for f in contract(stream)}
        for f, schema, _, err in _lake_files(ctx, stream):
            have = {x.name: x.type for x in schema} if schema is not None else {}
            extra = sorted(set(have) - set(want))
            missing = sorted(set(want) - set(have))
            retyped = sorted(c for c in set(have) & set(want) if have[c] != want[c])
            if err or extra or missing or retyped:
                parts.append(Check("lake_schema", f"lake.{stream}", float(len(extra) + len(missing) + len(retyped)),
                                   0, False, err or f"unexpected columns {extra}; missing columns {missing}; "
                                   f"changed types {[(c, str(have[c]), str(want[c])) for c in retyped]}",
                                   partition=f.relative_to(ctx.paths.lake).as_posix()))
    return [_summary("lake_schema", "lake", parts), *parts]


def lake_partitions(con, ctx: Ctx) -> list[Check]:
    """Every lake file holds the rows of one device and one UTC day, the ones its path names
    (date=D/<user>~<device>.parquet), as the ingest writes them: read from the Parquet
    statistics (the columns themselves where a row group has none). The incremental GX
    validation (focuslake.quality.scope) selects a touched file's rows by that identity."""
    parts = []
    day_us = 86_400 * US
    for stream in ALL_STREAMS:
        for f, _, ident, err in _lake_files(ctx, stream):
            if err:
                continue  # lake_schema names it
            rel = f.relative_to(ctx.paths.lake).as_posix()
            user, device, lo, hi, unknown = ident
            if unknown:
                user, device, lo, hi = _identity_from_rows(con, f)
            day = f.parent.name.removeprefix("date=")
            name_user, _, name_device = f.stem.partition("~")
            problems = []
            if (user, device) != (name_user, name_device):
                problems.append(f"rows of {user or 'several users'}/{device or 'several devices'} in the file "
                                f"of {name_user}/{name_device}")
            try:
                d0 = int((datetime.fromisoformat(day) - datetime(1970, 1, 1)).total_seconds()) * US
            except ValueError:
                problems.append(f"bad date partition {day!r}")
            else:
                if lo is not None and (lo < d0 or hi >= d0 + day_us):
                    problems.append(f"rows from {_fmt(lo)} to {_fmt(hi)} in the partition of {day}")
            if problems:
                parts.append(Check("lake_partitions", f"lake.{stream}", float(len(problems)), 0, False,
                                   "; ".join(problems), partition=rel))
    return [_summary("lake_partitions", "lake", parts), *parts]


def _identity_from_rows(con, f) -> tuple:
    u, d, nu, nd, lo, hi = con.execute(
        "SELECT any_value(user_id), any_value(device_id), count(DISTINCT user_id) + "
        "count(*) FILTER (WHERE user_id IS NULL), count(DISTINCT device_id) + count(*) FILTER "
        "(WHERE device_id IS NULL), min(ts_us), max(ts_us) FROM read_parquet(?)", [str(f)]).fetchone()
    return (u if nu == 1 else None), (d if nd == 1 else None), lo, hi


def quarantine_evidence(con, ctx: Ctx) -> list[Check]:
    """Every quarantined row and file has its evidence in the quarantine (or resolved/)."""
    import pyarrow.parquet as pq

    q = ctx.paths.quarantine
    parts = []
    # rows dropped for lack of consent have no evidence by design: nothing of them is kept
    for path, status, nq in con.execute("""SELECT path, status, rows_quarantined - rows_no_consent FROM q_ledger
                                           WHERE rows_quarantined > rows_no_consent OR status = 'quarantined'
                                           ORDER BY path""").fetchall():
        if status == "quarantined":
            ok = (q / "files" / path).exists() or (q / "resolved" / "files" / path).exists()
            detail = "" if ok else "quarantined file missing from quarantine/files and resolved/"
            have = nq if ok else 0
        else:
            f = next((p for p in (q / "rows" / f"{path}.rejects.parquet",
                                  q / "resolved" / "rows" / f"{path}.rejects.parquet") if p.exists()), None)
            have = pq.read_metadata(f).num_rows if f else 0
            ok = have == nq
            detail = "" if ok else f"ledger says {nq} rows quarantined, the evidence holds {have}"
        if not ok:
            parts.append(Check("quarantine_evidence", "quarantine", have, nq, False, detail, partition=path))
    return [_summary("quarantine_evidence", "quarantine", parts), *parts]


def warehouse_totals(con, ctx: Ctx) -> list[Check]:
    """Gold equals silver per user and day; a day equals the sum of its hours; the input counts
    stream agrees with the event stream per device and day (docs/metrics.md)."""
    out = []
    pairs = {
        "keystrokes": (("SELECT user_id, ts::DATE AS day, count(*) AS v FROM silver.slv_input_events "
                       "WHERE event_type = 1 GROUP BY ALL"), "keystrokes"),
        "clicks": (("SELECT user_id, ts::DATE AS day, count(*) AS v FROM silver.slv_input_events "
                   "WHERE event_type = 4 GROUP BY ALL"), "clicks"),
        "input_events": (("SELECT user_id, ts::DATE AS day, count(*) AS v FROM silver.slv_input_events "
                         "GROUP BY ALL"), "input_events"),
        "context_switches": (("SELECT user_id, started_at::DATE AS day, count(*) AS v FROM "
                             "silver.slv_window_intervals WHERE is_context_switch GROUP BY ALL"),
                             "context_switches"),
        "active_seconds": (("SELECT user_id, hour_start::DATE AS day, sum(active_seconds) AS v FROM "
                           "silver.slv_active_hourly GROUP BY ALL"), "active_seconds"),
    }
    for name, (silver, gold_col) in pairs.items():
        rows = con.execute(f"""
            WITH s AS ({silver}),
                 g AS (SELECT user_id, day, sum({gold_col}) AS v FROM gold.gld_user_hourly GROUP BY ALL)
            SELECT user_id, day::VARCHAR, coalesce(s.v, 0), coalesce(g.v, 0)
            FROM s FULL OUTER JOIN g USING (user_id, day)
            WHERE abs(coalesce(s.v, 0) - coalesce(g.v, 0)) > 1e-6 * greatest(1, abs(coalesce(s.v, 0)))
            ORDER BY ALL""").fetchall()
        parts = [Check(f"gold_equals_silver_{name}", "gold.gld_user_hourly", float(g), float(s), False,
                       f"gold {g} != silver {s}", partition=f"{u} {d}") for u, d, s, g in rows]
        out += [_summary(f"gold_equals_silver_{name}", "gold.gld_user_hourly", parts), *parts]
    # A day from the newest day of gld_user_daily on is still open: the hourly DAG rebuilds its
    # hours every hour while the daily rollup (tag daily) runs once after the day ends, so its
    # daily row is missing or holds the hours of when the rollup ran (the first hour of a new day,
    # an hourly publish between two daily runs). Only closed days must equal the sum of their
    # hours; the open ones are recorded (daily_rollup_pending, info).
    rows = con.execute("""
        WITH h AS (SELECT user_id, day, sum(keystrokes) k, sum(clicks) c, sum(context_switches) s,
                          sum(input_events) i, sum(active_seconds) a
                   FROM gold.gld_user_hourly GROUP BY ALL),
             open_from AS (SELECT max(day) AS day FROM gold.gld_user_daily)
        SELECT coalesce(d.user_id, h.user_id), coalesce(d.day, h.day)::VARCHAR,
               (SELECT day FROM open_from) IS NULL OR coalesce(d.day, h.day) >= (SELECT day FROM open_from)
        FROM gold.gld_user_daily d FULL OUTER JOIN h USING (user_id, day)
        WHERE d.user_id IS NULL OR h.user_id IS NULL OR d.keystrokes <> h.k OR d.clicks <> h.c
           OR d.context_switches <> h.s OR d.input_events <> h.i OR abs(d.active_seconds - h.a) > 1e-5
        ORDER BY ALL""").fetchall()
    parts = [Check("daily_equals_sum_of_hours", "gold.gld_user_daily", 1, 0, False,
                   "daily row differs from the sum of its hours", partition=f"{u} {d}")
             for u, d, is_open in rows if not is_open]
    out += [_summary("daily_equals_sum_of_hours", "gold.gld_user_daily", parts), *parts]
    pending = [f"{u} {d}" for u, d, is_open in rows if is_open]
    out.append(Check("daily_rollup_pending", "gold.gld_user_daily", float(len(pending)), 0, not pending,
                     "" if not pending else "open days whose daily row is not (yet) the sum of their hours "
                     "(the daily rollup runs after the day ends): " + ", ".join(pending[:10])
                     + (f" (+{len(pending) - 10} more)" if len(pending) > 10 else ""), severity="info"))
    rows = con.execute("""
        WITH c AS (SELECT user_id, device_id, ts::DATE AS day, sum(key_presses) AS k, sum(clicks) AS m
                   FROM bronze.brz_input_counts GROUP BY ALL),
             e AS (SELECT user_id, device_id, ts::DATE AS day, count(*) FILTER (WHERE event_type = 1) AS k,
                          count(*) FILTER (WHERE event_type = 4) AS m
                   FROM silver.slv_input_events GROUP BY ALL)
        SELECT user_id, device_id, day::VARCHAR, coalesce(c.k, 0), coalesce(e.k, 0), coalesce(c.m, 0),
               coalesce(e.m, 0)
        FROM c FULL OUTER JOIN e USING (user_id, device_id, day)
        WHERE coalesce(c.k, 0) <> coalesce(e.k, 0) OR coalesce(c.m, 0) <> coalesce(e.m, 0)
        ORDER BY ALL""").fetchall()
    parts = [Check("input_counts_equal_events", "bronze.brz_input_counts", float(ck), float(ek), False,
                   f"input_counts say {ck} key presses / {cm} clicks, events {ek} / {em}",
                   partition=f"{u}/{dv} {d}") for u, dv, d, ck, ek, cm, em in rows]
    out += [_summary("input_counts_equal_events", "bronze.brz_input_counts", parts), *parts]
    return out


# --- seed thresholds -----------------------------------------------------------------------------
def _day_stats(con, suite, cols, has_segments: bool, days: list[str] | None) -> dict[str, dict]:
    """Per day of a table: rows, rows repeating the key, (scope, day) units, and per column with
    a null-rate bound its NULL share and the rows it is measured on. `days`: only those days
    (bronze filters on the lake's date partition, so DuckDB reads only their files)."""
    key = [k for k in suite.key]
    keyexpr = ", ".join(f'"{k}"' for k in key)
    scope = ", ".join(f'"{c}"' for c in suite.scope)
    where = ""
    if days is not None:
        if not days:
            return {}
        lits = ", ".join(f"DATE '{d}'" for d in days)
        col = "date" if suite.table.startswith("bronze.") else f"({suite.day})::DATE"
        where = f" WHERE {col} IN ({lits})"
    base = f"(SELECT * FROM {suite.table}{where})"
    out: dict[str, dict] = {}
    # duplicates as a plain aggregate per (day, key): DuckDB runs that faster than count(DISTINCT)
    for day, n, dups, units in con.execute(f"""
            SELECT day, sum(c), sum(c) - count(*), count(DISTINCT ({scope}))
            FROM (SELECT ({suite.day})::VARCHAR AS day, {keyexpr}, {scope}, count(*) AS c FROM {base}
                  GROUP BY ALL) GROUP BY 1""").fetchall():
        out[str(day)] = {"n": int(n), "dups": int(dups), "units": int(units), "nulls": {}}
    if cols:
        src = source_sql("segment_id") if has_segments else f"'{COLLECTOR}'"

        def scope_of(c) -> str:
            return f"_row_source = '{COLLECTOR}'" if c.collector_only else "true"

        sel = ", ".join(f'avg(("{c.name}" IS NULL)::INT) FILTER (WHERE {scope_of(c)}), '
                        f'count(*) FILTER (WHERE {scope_of(c)})' for c in cols)
        rel = f"(SELECT *, {src} AS _row_source FROM {base})"
        for r in con.execute(f"SELECT ({suite.day})::VARCHAR AS day, {sel} FROM {rel} GROUP BY 1").fetchall():
            d = out.setdefault(str(r[0]), {"n": 0, "dups": 0, "units": 0, "nulls": {}})
            for i, c in enumerate(cols):
                d["nulls"][c.name] = [float(r[1 + 2 * i] or 0.0), int(r[2 + 2 * i])]
    return out


def _days_to_compute(ctx, suite) -> list[str] | None:
    """None: every day; else the days whose rows may have changed since the last passing audit
    (focuslake.quality.scope): the other days' figures are the ones it measured."""
    plan = getattr(ctx, "plan", None)
    if plan is None or plan.mode == "full" or not suite.table.startswith("bronze.") \
            or suite.name not in plan.carried_day_stats:
        return None
    return plan.touched_days.get(suite.name)


def null_and_duplicate_rates(con, ctx: Ctx) -> list[Check]:
    """Per table and day: the NULL share of every column with a bound, the share of rows
    repeating the key, and the table's rows against its row-count bounds (the table-wide form of
    the GX suites' row_count, whose batches may be a few partitions: scope.py). In an
    incremental run only the bronze days touched since the last passing audit are measured
    again; the others keep that audit's figures (their files are unchanged)."""
    out = []
    plan = getattr(ctx, "plan", None)
    for suite in S.SUITES.values():
        if not relation_exists(con, suite.table):
            continue
        have = {r[0] for r in con.execute(f"DESCRIBE {suite.table}").fetchall()}
        cols = [c for c in suite.columns if c.max_null_rate is not None and c.name in have]
        days = _days_to_compute(ctx, suite)
        stats = _day_stats(con, suite, cols, "segment_id" in have, days)
        if days is not None:
            old = plan.carried_day_stats.get(suite.name) or {}
            keep = set(old) - set(days)
            stats = {**{d: v for d, v in old.items() if d in keep}, **stats}
        if plan is not None and plan.state is not None:  # None: the fallback plan (no baseline)
            plan.state.setdefault("day_stats", {})[suite.name] = stats
        rows = sorted(stats.items())
        if cols:
            out += _null_rates(suite, cols, rows)
        key = [k for k in suite.key if k in have]
        parts = []
        for day, st in rows:
            n, dups = st["n"], st["dups"]
            rate = dups / n if n else 0.0
            ok = rate <= S.DUPLICATE_RATE_MAX
            parts.append(Check("duplicate_rate", suite.table, rate, S.DUPLICATE_RATE_MAX, ok,
                               "" if ok else f"{dups} of {n} rows repeat the key {tuple(key)} "
                                             f"({rate:.2%} > {S.DUPLICATE_RATE_MAX:.0%})", partition=str(day)))
        n_all = sum(st["n"] for _, st in rows)
        s = _summary("duplicate_rate", suite.table, parts, S.DUPLICATE_RATE_MAX,
                     observed=(sum(st["dups"] for _, st in rows) / n_all) if n_all else 0.0)
        out += [s, *parts]
        out.append(_row_count_bounds(con, suite, rows, n_all))
    return out


def _row_count_bounds(con, suite, rows, n_all: int) -> Check:
    """The table's rows: at least one when the lake has rows for it, at most the cadence's rows
    per scope (device or user) and day it covers -- the GX suites' row_count over the table."""
    stream = suite.name.removeprefix("brz_") if suite.table.startswith("bronze.") else "events"
    expect = bool(con.execute("SELECT count(*) > 0 FROM q_ledger WHERE status = 'ingested' AND "
                              "rows_written > 0 AND stream = ?", [stream]).fetchone()[0])
    lo = 1 if expect else 0
    hi = None
    if suite.max_rows_per_scope_day:
        hi = suite.max_rows_per_scope_day * sum(st["units"] for _, st in rows)
    ok = n_all >= lo and (hi is None or n_all <= hi)
    detail = "" if ok else (f"{n_all} rows, expected between {lo} and {hi if hi is not None else 'no bound'}"
                            + (f" ({suite.max_rows_per_scope_day} per {'/'.join(suite.scope)} and day)" if hi else "")
                            + ("; the lake holds rows for it" if expect and n_all < lo else ""))
    return Check("row_count_bounds", suite.table, float(n_all), float(hi if hi is not None else lo), ok, detail)


def _null_rates(suite, cols, rows) -> list[Check]:
    """Share of NULLs per column and day. A collector-only bound (Col.collector_only) is
    measured on collector rows: imported rows (focuslake.importers) are left out and counted."""
    out = []
    n_all = sum(st["n"] for _, st in rows)
    for c in cols:
        what = "collector rows" if c.collector_only else "rows"
        parts = []
        nulls, n_scope = 0.0, 0
        for day, st in rows:
            rate, n = st["nulls"].get(c.name, [0.0, 0])
            if not n:  # no row of this scope on that day (e.g. imported history only)
                continue
            nulls += rate * n
            n_scope += n
            ok = rate <= c.max_null_rate
            parts.append(Check("null_rate", suite.table, float(rate), c.max_null_rate, ok,
                               "" if ok else f"{c.name} is NULL in {rate:.1%} of {n} {what} "
                                             f"(max {c.max_null_rate:.0%})",
                               partition=str(day), column=c.name))
        total = nulls / n_scope if n_scope else 0.0
        s = _summary("null_rate", suite.table, parts, c.max_null_rate, observed=float(total))
        s.column = c.name
        if c.collector_only and n_all > n_scope:
            s.detail = (s.detail + "; " if s.detail else "") + (
                f"measured on {n_scope} collector rows; {n_all - n_scope} imported rows not counted "
                "(a collector's bound: the other tracker may not record it)")
        # per-day rows only where they say something (failing, or a tolerated rate > 0)
        out += [s, *(p for p in parts if not p.passed or p.observed > 0)]
    return out


def schema_violations(con, ctx: Ctx) -> list[Check]:
    rows = con.execute("""SELECT l.path, l.reason, l.rows_read FROM q_ledger l
                          JOIN q_unresolved u ON u.kind = 'file' AND u.path = l.path
                          WHERE l.status = 'quarantined' AND l.reason LIKE 'schema:%'
                          ORDER BY 1""").fetchall()
    parts = [Check("schema_violations", f"lake.{p.split('/')[0]}", 1, S.SCHEMA_VIOLATIONS_MAX, False,
                   f"{reason} ({n} rows quarantined)", partition=p) for p, reason, n in rows]
    return [_summary("schema_violations", "ledger", parts, S.SCHEMA_VIOLATIONS_MAX), *parts]


def ingestion_error_rate(con, ctx: Ctx) -> list[Check]:
    """Rows quarantined (unresolved) / rows read, per stream and landing day: a stream's bad
    rows are not hidden by another stream's volume (events outnumber samples 10:1)."""
    rows = con.execute("""
        SELECT coalesce(l.stream, split_part(l.path, '/', 1)) AS stream,
               coalesce(l.day::VARCHAR, 'unknown') AS day, sum(l.rows_read) AS n,
               coalesce(sum(l.rows_quarantined - l.rows_no_consent) FILTER (WHERE u.path IS NOT NULL), 0) AS bad,
               string_agg(DISTINCT l.path, ', ') FILTER (WHERE u.path IS NOT NULL) AS worst
        FROM q_ledger l LEFT JOIN (SELECT DISTINCT path FROM q_unresolved) u USING (path)
        GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
    parts = []
    for stream, day, n, bad, worst in rows:
        rate = bad / n if n else (1.0 if bad else 0.0)
        ok = rate <= S.INGEST_ERROR_RATE_MAX
        parts.append(Check("ingestion_error_rate", f"lake.{stream}", rate, S.INGEST_ERROR_RATE_MAX, ok,
                           "" if ok else f"{bad} of {n} {stream} rows quarantined ({rate:.2%}); "
                                         f"segments: {(worst or '')[:400]}", partition=f"{stream} {day}"))
    n_all = sum(r[2] or 0 for r in rows)
    total = (sum(r[3] for r in rows) / n_all) if n_all else 0.0
    worst = max((p.observed for p in parts), default=0.0)
    s = _summary("ingestion_error_rate", "ledger", parts, S.INGEST_ERROR_RATE_MAX, observed=worst)
    s.detail = (s.detail + "; " if s.detail else "") + f"overall {total:.3%}"
    return [s, *parts]


def freshness(con, ctx: Ctx) -> list[Check]:
    """A cadence stream is stale when, while it should have been producing (screen unlocked or
    machine on, per system_events), its newest row lags its device's newest row of any stream
    (or the as-of time, when given) by more than FRESHNESS_MAX_LAG_S.

    Scope (docs/quality.md): collector rows only -- imported history (focuslake.importers) is
    no live feed, so it neither counts as a fresh row nor moves a device's newest row -- and per
    device only the cadence streams its collectors have landed at least once: a stream that
    stops is stale, a stream switched off in the device's config (or a device with imported
    history only) is not expected. Those are recorded as info rows."""
    streams = [s for s in ALL_STREAMS if relation_exists(con, f"bronze.brz_{s}")]
    if "system_events" not in streams:
        return [Check("freshness", "bronze", 0, S.FRESHNESS_MAX_LAG_S, True, "no system_events yet",
                      severity="info")]
    collector = f"({source_sql('segment_id')}) = '{COLLECTOR}'"
    per_source = " UNION ALL ".join(
        f"SELECT user_id, device_id, '{s}' AS stream, {collector} AS live, max(ts_us) AS last_us, "
        f"min(ts_us) AS first_us FROM bronze.brz_{s} GROUP BY ALL" for s in streams)
    con.execute(f"CREATE OR REPLACE TEMP TABLE q_newest AS {per_source}")
    ref = f"{_naive_us(ctx.as_of)}::BIGINT" if ctx.as_of else "max(last_us)"
    cadence = ", ".join(f"('{s}', '{c['while']}')" for s, c in S.CADENCE_STREAMS.items())
    rows = con.execute(f"""
        WITH n AS (SELECT * FROM q_newest WHERE live),
        dev AS (SELECT user_id, device_id, {ref} AS ref_us FROM n GROUP BY ALL),
        cad AS (SELECT * FROM (VALUES {cadence}) AS t(stream, needs)),
        want AS (SELECT d.user_id, d.device_id, c.stream, c.needs, d.ref_us, n.last_us
                 FROM dev d JOIN n ON n.user_id = d.user_id AND n.device_id = d.device_id
                 JOIN cad c ON c.stream = n.stream),
        se AS (SELECT user_id, device_id, ts_us, event FROM bronze.brz_system_events),
        stop AS (SELECT w.*, (SELECT min(se.ts_us) FROM se WHERE se.user_id = w.user_id
                        AND se.device_id = w.device_id
                        AND se.ts_us BETWEEN w.last_us AND w.last_us + {S.STOP_GRACE_S * US}
                        AND (se.event IN ('suspend', 'collector_stop')
                             OR (w.needs = 'unlocked' AND se.event = 'lock'))) AS stop_us
                 FROM want w),
        back AS (SELECT s.*, (SELECT min(se.ts_us) FROM se WHERE se.user_id = s.user_id
                        AND se.device_id = s.device_id AND se.ts_us > s.stop_us
                        AND (se.event IN ('collector_start', 'unlock')
                             OR (s.needs = 'powered' AND se.event = 'resume'))) AS back_us
                 FROM stop s)
        SELECT user_id, device_id, stream,
               CASE WHEN stop_us IS NULL THEN last_us ELSE back_us END AS expected_since, ref_us, last_us
        FROM back ORDER BY user_id, device_id, stream""").fetchall()
    parts = []
    for user, device, stream, since, ref_us, last_us in rows:
        lag = 0.0 if since is None else max(0.0, (ref_us - since) / US)
        ok = lag <= S.FRESHNESS_MAX_LAG_S
        parts.append(Check("freshness", f"bronze.brz_{stream}", lag, S.FRESHNESS_MAX_LAG_S, ok,
                           "" if ok else f"{stream} of {user}/{device} is stale: newest row {_fmt(last_us)}, "
                                         f"{lag / 3600:.1f} h behind {'the as-of time' if ctx.as_of else 'the device'} "
                                         f"({_fmt(ref_us)}) while it should be producing",
                           partition=f"{user}/{device}"))
    # what is not measured, and why: recorded (info), so an audit shows the scope it applied
    names = ", ".join(f"'{s}'" for s in S.CADENCE_STREAMS)
    skipped = con.execute(f"""
        WITH d AS (SELECT user_id, device_id, bool_or(live) AS has_live,
                          list(DISTINCT stream ORDER BY stream) FILTER (WHERE live AND stream IN ({names})) AS cad
                   FROM q_newest GROUP BY ALL)
        SELECT user_id, device_id, has_live, coalesce(cad, []) FROM d ORDER BY ALL""").fetchall()
    for user, device, has_live, cad in skipped:
        if not has_live:
            parts.append(Check("freshness", "bronze", 0, S.FRESHNESS_MAX_LAG_S, True,
                               f"{user}/{device} holds imported history only: no collector stream to keep "
                               "fresh", partition=f"{user}/{device}", severity="info"))
            continue
        for stream in (s for s in S.CADENCE_STREAMS if s not in cad):
            parts.append(Check("freshness", f"bronze.brz_{stream}", 0, S.FRESHNESS_MAX_LAG_S, True,
                               f"{stream}: never landed by the collectors of {user}/{device} (switched off "
                               "in its config?): not expected", partition=f"{user}/{device}", severity="info"))
    worst = max((p.observed for p in parts), default=0.0)
    return [_summary("freshness", "bronze", parts, S.FRESHNESS_MAX_LAG_S, observed=worst), *parts]


def _naive_us(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1)) / timedelta(microseconds=1))


def _fmt(us) -> str:
    return "-" if us is None else (datetime(1970, 1, 1) + timedelta(microseconds=int(us))).strftime(
        "%Y-%m-%d %H:%M:%S")


def event_order(con, ctx: Ctx) -> list[Check]:
    """Event-order accuracy (seed 004: activation_started precedes completed): an unlock follows
    each lock before the next lock, a resume each suspend, an IDLE_END each IDLE_START; no input
    arrives while the screen is locked. Error rate = violations / transitions checked."""
    out = []
    if not relation_exists(con, "bronze.brz_system_events"):
        return out
    seqs = {
        "event_order_lock_unlock": ("bronze.brz_system_events", "event", "('lock', 'unlock')",
                                    "'lock'", "'unlock'", "lock without unlock", "unlock without lock"),
        "event_order_suspend_resume": ("bronze.brz_system_events", "event", "('suspend', 'resume')",
                                       "'suspend'", "'resume'", "suspend without resume",
                                       "resume without suspend"),
        "event_order_idle": ("bronze.brz_events", "event_type", "(10, 11)", "10", "11",
                             "IDLE_START without IDLE_END", "IDLE_END without IDLE_START"),
    }
    for name, (table, col, domain, start, end, msg_start, msg_end) in seqs.items():
        if not relation_exists(con, table):
            continue
        n, rows = _sequence_violations(con, table, col, domain, start, end, msg_start, msg_end)
        out += _rate_checks(name, table, n, rows)
    if relation_exists(con, "bronze.brz_events"):
        n = con.execute("SELECT count(*) FROM bronze.brz_events WHERE is_input").fetchone()[0]
        rows = con.execute("""
            WITH ev AS (SELECT user_id, device_id, ts_us, event,
                               lead(ts_us) OVER (PARTITION BY user_id, device_id ORDER BY ts_us, event) AS next_us
                        FROM bronze.brz_system_events WHERE event IN ('lock', 'unlock', 'collector_start')),
                 locked AS (SELECT user_id, device_id, ts_us AS start_us,
                                   coalesce(next_us, 9223372036854775807) AS end_us FROM ev WHERE event = 'lock')
            SELECT i.user_id, i.device_id, i.ts::DATE::VARCHAR AS day, count(*) AS n,
                   min(l.start_us) AS first_lock
            FROM bronze.brz_events i JOIN locked l
              ON i.user_id = l.user_id AND i.device_id = l.device_id
             AND i.ts_us > l.start_us AND i.ts_us < l.end_us
            WHERE i.is_input GROUP BY ALL ORDER BY ALL""").fetchall()
        out += _rate_checks("input_while_locked", "bronze.brz_events", n,
                            [(f"{u}/{d} {day}", k, (f"{k} input events while the screen was locked "
                              f"(lock at {_fmt(first)} with no unlock or collector start before them)"))
                             for u, d, day, k, first in rows])
    return out


def _sequence_violations(con, table, col, domain, start, end, msg_start, msg_end):
    """In each device's time-ordered sequence of two alternating event kinds, a kind repeated
    means the other one is missing in between. A collector_start begins a new sequence (the
    collector starts in an unlocked, running session; what it missed before is unknowable)."""
    n = con.execute(f"SELECT count(*) FROM {table} WHERE {col} IN {domain}").fetchone()[0]
    rows = con.execute(f"""
        WITH starts AS (SELECT user_id, device_id, ts_us FROM bronze.brz_system_events
                        WHERE event = 'collector_start'),
        e AS (SELECT t.user_id, t.device_id, t.ts, t.ts_us, t.{col} AS e,
                     (SELECT count(*) FROM starts s WHERE s.user_id = t.user_id
                        AND s.device_id = t.device_id AND s.ts_us <= t.ts_us) AS session_no
              FROM {table} t WHERE t.{col} IN {domain}),
        s AS (SELECT *, lag(e) OVER w AS prev, lag(ts) OVER w AS prev_ts FROM e
              WINDOW w AS (PARTITION BY user_id, device_id, session_no ORDER BY ts_us, e))
        SELECT user_id, device_id, prev_ts::DATE::VARCHAR, e = {start}, count(*), min(prev_ts)
        FROM s WHERE e = prev GROUP BY ALL ORDER BY ALL""").fetchall()
    return n, [(f"{u}/{d} {day}", k, f"{k} x {msg_start if is_start else msg_end} (first at {first})")
               for u, d, day, is_start, k, first in rows]


def _rate_checks(name, table, n, rows) -> list[Check]:
    bad = sum(k for _, k, _ in rows)
    rate = bad / n if n else 0.0
    ok = rate <= S.EVENT_ORDER_ERROR_MAX
    parts = [Check(name, table, k, 0, ok, detail, partition=part) for part, k, detail in rows]
    detail = "" if ok else f"{bad} of {n} events out of order ({rate:.2%} > {S.EVENT_ORDER_ERROR_MAX:.1%}): " + \
        "; ".join(f"{p.partition}: {p.detail}" for p in parts[:5])
    return [Check(name, table, rate, S.EVENT_ORDER_ERROR_MAX, ok, detail), *parts]


ALL_SQL_CHECKS = (reconcile_segments, lake_schema, lake_partitions, quarantine_evidence, schema_violations, ingestion_error_rate,
                  warehouse_totals, null_and_duplicate_rates, freshness, event_order)
