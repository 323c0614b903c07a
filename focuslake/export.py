"""Data portability (seed 004): one person's gold data as Parquet or CSV files.

    python -m focuslake.export --user U [--from YYYY-MM-DD] [--to YYYY-MM-DD] --format parquet|csv [--out DIR]

Reads the analysts' published read-only copy (never the pipeline's working file) and writes every
gold table and view that has a ``user_id`` column, filtered to that user, into
``<data>/exports/<user_id>/<stamp>/`` (``--out DIR``: ``DIR/<user_id>/<stamp>/``): one file per
table and ``manifest.json`` (the range, the published copy it came from, per table the file,
rows, columns, bytes and sha256). Team tables (``gld_team_*``) hold no user_id and are never
exported: they are about everyone.

- **Range.** ``--from``/``--to`` (inclusive UTC dates, either may be left open) keep the rows
  whose period overlaps the range: hours, 30 s windows, streaks and days by their date; ISO weeks
  and months when they overlap it (so a one-day export carries the week and month rows that
  contain the day). A table without a period column (``gld_user_streaks``: one summary row per
  user) is exported whole. The manifest names each table's period column.
- **Atomic.** Files are written into ``.<stamp>.tmp-<pid>/`` beside the target, fsynced, and the
  folder is renamed into place: a reader never sees half an export; a crash leaves only a temp
  folder, removed by the next export of that user once its process is gone.
- **Consistent.** One read-only connection reads all tables; a publish that swaps the copy
  meanwhile does not touch the open file, so an export is one published version.
- **CSV.** Header row, UTC timestamps as ``YYYY-MM-DD HH:MM:SS[.ffffff]``; list columns
  (``contributing_factors``) as JSON arrays, named in the manifest's ``json_columns``.
- **Access log.** Every export appends an entry to the access log
  (:func:`focuslake.privacy.access_log.record`, action ``export``): who ran it, the user as a
  keyed hash, format, tables, rows, range and stamp -- never the output path, which holds the
  user id.

The scheduled DAG ``focus_export`` calls :func:`scheduled_export`: every user's previous UTC day
(or the users its configuration lists), after the daily metrics were published.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from focuslake.config import Paths
from focuslake.schemas import ID_RE
from focuslake.segments import fsync_dir, pid_alive

FORMATS = ("parquet", "csv")
SCHEMA = "gold"
# Period columns, in order of preference, and how a row's period is compared with the range:
# "day" = the column's date lies in it; "week"/"month" = that period overlaps it.
PERIOD_COLUMNS = (("hour_start", "day"), ("window_start", "day"), ("streak_start", "day"), ("day", "day"),
                  ("date", "day"), ("week_start", "week"), ("month_start", "month"))
_ORPHAN_SUFFIX = ".tmp-"


class ExportError(ValueError):
    """A request that cannot be exported as asked (the message says why); nothing was written."""


@dataclass(frozen=True)
class Table:
    name: str
    kind: str  # "BASE TABLE" | "VIEW"
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)
    period_column: str | None
    period: str | None

    def where(self, user_id: str, start: date | None, end: date | None) -> str:
        conds = [f"user_id = '{user_id}'"]  # user_id is checked against ID_RE: no quote can occur
        col = f'"{self.period_column}"' if self.period_column else None
        if col and start:
            lower = {"day": f"CAST({col} AS DATE) >= DATE '{start}'",
                     "week": f"{col} + INTERVAL 7 DAY > DATE '{start}'",
                     "month": f"{col} + INTERVAL 1 MONTH > DATE '{start}'"}[self.period]
            conds.append(lower)
        if col and end:
            conds.append(f"CAST({col} AS DATE) <= DATE '{end}'")
        return " AND ".join(conds)


def parse_day(value: str | date | None, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ExportError(f"{what} {value!r} is not a date: expected YYYY-MM-DD") from None


def check_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not ID_RE.match(user_id):
        raise ExportError(f"user id {user_id!r} is not valid: 1-20 characters of letters, digits, '_', '.', '-', "
                          "starting with a letter or digit")
    return user_id


def user_tables(con) -> list[Table]:
    """Every table and view of the gold schema with a user_id column, with its period column."""
    rows = con.execute("""
        SELECT t.table_name, t.table_type, list(c.column_name ORDER BY c.ordinal_position),
               list(c.data_type ORDER BY c.ordinal_position)
        FROM information_schema.tables t
        JOIN information_schema.columns c USING (table_catalog, table_schema, table_name)
        WHERE t.table_schema = ? GROUP BY ALL ORDER BY t.table_name""", [SCHEMA]).fetchall()
    out = []
    for name, kind, cols, types in rows:
        if "user_id" not in cols:
            continue
        period = next(((c, p) for c, p in PERIOD_COLUMNS if c in cols), (None, None))
        out.append(Table(name, kind, tuple(zip(cols, types)), *period))
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _remove_orphans(user_dir: Path) -> None:
    """Temp folders of exports whose process died before the rename."""
    for p in user_dir.glob(f".*{_ORPHAN_SUFFIX}*"):
        pid = p.name.rsplit(_ORPHAN_SUFFIX, 1)[-1]
        if p.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _published_info(paths: Paths) -> dict:
    p = paths.published.with_suffix(".json")
    return json.loads(p.read_text()) if p.exists() else {}


def _select(table: Table, fmt: str, where: str) -> tuple[str, list[str]]:
    """The SELECT writing ``table``; CSV gets nested columns (lists, structs, maps) as JSON."""
    if fmt == "parquet":
        return f'SELECT * FROM {SCHEMA}."{table.name}" WHERE {where}', []
    nested = [c for c, t in table.columns if t.endswith("[]") or t.startswith(("STRUCT", "MAP", "UNION"))]
    cols = ", ".join(f'to_json("{c}")::VARCHAR AS "{c}"' if c in nested else f'"{c}"' for c, _ in table.columns)
    return f'SELECT {cols} FROM {SCHEMA}."{table.name}" WHERE {where}', nested


def export_user(user_id: str, *, start: date | str | None = None, end: date | str | None = None,
                fmt: str = "parquet", out: Path | str | None = None, stamp: str | None = None,
                replace: bool = False, paths: Paths | None = None, require_rows: bool = True) -> dict:
    """Write ``user_id``'s gold rows (periods overlapping [start, end]) as ``fmt`` files under
    ``<out or data/exports>/<user_id>/<stamp>/``; returns the manifest (with ``path``).

    ``stamp`` defaults to the UTC time (``YYYYmmddTHHMMSSZ``, suffixed ``-2``, ``-3``... if taken);
    ``replace`` swaps an existing export of that stamp for the new one (the scheduled export,
    idempotent per day). Raises :class:`ExportError` for bad arguments, an unknown user or (with
    ``require_rows``) a range without rows; FileNotFoundError without a published warehouse.
    """
    import duckdb

    from focuslake.privacy import access_log

    paths = paths or Paths.from_env()
    check_user_id(user_id)
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    start, end = parse_day(start, "--from"), parse_day(end, "--to")
    if start and end and start > end:
        raise ExportError(f"--from {start} is after --to {end}")
    if stamp is not None and not ID_RE.match(stamp):
        raise ExportError(f"stamp {stamp!r} is not valid (letters, digits, '_', '.', '-')")
    db = paths.published
    if not db.exists():
        raise FileNotFoundError(f"no published warehouse at {db}: run the pipeline (make demo) first")
    base = Path(out) if out is not None else paths.exports
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = user_tables(con)
        if not tables:
            raise ExportError(f"the published warehouse {db} has no {SCHEMA} table with a user_id column")
        known = any(con.execute(f'SELECT 1 FROM {SCHEMA}."{t.name}" WHERE user_id = ? LIMIT 1', [user_id]).fetchone()
                    for t in tables)
        if not known:
            raise ExportError(f"user {user_id!r} has no data in the published warehouse {db}")
        user_dir = base / user_id
        user_dir.mkdir(parents=True, exist_ok=True)
        _remove_orphans(user_dir)
        created = datetime.now(UTC)
        stamp = stamp or created.strftime("%Y%m%dT%H%M%SZ")
        tmp = user_dir / f".{stamp}{_ORPHAN_SUFFIX}{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            entries = {}
            for t in tables:
                where = t.where(user_id, start, end)
                sql, nested = _select(t, fmt, where)
                target = tmp / f"{t.name}.{fmt}"
                options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
                con.execute(f"COPY ({sql}) TO '{target}' ({options})")
                reader = "read_parquet" if fmt == "parquet" else "read_csv"  # count what was written
                rows = con.execute(f"SELECT count(*) FROM {reader}('{target}')").fetchone()[0]
                fsync_dir(target)
                entries[t.name] = {"file": target.name, "rows": rows, "bytes": target.stat().st_size,
                                   "sha256": _sha256(target), "kind": "view" if t.kind == "VIEW" else "table",
                                   "period_column": t.period_column,
                                   "columns": [{"name": c, "type": ty} for c, ty in t.columns],
                                   **({"json_columns": nested} if nested else {})}
            if require_rows and not any(e["rows"] for e in entries.values() if e["period_column"]):
                raise ExportError(f"user {user_id!r} has no rows between {start or 'the beginning'} and "
                                  f"{end or 'the end'}: nothing exported")
            published = _published_info(paths)
            manifest = {
                "user_id": user_id, "format": fmt, "from": start and str(start), "to": end and str(end),
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "stamp": stamp,
                "source": {"path": str(db), "published_at": published.get("published_at"),
                           "audit_run_id": published.get("audit_run_id")},
                "rows": sum(e["rows"] for e in entries.values()), "tables": entries,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
            fsync_dir(tmp / "manifest.json")
            fsync_dir(tmp)
            final = _place(tmp, user_dir, stamp, replace=replace and stamp is not None)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        con.close()
    fsync_dir(user_dir)
    access_log.record(paths, "export", user_id=user_id, format=fmt, tables=sorted(entries),
                      rows=manifest["rows"], start=manifest["from"], end=manifest["to"], stamp=final.name)
    return {**manifest, "stamp": final.name, "path": str(final)}


def _place(tmp: Path, user_dir: Path, stamp: str, *, replace: bool) -> Path:
    """Rename the finished temp folder into place (atomically); a taken stamp gets a suffix,
    or with ``replace`` the old export is swapped out and removed."""
    target = user_dir / stamp
    if replace and target.exists():
        old = user_dir / f".{stamp}.old{_ORPHAN_SUFFIX}{os.getpid()}"
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
        return target
    for n in range(1, 1000):
        target = user_dir / (stamp if n == 1 else f"{stamp}-{n}")
        if target.exists():
            continue
        try:
            os.rename(tmp, target)  # fails if another export took the name meanwhile (non-empty)
            return target
        except OSError:
            continue
    raise ExportError(f"no free export name for stamp {stamp} in {user_dir}")


# --- scheduled export (DAG focus_export) ---------------------------------------------------------
def export_day(data_interval_start: datetime | None, run_after: datetime | None = None,
               day: date | str | None = None) -> date:
    """The UTC day a ``focus_export`` run exports: ``day`` if given, else the day its data
    interval starts on (``CronDataIntervalTimetable("0 2 * * *")``: [D 02:00, D+1 02:00) exports
    D), else (a run triggered without a logical date) the UTC day before ``run_after``."""
    if day is not None:
        return parse_day(day, "day")
    if data_interval_start is not None:
        return datetime.fromtimestamp(data_interval_start.timestamp(), UTC).date()
    if run_after is None:
        raise ExportError("the run has neither a day, a data interval nor a run_after time")
    return datetime.fromtimestamp(run_after.timestamp(), UTC).date() - timedelta(days=1)


def scheduled_export(*, data_interval_start: datetime | None = None, run_after: datetime | None = None,
                     day: date | str | None = None, users: list[str] | None = None, fmt: str = "parquet",
                     paths: Paths | None = None) -> dict:
    """Export one UTC day for ``users`` (None or empty: every user with gold rows that day), each
    to ``exports/<user>/day-<D>/`` (a rerun replaces it). Refuses a published copy published
    before the day ended: the daily metrics of that day are not in it yet (the task fails and
    Airflow retries). Returns {"day", "exported": {user: {rows, path}}, "skipped": {user: why}}."""
    import duckdb

    paths = paths or Paths.from_env()
    d = export_day(data_interval_start, run_after, day)
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    published = _published_info(paths)
    if not paths.published.exists() or not published.get("published_at"):
        raise FileNotFoundError(f"no published warehouse at {paths.published}")
    published_at = datetime.strptime(published["published_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    day_end = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)
    if published_at < day_end:
        raise ExportError(f"the published warehouse is from {published['published_at']}, before {d} ended: "
                          f"the daily metrics of {d} are not published yet")
    con = duckdb.connect(str(paths.published), read_only=True)
    try:
        with_rows = {u for (u,) in con.execute(f"SELECT DISTINCT user_id FROM {SCHEMA}.gld_user_daily "
                                               "WHERE day = ?", [d]).fetchall()}
    finally:
        con.close()
    wanted = sorted(users) if users else sorted(with_rows)
    report = {"day": str(d), "format": fmt, "exported": {}, "skipped": {}}
    for user in wanted:
        check_user_id(user)
        if user not in with_rows:
            report["skipped"][user] = f"no gold rows on {d}"
            continue
        m = export_user(user, start=d, end=d, fmt=fmt, stamp=f"day-{d}", replace=True, paths=paths)
        report["exported"][user] = {"rows": m["rows"], "path": m["path"]}
    return report


def main(argv: list[str] | None = None) -> int:
    from focuslake.config import apply_no_telemetry

    apply_no_telemetry()
    ap = argparse.ArgumentParser(prog="python -m focuslake.export",
                                 description="Export one person's gold data (every gold table and view with a "
                                             "user_id) from the published warehouse.")
    ap.add_argument("--user", required=True, help="the user_id to export")
    ap.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first UTC day (inclusive; default: all)")
    ap.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last UTC day (inclusive; default: all)")
    ap.add_argument("--format", required=True, choices=FORMATS)
    ap.add_argument("--out", type=Path, help="base folder instead of <data>/exports (the export goes to "
                                             "OUT/<user>/<stamp>/)")
    args = ap.parse_args(argv)
    try:
        m = export_user(args.user, start=args.start, end=args.end, fmt=args.format, out=args.out)
    except (ExportError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    width = max(len(n) for n in m["tables"])
    for name, t in m["tables"].items():
        print(f"  {name:<{width}}  {t['rows']:>9,} rows  {t['bytes']:>11,} B")
    print(f"exported {m['rows']:,} rows of {m['user_id']} in {len(m['tables'])} tables ({m['format']}) to {m['path']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
