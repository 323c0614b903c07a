"""Reports people look at: a daily and a weekly focus report per user, as a self-contained HTML
page with PNG charts (matplotlib, Agg) and a report.json of every number shown.

    python -m focuslake.reports daily  [--user U | --all] [--date YYYY-MM-DD] [--data DIR] [--out DIR]
    python -m focuslake.reports weekly [--user U | --all] [--week YYYY-Www]   [--data DIR] [--out DIR]

Reads only the analysts' published warehouse ``<data>/published/focus.duckdb`` (read-only) and
writes ``<out>/<user_id>/daily/<YYYY-MM-DD>/`` or ``<out>/<user_id>/weekly/<YYYY-Www>/``
(default ``<out>`` = ``<data>/reports``), each atomically. docs/reports.md describes the charts.

The Airflow task after a metric DAG's publish step calls :func:`render_interval`.
"""
from __future__ import annotations

from focuslake.config import Paths
from focuslake.reports.data import ReportError
from focuslake.reports.periods import Period, from_interval, parse_day, parse_week, period_of
from focuslake.reports.render import render_reports, report_dir, reports_root

__all__ = ["Period", "ReportError", "from_interval", "parse_day", "parse_week", "period_of", "render_interval",
           "render_reports", "report_dir", "reports_root"]


def render_interval(cadence: str, interval_start: str, interval_end: str, paths: Paths | None = None) -> dict:
    """Render the reports of a metric DAG run: the day (``daily``) or ISO week (``weekly``) that is
    the run's data interval, for every user with data in it. Returns counts (no personal data:
    this goes to Airflow's XCom)."""
    import logging
    import time

    t0 = time.perf_counter()
    paths = paths or Paths.from_env()
    period = from_interval(cadence, interval_start, interval_end)
    results = render_reports(period, paths=paths)
    if not results:
        logging.getLogger(__name__).warning("no user has data in %s %s: no report rendered", period.kind,
                                            period.label)
    return {"report": period.kind, "period": period.label, "reports": len(results),
            "out": str(reports_root(paths)), "seconds": round(time.perf_counter() - t0, 3)}
