"""focuslake.schedules: the periods of the metric cadences, without Airflow."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from focuslake.schedules import (
    CADENCES,
    is_exact_period,
    last_complete_period,
    next_period_start,
    period_start,
    resolve_interval,
)

T = datetime(2026, 11, 18, 13, 47, 12, 345, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("cadence", "start", "end"), [
    ("hourly", datetime(2026, 11, 18, 13, tzinfo=UTC), datetime(2026, 11, 18, 14, tzinfo=UTC)),
    ("daily", datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)),
    ("weekly", datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)),
    ("monthly", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
])
def test_period_containing_a_timestamp(cadence, start, end):
    assert period_start(cadence, T) == start
    assert next_period_start(cadence, start) == end
    assert is_exact_period(cadence, start, end)
    assert not is_exact_period(cadence, start, end + timedelta(seconds=1))
    assert not is_exact_period(cadence, start, start)  # Airflow 3's zero-length cron interval


def test_periods_cross_year_month_and_leap_day_boundaries():
    assert next_period_start("monthly", datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_period_start("monthly", datetime(2028, 1, 1, tzinfo=UTC)) == datetime(2028, 2, 1, tzinfo=UTC)
    assert next_period_start("daily", datetime(2028, 2, 28, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)
    # ISO week 2026-W53 runs Monday 28 December to Monday 4 January
    assert period_start("weekly", datetime(2027, 1, 3, 23, tzinfo=UTC)) == datetime(2026, 12, 28, tzinfo=UTC)


def test_other_time_zones_are_converted_to_utc():
    cet = timezone(timedelta(hours=1))
    start = datetime(2026, 11, 18, 1, 0, tzinfo=cet)  # = 00:00 UTC
    assert is_exact_period("daily", start, start + timedelta(days=1))
    assert resolve_interval("daily", start, start + timedelta(days=1))["interval_start"] == "2026-11-18T00:00:00+00:00"


def test_resolve_interval_returns_the_contracts_iso_strings():
    start, end = datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC)
    assert resolve_interval("daily", start, end) == {
        "cadence": "daily", "interval_start": "2026-11-17T00:00:00+00:00", "interval_end": "2026-11-18T00:00:00+00:00"}


def test_a_run_without_interval_takes_the_last_complete_period():
    assert last_complete_period("daily", T) == (datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC))
    assert last_complete_period("weekly", T) == (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    assert last_complete_period("monthly", T) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    # exactly at a boundary: the period that just ended
    at = datetime(2026, 11, 18, tzinfo=UTC)
    assert resolve_interval("daily", None, None, at)["interval_start"] == "2026-11-17T00:00:00+00:00"


@pytest.mark.parametrize(("args", "message"), [
    (("daily", T, T), "not exactly one daily period"),
    (("hourly", datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)), "not exactly one hourly"),
    (("weekly", datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)), "not exactly one weekly"),
    (("daily", T, None), "half a data interval"),
    (("daily", None, None, None), "neither a data interval nor a run_after"),
    (("daily", datetime(2026, 11, 17), datetime(2026, 11, 18)), "naive timestamp"),
    (("yearly", T, T), "unknown cadence"),
])
def test_bad_intervals_fail_with_a_clear_message(args, message):
    with pytest.raises(ValueError, match=message):
        resolve_interval(*args)


def test_cadence_crons_are_the_documented_ones():
    assert {c.name: c.cron for c in CADENCES.values()} == {
        "hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 1", "monthly": "0 0 1 * *"}
