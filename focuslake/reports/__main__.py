"""`python -m focuslake.reports daily|weekly [--user U | --all] [--date D | --week W] [--data DIR] [--out DIR]`"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from focuslake.config import Paths, apply_no_telemetry


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m focuslake.reports",
        description="Render daily or weekly focus reports (HTML + PNG charts + report.json) from the published "
                    "read-only warehouse. All times are UTC.")
    ap.add_argument("kind", choices=("daily", "weekly"))
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="one user id")
    who.add_argument("--all", action="store_true", help="every user with data in the period")
    ap.add_argument("--date", help="daily: the UTC day, YYYY-MM-DD (default: the latest day with data)")
    ap.add_argument("--week", help="weekly: the ISO week, YYYY-Www, e.g. 2026-W47 (default: the latest week with "
                                   "data)")
    ap.add_argument("--data", type=Path, help="data root (default: $FOCUSLAKE_DATA or <repo>/data)")
    ap.add_argument("--out", type=Path, help="reports root (default: <data>/reports)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    apply_no_telemetry()
    ap = _parser()
    a = ap.parse_args(argv)
    from rich.console import Console
    from rich.markup import escape

    from focuslake.reports import ReportError, parse_day, parse_week, period_of, render_reports
    from focuslake.reports import data as rdata

    err = Console(stderr=True)
    if a.kind == "daily" and a.week or a.kind == "weekly" and a.date:
        ap.error("--date goes with daily, --week with weekly")
    paths = Paths(a.data.resolve()) if a.data else Paths.from_env()
    try:
        if a.date or a.week:
            period = parse_day(a.date) if a.date else parse_week(a.week)
        else:
            con = rdata.connect(paths.published)
            try:
                latest = rdata.latest_day(con, a.user)
            finally:
                con.close()
            if latest is None:
                raise ReportError(f"no data{' for ' + a.user if a.user else ''} in {paths.published}")
            period = period_of(a.kind, latest)
            err.print(f"no --{'date' if a.kind == 'daily' else 'week'} given: the latest with data, {period.label}")
        results = render_reports(period, None if a.all else [a.user], paths=paths, out=a.out,
                                 progress=not a.quiet and sys.stderr.isatty())
    except (ReportError, ValueError) as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        return 2
    if not results:
        err.print(f"[red]error:[/red] no user has data in {period.kind} period {period.label}")
        return 2
    for r in results:
        print(f"{r['user_id']}: {r['dir']}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
