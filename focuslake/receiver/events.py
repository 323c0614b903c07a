"""Validation of generic JSON events into rows of the `app_events` CSV stream.

Two payload shapes are accepted (docs/receiver.md):

* the generic event of seeds 002/004::

    {"event_id": "...", "event_name": "...", "event_category"|"event_type": "...",
     "timestamp": "2025-10-25T21:26:11Z", "user_id": "...", "session_id": "...",
     "properties": {...}, "context": {...}, "privacy": {"consent_given": true, ...}}

  `event_name` falls back to `event_type` (seed 002's performance/video events carry only that);
  unknown top-level fields (seed 002's `platform`, `device_info`, ...) are kept in the context.
* seed 000's EyeCore snapshot ``{"session_id": "...", "timestamp": "...", "data": {...}}``:
  event_name `eyecore.snapshot`, `data` becomes the properties, the event id is derived from the
  content (so a re-sent snapshot gets the same id), the sensitive components' `enabled` flags go
  to the consent column.

Rules (each failure is one reason in the event's error list):
* timestamps are ISO 8601 strings with a UTC offset (no local time anywhere), between 2000 and
  24 h past the receiver's clock (the ingest's rule, focuslake.schemas);
* `user_id`, when present, must be the device's own user (the token decides who writes);
* ids and names are 1..128 characters without control characters; `properties`, `context` and
  `privacy` are JSON objects; `privacy` flags are booleans; an event is at most 64 KiB as JSON;
* `privacy.consent_given: false` means the event must not be kept: it is refused, and only its
  id and the reason are recorded (not its content).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from focuslake.schemas import CSV_STREAMS, MAX_FUTURE_SKEW_US, MIN_TS_US

STREAM = "app_events"
COLUMNS = CSV_STREAMS[STREAM].names
MAX_TEXT = 128
MAX_EVENT_BYTES = 64 * 1024
GENERIC_FIELDS = {"event_id", "event_name", "event_type", "event_category", "timestamp", "user_id",
                  "session_id", "properties", "context", "privacy"}
EYECORE_FIELDS = {"event_id", "session_id", "timestamp", "data", "user_id"}
EYECORE_SENSITIVE = ("voice_data", "camera_data", "keystroke_dynamics", "file_metadata")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
NO_CONSENT = "privacy.consent_given is false: event not stored"


@dataclass
class Checked:
    index: int
    row: dict | None = None              # app_events columns, when valid
    errors: list[str] = field(default_factory=list)
    event_id: str | None = None
    keep_raw: bool = True                 # False when the payload must not be stored (no consent)


def _text(ev: dict, key: str, errors: list[str], required: bool) -> str | None:
    v = ev.get(key)
    if v is None:
        if required:
            errors.append(f"{key}: required")
        return None
    if not isinstance(v, str):
        errors.append(f"{key}: must be a string, got {type(v).__name__}")
        return None
    if not 1 <= len(v) <= MAX_TEXT:
        errors.append(f"{key}: must be 1..{MAX_TEXT} characters")
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        errors.append(f"{key}: control characters are not allowed")
        return None
    return v


def parse_timestamp(v, now_us: int, errors: list[str]) -> int | None:
    if v is None:
        errors.append("timestamp: required")
        return None
    if not isinstance(v, str):
        errors.append("timestamp: must be an ISO 8601 string with a UTC offset, e.g. "
                      "2025-10-25T21:26:11Z")
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        errors.append(f"timestamp: not ISO 8601: {v[:64]!r}")
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        errors.append(f"timestamp: has no UTC offset (local time is ambiguous): {v[:64]!r}")
        return None
    ts_us = (dt - EPOCH) // ONE_US  # exact integer microseconds, no float rounding
    if ts_us < MIN_TS_US or ts_us > now_us + MAX_FUTURE_SKEW_US:
        errors.append(f"timestamp: out of range (before 2000 or more than 24 h in the future): {v[:64]!r}")
        return None
    return ts_us


def _object(ev: dict, key: str, errors: list[str]) -> dict:
    v = ev.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        errors.append(f"{key}: must be a JSON object, got {type(v).__name__}")
        return {}
    return v


def _dumps(v) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def check_event(index: int, ev, user_id: str, now_us: int, received_us: int) -> Checked:
    """One event -> a Checked with an app_events row or the reasons it was refused."""
    out = Checked(index)
    if not isinstance(ev, dict):
        out.errors.append(f"event must be a JSON object, got {type(ev).__name__}")
        return out
    errors = out.errors
    eyecore = "data" in ev and "event_name" not in ev and "event_type" not in ev
    if isinstance(ev.get("event_id"), str):
        out.event_id = ev["event_id"][:MAX_TEXT]
    uid = ev.get("user_id")
    if uid is not None and uid != user_id:
        errors.append(f"user_id: {str(uid)[:64]!r} is not this device's user {user_id!r} "
                      "(a device writes only its own user's data)")
    ts_us = parse_timestamp(ev.get("timestamp"), now_us, errors)
    session_id = _text(ev, "session_id", errors, required=eyecore)
    if eyecore:
        data = _object(ev, "data", errors)
        extras = {k: v for k, v in ev.items() if k not in EYECORE_FIELDS}
        consent = {k: bool(data[k].get("enabled")) for k in EYECORE_SENSITIVE
                   if isinstance(data.get(k), dict)}
        if "event_id" in ev:
            event_id = _text(ev, "event_id", errors, required=True)
        else:  # content-derived: the same snapshot sent twice has the same id
            event_id = "eyecore-" + hashlib.sha256(
                _dumps([ev.get("session_id"), ev.get("timestamp"), data]).encode()).hexdigest()[:32]
            out.event_id = event_id
        row = {"event_name": "eyecore.snapshot", "event_type": "eyecore", "source": "eyecore",
               "properties_json": _dumps(data), "context_json": _dumps(extras) if extras else None,
               "consent_json": _dumps(consent) if consent else None}
    else:
        event_id = _text(ev, "event_id", errors, required=True)
        name = _text(ev, "event_name", errors, required=False)
        etype = _text(ev, "event_category", errors, False) if "event_category" in ev else None
        if etype is None and "event_type" in ev:
            etype = _text(ev, "event_type", errors, required=False)
        if name is None and "event_name" not in ev:
            name = etype
            if name is None and "event_type" not in ev:
                errors.append("event_name: required (or event_type)")
        props = _object(ev, "properties", errors)
        context = dict(_object(ev, "context", errors))
        for k, v in ev.items():  # platform, device_info, ... : context, not lost
            if k not in GENERIC_FIELDS:
                context.setdefault(k, v)
        privacy = _object(ev, "privacy", errors)
        for k, v in privacy.items():
            if not isinstance(v, bool):
                errors.append(f"privacy.{k}: must be true or false, got {type(v).__name__}")
        if privacy.get("consent_given") is False:
            out.keep_raw = False
            out.errors[:] = [NO_CONSENT]
            return out
        row = {"event_name": name, "event_type": etype, "source": "generic",
               "properties_json": _dumps(props), "context_json": _dumps(context) if context else None,
               "consent_json": _dumps(privacy) if privacy else None}
    if errors:
        return out
    size = sum(len(v) for v in (row["properties_json"], row["context_json"] or "", row["consent_json"] or ""))
    if size > MAX_EVENT_BYTES:
        errors.append(f"event too large: {size} bytes of JSON (limit {MAX_EVENT_BYTES})")
        return out
    row.update(ts_us=ts_us, event_id=event_id, session_id=session_id, received_us=received_us)
    out.row = row
    out.event_id = event_id
    return out


def check_batch(events: list, user_id: str, now_us: int, received_us: int) -> list[Checked]:
    out, seen = [], set()
    for i, ev in enumerate(events):
        c = check_event(i, ev, user_id, now_us, received_us)
        if c.row is not None:
            if c.row["event_id"] in seen:
                c.row = None
                c.errors.append("event_id: duplicate within the batch (the first one was kept)")
            seen.add(c.event_id)
        out.append(c)
    return out
