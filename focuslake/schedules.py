"""The metric cadences and the exact data interval each one computes (UTC, no Airflow import).

    cadence   cron (UTC)     one run computes           a run starts
    hourly    0 * * * *      [HH:00, HH+1:00)           right after the hour
    daily     0 0 * * *      [D 00:00, D+1 00:00)       right after midnight
    weekly    0 0 * * 1      [Mon 00:00, next Mon)      Mondays after midnight (ISO week)
    monthly   0 0 1 * *      [1st 00:00, next 1st)      on the 1st after midnight

Airflow's ``CronDataIntervalTimetable`` with these crons gives each scheduled or backfilled run
exactly that interval (a plain cron string gives a zero-length one in Airflow 3).
:func:`resolve_interval` is what a metric DAG's first task calls: it checks the run's interval
is exactly one period (so a misconfigured timetable fails loudly instead of computing
nothing) and, for a run that has none (a manual trigger without a logical date), takes the
last complete period before the run's ``run_after`` -- what Airflow itself does for a
manual run with a logical date. The result is what dbt gets as ``interval_start`` /
``interval_end`` (ISO-8601 UTC, the contract of the gold rollup models).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Cadence:
    name: str
    cron: str
    description: str


CADENCES: dict[str, Cadence] = {
    c.name: c
    for c in (
        Cadence("hourly", "0 * * * *", "the previous UTC hour"),
        Cadence("daily", "0 0 * * *", "the previous UTC day (runs after midnight UTC)"),
        Cadence("weekly", "0 0 * * 1", "the previous ISO week, Monday to Monday (runs on Mondays)"),
        Cadence("monthly", "0 0 1 * *", "the previous calendar month (runs on the 1st)"),
    )
}


def cadence(name: str) -> Cadence:
    try:
        return CADENCES[name]
    except KeyError:
        raise ValueError(f"unknown cadence {name!r}; expected one of {sorted(CADENCES)}") from None


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp {ts!r}: timestamps must carry a time zone (UTC)")
    return datetime.fromtimestamp(ts.timestamp(), UTC)  # any pendulum/aware datetime -> stdlib UTC


def period_start(name: str, ts: datetime) -> datetime:
    """Start of the period of cadence ``name`` that contains ``ts`` (UTC)."""
    cadence(name)
    ts = _utc(ts)
    hour = ts.replace(minute=0, second=0, microsecond=0)
    if name == "hourly":
        return hour
    day = hour.replace(hour=0)
    if name == "daily":
        return day
    if name == "weekly":
        return day - timedelta(days=day.weekday())  # ISO week: Monday
    return day.replace(day=1)


def next_period_start(name: str, start: datetime) -> datetime:
    """Start of the period after the one starting at ``start``."""
    start = period_start(name, start)
    if name == "hourly":
        return start + timedelta(hours=1)
    if name == "daily":
        return start + timedelta(days=1)
    if name == "weekly":
        return start + timedelta(weeks=1)
    return (start + timedelta(days=32)).replace(day=1)


def is_exact_period(name: str, start: datetime, end: datetime) -> bool:
    start, end = _utc(start), _utc(end)
    return period_start(name, start) == start and next_period_start(name, start) == end


def last_complete_period(name: str, before: datetime) -> tuple[datetime, datetime]:
    """The latest period of cadence ``name`` that ends at or before ``before``."""
    end = period_start(name, before)
    start = period_start(name, end - timedelta(microseconds=1))
    return start, end


def resolve_interval(name: str, start: datetime | None, end: datetime | None,
                     run_after: datetime | None = None) -> dict[str, str]:
    """The interval a metric run computes, as dbt vars.

    ``start``/``end`` are the run's ``data_interval_start``/``end``. They must be exactly one
    period of the cadence; when both are missing (a run triggered without a logical date) the
    last complete period before ``run_after`` is used. Raises ValueError otherwise (a zero-length
    interval means the DAG lost its ``CronDataIntervalTimetable``).
    """
    cadence(name)
    if start is None and end is None:
        if run_after is None:
            raise ValueError("the run has neither a data interval nor a run_after time")
        start, end = last_complete_period(name, run_after)
    elif start is None or end is None:
        raise ValueError(f"half a data interval: start={start!r} end={end!r}")
    if not is_exact_period(name, start, end):
        raise ValueError(
            f"data interval [{_utc(start).isoformat()}, {_utc(end).isoformat()}) is not exactly one "
            f"{name} period: a metric DAG needs CronDataIntervalTimetable({cadence(name).cron!r})"
        )
    return {"cadence": name, "interval_start": _utc(start).isoformat(), "interval_end": _utc(end).isoformat()}
