"""What each stream is, how long it is kept, and what needs consent (seed 000's classification).

Data classes and their default retention (UTC days, configurable):

| class       | default | what                                                               |
|-------------|---------|--------------------------------------------------------------------|
| `sensitive` | 7 days  | keystroke dynamics (key and scan codes), file metadata: opt-in     |
| `general`   | 30 days | window titles and apps, input counts and events, generic app events |
| `system`    | 90 days | system metrics and events; operational records (ledger, quality)   |

Purposes a user consents to: every stream (public under seed 000: collected unless the user
withdraws, "opt-out") and the sensitive purposes `keystroke_dynamics` and `file_metadata`
(never collected unless granted, "opt-in"). :mod:`focuslake.privacy.consent` keeps the
grants and withdrawals.

The unit of retention is the UTC day: the data of day D is removed once the whole day is older
than its class's age, i.e. when ``D < (now - days).date()``.

Overrides live in ``<data>/privacy/policy.toml``::

    [retention]            # days per class
    sensitive = 7
    general = 30
    system = 90

    [retention.streams]    # a stream in another class
    input_counts = "system"
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from focuslake.config import Paths
from focuslake.schemas import ALL_STREAMS

SENSITIVE, GENERAL, SYSTEM = "sensitive", "general", "system"
DEFAULT_DAYS = {SENSITIVE: 7, GENERAL: 30, SYSTEM: 90}

STREAM_CLASS = {
    "system_metrics": SYSTEM,
    "system_events": SYSTEM,
    "active_window": GENERAL,
    "input_counts": GENERAL,
    "events": GENERAL,
    "app_events": GENERAL,
}
assert set(STREAM_CLASS) == set(ALL_STREAMS), "every landed stream has a data class"

KEYSTROKE_DYNAMICS = "keystroke_dynamics"
FILE_METADATA = "file_metadata"
SENSITIVE_PURPOSES = {KEYSTROKE_DYNAMICS: SENSITIVE, FILE_METADATA: SENSITIVE}
PURPOSES = (*STREAM_CLASS, *SENSITIVE_PURPOSES)


def opt_in(purpose: str) -> bool:
    """Sensitive purposes need an explicit grant; streams are collected unless withdrawn."""
    return purpose in SENSITIVE_PURPOSES


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    streams: dict[str, str] = field(default_factory=lambda: dict(STREAM_CLASS))
    source: str = "(defaults)"

    def stream_class(self, stream: str) -> str:
        return self.streams[stream]

    def stream_days(self, stream: str) -> int:
        return self.days[self.streams[stream]]

    def cutoff_day(self, klass: str, now: datetime) -> date:
        """Days strictly before this one are past the class's age."""
        return (now.astimezone(UTC) - timedelta(days=self.days[klass])).date()

    def strictest(self, classes) -> str:
        """Of several classes, the one kept the shortest (a derived row can reveal every input)."""
        return min(classes, key=lambda k: (self.days[k], k))


def policy_path(paths: Paths):
    return paths.root / "privacy" / "policy.toml"


def load_policy(paths: Paths) -> Policy:
    p = policy_path(paths)
    if not p.exists():
        return Policy()
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"{p}: not valid TOML: {e}") from None
    ret = doc.get("retention", {})
    unknown = set(doc) - {"retention"} | (set(ret) - {*DEFAULT_DAYS, "streams"})
    if unknown:
        raise PolicyError(f"{p}: unknown keys {sorted(unknown)} (known: retention.{{{', '.join(DEFAULT_DAYS)}}}, "
                          "retention.streams)")
    days = dict(DEFAULT_DAYS)
    for k in DEFAULT_DAYS:
        if k in ret:
            v = ret[k]
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 36500:
                raise PolicyError(f"{p}: retention.{k} must be a whole number of days in 1..36500, got {v!r}")
            days[k] = v
    streams = dict(STREAM_CLASS)
    for s, k in (ret.get("streams") or {}).items():
        if s not in STREAM_CLASS:
            raise PolicyError(f"{p}: retention.streams.{s}: unknown stream (known: {sorted(STREAM_CLASS)})")
        if k not in DEFAULT_DAYS:
            raise PolicyError(f"{p}: retention.streams.{s}: unknown class {k!r} (known: {sorted(DEFAULT_DAYS)})")
        streams[s] = k
    return Policy(days=days, streams=streams, source=str(p))
