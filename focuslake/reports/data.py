"""What a report shows, read from the analysts' published warehouse (never the working file).

Every number comes from a gold table as dbt computed it (docs/metrics.md); nothing here
recomputes a metric gold already has. Python only selects rows of the period, sums a day's
category seconds into the week's (additive, as gld_user_weekly sums its days), and derives
presentation figures: shares (part / whole) and the change from the previous period.

    summary, previous  gold.gld_user_daily (daily) / gold.gld_user_weekly (weekly)
    categories         gold.gld_user_category_daily (per day; summed over a week's days)
    hours              gold.gld_user_hourly (score trend of a day, context switches per hour)
    days               gold.gld_user_daily (score trend of a week)
    timeline           gold.gld_focus_scores (one 30 s window per row)
    category legend    ref.categories (focus weight, productivity category)
"""
from __future__ import annotations

import decimal
from datetime import UTC, date, datetime
from pathlib import Path

from focuslake.config import DBT_PROJECT_DIR
from focuslake.reports.periods import Period

SUMMARY_COLUMNS = ("active_seconds", "focused_seconds", "focus_score_avg", "focus_score_min", "focus_score_max",
                   "context_switches", "keystrokes", "clicks", "sessions", "breaks", "active_hours",
                   "longest_session_minutes", "longest_focus_streak_minutes")
COMPARED = ("active_seconds", "focused_seconds", "focus_score_avg", "context_switches")
HOUR_COLUMNS = ("hour_start", "active_seconds", "focused_seconds", "focus_score_avg", "focus_score_min",
                "focus_score_max", "context_switches")
DAY_COLUMNS = ("day", "active_seconds", "focused_seconds", "focus_score_avg", "focus_score_min", "focus_score_max",
               "context_switches")
WINDOW_COLUMNS = ("window_start", "device_id", "category", "active_seconds", "focus_score", "is_focused")


class ReportError(RuntimeError):
    """A report cannot be made (no published warehouse, no data for that user and period...)."""


def connect(db: Path):
    import duckdb

    if not Path(db).exists():
        raise ReportError(f"no published warehouse at {db}: run the pipeline first (`make demo`, or the "
                          "focus_publish DAG); reports read only the analysts' read-only copy")
    return duckdb.connect(str(db), read_only=True)


def dbt_var(name: str):
    """A var of dbt_project.yml (one home for thresholds such as focused_score_min)."""
    import yaml

    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"][name]


def _json(v):
    if isinstance(v, datetime):
        return v.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if v.tzinfo is None else \
            v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, bool) or v is None or isinstance(v, str | float):
        return v
    if isinstance(v, int):
        return int(v)  # DuckDB HUGEINT sums arrive as Python int already
    return v


def _rows(con, sql: str, params: list, columns: tuple[str, ...]) -> list[dict]:
    return [{c: _json(v) for c, v in zip(columns, r)} for r in con.execute(sql, params).fetchall()]


def _summary(con, period: Period, user_id: str) -> dict | None:
    table, key = ("gld_user_daily", "day") if period.kind == "daily" else ("gld_user_weekly", "week_start")
    cols = ", ".join(SUMMARY_COLUMNS)
    rows = _rows(con, f"SELECT {cols} FROM gold.{table} WHERE user_id = ? AND {key} = ?",
                 [user_id, period.start], SUMMARY_COLUMNS)
    return rows[0] if rows else None


def users_with_data(con, period: Period) -> list[str]:
    """Users with a gold row for the period (gld_user_daily: any day of it)."""
    return [u for (u,) in con.execute(
        "SELECT DISTINCT user_id FROM gold.gld_user_daily WHERE day >= ? AND day < ? ORDER BY user_id",
        [period.start, period.end]).fetchall()]


def latest_day(con, user_id: str | None = None) -> date | None:
    sql = "SELECT max(day) FROM gold.gld_user_daily" + (" WHERE user_id = ?" if user_id else "")
    (d,) = con.execute(sql, [user_id] if user_id else []).fetchone()
    return d


def _nearby_days(con, user_id: str, period: Period) -> list[str]:
    rows = con.execute("""SELECT day FROM gold.gld_user_daily WHERE user_id = ?
                          ORDER BY abs(datediff('day', day, ?::DATE)), day LIMIT 5""",
                       [user_id, period.start]).fetchall()
    return sorted(d.isoformat() for (d,) in rows)


def _change(current, previous) -> dict:
    if current is None or previous is None:
        return {"current": current, "previous": previous, "delta": None, "delta_pct": None}
    delta = current - previous
    pct = (delta / previous * 100.0) if previous else None
    return {"current": current, "previous": previous, "delta": delta, "delta_pct": pct}


