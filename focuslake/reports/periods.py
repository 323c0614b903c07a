"""The periods a report covers: one UTC day or one ISO week (Monday to Monday, UTC).

A period is a half-open interval of dates ``[start, end)``. Its label names its output folder:
``YYYY-MM-DD`` for a day, ``YYYY-Www`` (ISO 8601 week, e.g. ``2026-W47``) for a week. The
previous period is the day before or the ISO week before, whether or not it has data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

KINDS = ("daily", "weekly")
_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Period:
    kind: str  # "daily" | "weekly"
    start: date

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown report kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "weekly" and self.start.isoweekday() != 1:
            raise ValueError(f"a weekly period starts on a Monday, not on {self.start:%A} {self.start}")

    @property
    def days(self) -> int:
        return 1 if self.kind == "daily" else 7

    @property
    def end(self) -> date:
        """First day after the period."""
        return self.start + timedelta(days=self.days)

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return self.start.isoformat()
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def title(self) -> str:
        """How a person reads it: 'Monday 16 November 2026' / 'ISO week 2026-W47 (Mon 16 - Sun 22 Nov 2026)'."""
        if self.kind == "daily":
            return f"{self.start:%A} {self.start.day} {self.start:%B %Y}"
        last = self.end - timedelta(days=1)
        return f"week {self.label} (Mon {self.start.day} {self.start:%b} - Sun {last.day} {last:%b %Y})"

    @property
    def start_ts(self) -> datetime:
        return datetime.combine(self.start, time(0), UTC)

    @property
    def end_ts(self) -> datetime:
        return datetime.combine(self.end, time(0), UTC)

    def previous(self) -> Period:
        return Period(self.kind, self.start - timedelta(days=self.days))

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def parse_day(text: str) -> Period:
    try:
        return Period("daily", date.fromisoformat(text))
    except ValueError:
        raise ValueError(f"--date wants YYYY-MM-DD (a UTC day), got {text!r}") from None


def parse_week(text: str) -> Period:
    m = _WEEK_RE.match(text)
    if not m:
        raise ValueError(f"--week wants an ISO week YYYY-Www (e.g. 2026-W47), got {text!r}")
    try:
        return Period("weekly", date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1))
    except ValueError as e:
        raise ValueError(f"--week {text!r}: {e}") from None


def period_of(kind: str, day: date) -> Period:
    """The day, or the ISO week, that contains ``day``."""
    if kind == "weekly":
        return Period(kind, day - timedelta(days=day.weekday()))
    return Period(kind, day)


CADENCE_KIND = {"daily": "daily", "weekly": "weekly"}
"""Metric DAG cadence -> report kind (the hourly and monthly DAGs render no report)."""


def from_interval(cadence: str, interval_start: str | datetime, interval_end: str | datetime) -> Period:
    """The report period of a metric DAG run: its data interval, which must be exactly one
    period of ``cadence`` (``focuslake.schedules.resolve_interval``'s ISO-8601 strings)."""
    from focuslake.schedules import is_exact_period

    if cadence not in CADENCE_KIND:
        raise ValueError(f"the {cadence!r} cadence has no report; reports exist for {sorted(CADENCE_KIND)}")
    start = datetime.fromisoformat(interval_start) if isinstance(interval_start, str) else interval_start
    end = datetime.fromisoformat(interval_end) if isinstance(interval_end, str) else interval_end
    if not is_exact_period(cadence, start, end):
        raise ValueError(f"[{start.isoformat()}, {end.isoformat()}) is not exactly one {cadence} period")
    return Period(CADENCE_KIND[cadence], start.astimezone(UTC).date())
