"""How numbers read on the page and in the charts (one home, so both say the same)."""
from __future__ import annotations

MINUS = "\u2212"  # a real minus sign


def duration(seconds: float | None) -> str:
    """Seconds as hours and minutes, rounded to the minute: '8 h 05 min', '42 min', '< 1 min'."""
    if seconds is None:
        return "no data"
    sign = MINUS if seconds < 0 else ""
    s = abs(seconds)
    if 0 < s < 30:
        return f"{sign}< 1 min"
    hours, minutes = divmod(round(s / 60), 60)
    return f"{sign}{hours} h {minutes:02d} min" if hours else f"{sign}{minutes} min"


def score(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1f}"


def count(value: int | None) -> str:
    return "no data" if value is None else f"{value:,}"


def percent(fraction: float | None) -> str:
    return "no data" if fraction is None else f"{100 * fraction:.0f}%"


def minutes(value: float | None) -> str:
    """A length given in minutes (streaks, sessions), read like a duration."""
    return "no data" if value is None else duration(value * 60)


def signed(text: str, value: float) -> str:
    """``text`` (which carries its own minus sign) with a '+' for a rise, '\u00b1' for no change."""
    return ("+" + text) if value > 0 else text if value < 0 else "\u00b1" + text


def _number(value: float, digits: int) -> str:
    text = f"{abs(value):,.{digits}f}"
    return (MINUS + text) if value < 0 else text


def delta(metric_name: str, change: dict) -> str:
    """The change from the previous period: '+12 min (+5%)', '\u22123 (\u221210%)', 'no previous data'."""
    d = change.get("delta")
    if d is None:
        return "no previous data"
    if metric_name.endswith("_seconds"):
        d = round(d / 60) * 60  # what the page shows: whole minutes
        text = signed(duration(d), d)
    elif metric_name.startswith("focus_score"):
        d = round(d, 1)
        text = signed(_number(d, 1), d)
    else:
        text = signed(_number(d, 0), d)
    pct = change.get("delta_pct")
    if pct is not None:
        p = round(pct)
        text += f" ({signed(_number(p, 0), p)}%)"
    return text


def metric(metric_name: str, value) -> str:
    """A metric of gld_user_daily/weekly as the page shows it."""
    if metric_name.endswith("_seconds"):
        return duration(value)
    if metric_name.startswith("focus_score"):
        return score(value)
    if metric_name.endswith("_minutes"):
        return minutes(value)
    if metric_name.endswith("_share"):
        return percent(value)
    return count(value)