def categories_meta(con) -> list[dict]:
    """ref.categories ordered by focus weight (most focused first)."""
    cols = ("category", "productivity_category", "focus_weight", "is_distraction", "description")
    return _rows(con, f"SELECT {', '.join(cols)} FROM ref.categories ORDER BY focus_weight DESC, category",
                 [], cols)


def build(con, period: Period, user_id: str, *, db: Path | None = None) -> dict:
    """The report of ``user_id`` for ``period``: every number the page and its charts show."""
    summary = _summary(con, period, user_id)
    if summary is None:
        known = con.execute("SELECT count(*) FROM gold.gld_user_daily WHERE user_id = ?", [user_id]).fetchone()[0]
        if not known:
            raise ReportError(f"user {user_id!r} has no data in the published warehouse")
        raise ReportError(f"no data for {user_id} in {period.kind} period {period.label}; "
                          f"days with data nearby: {', '.join(_nearby_days(con, user_id, period))}")
    prev_period = period.previous()
    previous = _summary(con, prev_period, user_id)
    comparison = {m: _change(summary[m], previous[m] if previous else None) for m in COMPARED}

    args = [user_id, period.start, period.end]
    if period.kind == "daily":
        cats = _rows(con, """SELECT category, active_seconds FROM gold.gld_user_category_daily
                             WHERE user_id = ? AND day >= ? AND day < ? ORDER BY active_seconds DESC, category""",
                     args, ("category", "active_seconds"))
        by_day = []
    else:  # a week's seconds per category = the sum of its days (additive, like gld_user_weekly)
        cats = _rows(con, """SELECT category, sum(active_seconds) FROM gold.gld_user_category_daily
                             WHERE user_id = ? AND day >= ? AND day < ? GROUP BY category
                             ORDER BY 2 DESC, category""", args, ("category", "active_seconds"))
        by_day = _rows(con, """SELECT day, category, active_seconds FROM gold.gld_user_category_daily
                               WHERE user_id = ? AND day >= ? AND day < ? ORDER BY day, category""",
                       args, ("day", "category", "active_seconds"))
    total = sum(c["active_seconds"] for c in cats)
    for c in cats:
        c["share"] = c["active_seconds"] / total if total else None

    hours = _rows(con, f"""SELECT {', '.join(HOUR_COLUMNS)} FROM gold.gld_user_hourly
                           WHERE user_id = ? AND day >= ? AND day < ? ORDER BY hour_start""", args, HOUR_COLUMNS)
    days = _rows(con, f"""SELECT {', '.join(DAY_COLUMNS)} FROM gold.gld_user_daily
                          WHERE user_id = ? AND day >= ? AND day < ? ORDER BY day""", args, DAY_COLUMNS)
    windows = con.execute(f"""SELECT {', '.join(WINDOW_COLUMNS)} FROM gold.gld_focus_scores
                              WHERE user_id = ? AND window_start >= ? AND window_start < ?
                              ORDER BY window_start, device_id""",
                          [user_id, period.start_ts.replace(tzinfo=None), period.end_ts.replace(tzinfo=None)]
                          ).fetchall()
    timeline = {
        "source": "gold.gld_focus_scores",
        "window_seconds": dbt_var("feature_window_s"),
        "focused_score_min": dbt_var("focused_score_min"),
        "windows": len(windows),
        "active_windows": sum(1 for w in windows if w[3] > 0),
        "focused_windows": sum(1 for w in windows if w[5]),
        "columns": list(WINDOW_COLUMNS),
        "rows": [[_json(v) for v in w] for w in windows],
    }
    return {
        "report": period.kind,
        "user_id": user_id,
        "period": {"label": period.label, "title": period.title, "start": _json(period.start_ts),
                   "end": _json(period.end_ts)},
        "previous_period": {"label": prev_period.label, "title": prev_period.title, "has_data": previous is not None},
        "source": {"warehouse": str(db) if db else None, "read_only": True,
                   "tables": ["gold.gld_user_daily" if period.kind == "daily" else "gold.gld_user_weekly",
                              "gold.gld_user_category_daily", "gold.gld_user_hourly", "gold.gld_user_daily",
                              "gold.gld_focus_scores", "ref.categories"]},
        "timezone": "UTC",
        "summary": {**summary, "focused_share": (summary["focused_seconds"] / summary["active_seconds"]
                                                 if summary["active_seconds"] else None)},
        "previous": previous,
        "comparison": comparison,
        "categories": cats,
        "categories_by_day": by_day,
        "category_meta": categories_meta(con),
        "hours": hours,
        "days": days,
        "timeline": timeline,
    }
