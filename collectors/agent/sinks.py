"""One sink per landing stream: rows go through focuslake.segments writers, with backpressure.

Rows are queued in memory and written + flushed (+ fsynced) by `pump()`. When the landing
zone fails (disk full, unwritable, vanished), the sink:
  * abandons the open segment (closes it and deletes its .part, so nothing half-written is
    ever published) and puts the rows that were in it back at the head of the queue;
  * keeps at most `max_pending` rows in memory, dropping the oldest and counting them;
  * retries every `retry_seconds`; the first success clears the error.
The collector never crashes because of the landing; `status` shows `error`, `error_since`,
`rows_pending` and `rows_dropped` per stream.

Segments are sealed when the row time leaves the rotation window (the writer does that) and
also, by `seal_due()`, once the window is over plus a grace period, so sparse streams land
within a window instead of waiting for their next row.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from focuslake import events as ev
from focuslake.segments import PART_SUFFIX, CsvSegmentWriter, EventSegmentWriter

log = logging.getLogger("collectors.agent.sinks")


def _utc(us: int | None) -> str | None:
    if us is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us / 1e6)) + f".{us % 1_000_000 // 1000:03d}Z"


class Sink:
    def __init__(self, stream: str, make_writer: Callable[[], object], *, rotate_seconds: float,
                 max_pending: int, retry_seconds: float, grace_seconds: float = 2.0):
        self.stream = stream
        self._make_writer = make_writer
        self.rotate_us = int(rotate_seconds * 1_000_000)
        self.max_pending = max_pending
        self.retry_us = int(retry_seconds * 1_000_000)
        self.grace_us = int(grace_seconds * 1_000_000)
        self.writer = None
        self.pending: deque = deque()
        self.in_segment: list = []        # rows in the open .part (re-queued if it fails)
        self.window_end_us: int | None = None
        self.rows_sealed = 0              # rows in published segments
        self._open_flushed = 0            # rows of the open .part that were flushed
        self.rows_dropped = 0
        self.segments_sealed = 0
        self.last_flush_us: int | None = None
        self.last_seal_us: int | None = None
        self.error: str | None = None
        self.error_since_us: int | None = None
        self.errors_total = 0
        self._retry_at_us = 0
        self.consented = True             # False: the consent registry withdrew this stream
        self.rows_no_consent = 0          # rows not written because of that

    # -- rows in ------------------------------------------------------------------------
    def put(self, row) -> None:
        if not self.consented:
            self.rows_no_consent += 1
            return
        self.pending.append(row)
        self._trim()

    def _trim(self) -> None:
        while len(self.pending) > self.max_pending:
            self.pending.popleft()
            self.rows_dropped += 1

    # -- writing ------------------------------------------------------------------------
    def _write_one(self, row) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _row_ts(self, row) -> int:
        return int(row[0])

    def pump(self, now_us: int) -> bool:
        """Write and flush queued rows. Returns True if the landing is healthy."""
        if not self.pending:
            return self.error is None
        if self.error is not None and now_us < self._retry_at_us:
            return False
        try:
            if self.writer is None:
                self.writer = self._make_writer()
            while self.pending:
                row = self.pending[0]
                sealed_before = len(self.writer.sealed)
                try:
                    self._write_one(row)
                finally:
                    if len(self.writer.sealed) != sealed_before:   # rotated: previous rows are safe
                        self._sealed(now_us)
                self.pending.popleft()
                self.in_segment.append(row)
                ts = self._row_ts(row)
                self.window_end_us = ts - ts % self.rotate_us + self.rotate_us
            self.writer.flush()
        except OSError as e:
            self._fail(e, now_us)
            return False
        self._open_flushed = len(self.in_segment)
        self.last_flush_us = now_us
        if self.error is not None:
            log.warning("%s: landing writable again after %s", self.stream, self.error)
        self.error, self.error_since_us = None, None
        return True

    @property
    def rows_written(self) -> int:
        """Rows on disk: in published segments or flushed into the open .part."""
        return self.rows_sealed + self._open_flushed

    def _sealed(self, now_us: int) -> None:
        self.rows_sealed += len(self.in_segment)
        self.in_segment = []
        self._open_flushed = 0
        self.segments_sealed += 1
        self.last_seal_us = now_us

    def seal_due(self, now_us: int, force: bool = False) -> None:
        """Seal the open segment if its window is over (plus grace), or always if `force`."""
        if self.writer is None or self.writer._fh is None:
            return
        if not force and (self.window_end_us is None or now_us < self.window_end_us + self.grace_us):
            return
        try:
            self.writer.seal()
        except OSError as e:
            self._fail(e, now_us)
            return
        self._sealed(now_us)
        self.window_end_us = None

    def _fail(self, e: OSError, now_us: int) -> None:
        msg = f"{type(e).__name__}: {e.strerror or e}" + (f" ({e.filename})" if getattr(e, "filename", None) else "")
        if self.error is None:
            log.error("%s: landing write failed, keeping rows in memory (max %d) and retrying: %s",
                      self.stream, self.max_pending, msg)
            self.error_since_us = now_us
        self.error = msg
        self.errors_total += 1
        self._retry_at_us = now_us + self.retry_us
        w, self.writer = self.writer, None
        part = getattr(w, "_part", None) if w is not None else None
        fh = getattr(w, "_fh", None) if w is not None else None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass
        requeue = True
        final = Path(str(part)[: -len(PART_SUFFIX)]) if part is not None else None
        if part is not None and not os.path.exists(part) and final.exists():
            self._sealed(now_us)                 # it was published; only a later step failed
            part = None
        if part is not None:
            try:
                os.unlink(part)                  # never publish (or later recover) a torn segment
            except FileNotFoundError:
                pass
            except OSError as e2:                # it stays; the next start recovers its prefix
                log.error("%s: cannot remove %s (%s); its rows stay there", self.stream, part, e2)
                requeue = False
        if requeue and self.in_segment:
            self.pending.extendleft(reversed(self.in_segment))
        self.in_segment = []
        self._open_flushed = 0
        self.window_end_us = None
        self._trim()

    def close(self, now_us: int) -> None:
        self.pump(now_us)
        if self.error is None:
            self.seal_due(now_us, force=True)

    def status(self) -> dict:
        return {"rows_written": self.rows_written, "rows_pending": len(self.pending),
                "rows_dropped": self.rows_dropped, "segments_sealed": self.segments_sealed,
                "last_flush": _utc(self.last_flush_us), "last_seal": _utc(self.last_seal_us),
                "error": self.error, "error_since": _utc(self.error_since_us),
                "errors_total": self.errors_total, "consented": self.consented,
                "rows_no_consent": self.rows_no_consent}


class CsvSink(Sink):
    def __init__(self, landing, stream: str, user_id: str, device_id: str, *, rotate_seconds: float,
                 rotate_bytes: int, durable: bool, **kw):
        def make():
            return CsvSegmentWriter(landing, stream, user_id, device_id, rotate_seconds=rotate_seconds,
                                    rotate_bytes=rotate_bytes, durable=durable)
        super().__init__(stream, make, rotate_seconds=rotate_seconds, **kw)
        from focuslake.schemas import CSV_STREAMS
        self.columns = CSV_STREAMS[stream].names

    def put_dict(self, values: dict) -> None:
        """A row by column name; columns the schema has but `values` lacks are empty."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.stream}: no such columns {sorted(unknown)}")
        self.put(tuple(values.get(c) for c in self.columns))

    def _write_one(self, row: Sequence) -> None:
        self.writer.write_row(row)


class EventSink(Sink):
    """Binary events; a row is one EVENT_DTYPE record (numpy void)."""

    def __init__(self, landing, user_id: str, device_id: str, *, rotate_seconds: float,
                 rotate_bytes: int, durable: bool, flags: int = 0, **kw):
        def make():
            return EventSegmentWriter(landing, user_id, device_id, flags=flags,
                                      rotate_seconds=rotate_seconds, rotate_bytes=rotate_bytes,
                                      durable=durable)
        super().__init__("events", make, rotate_seconds=rotate_seconds, **kw)

    def _row_ts(self, row) -> int:
        return int(row["timestamp_us"])

    def _write_one(self, row) -> None:
        self.writer.write_records(np.array([row], dtype=ev.EVENT_DTYPE))

    def put_event(self, ts_us: int, etype: int, pid: int = 0, app: str = "", window: int = 0,
                  d0: int = 0, d1: int = 0, d2: int = 0) -> None:
        rec = np.zeros(1, ev.EVENT_DTYPE)[0]
        rec["timestamp_us"] = ts_us
        rec["event_type"] = etype
        rec["process_id"] = pid & 0xFFFFFFFF
        rec["app_name"] = app_bytes(app)
        rec["window_handle"] = window & 0xFFFFFFFF
        rec["data"] = (d0 & 0xFFFFFFFF, d1 & 0xFFFFFFFF, d2 & 0xFFFFFFFF)
        self.put(rec)


def app_bytes(name: str) -> bytes:
    """UTF-8, at most 31 bytes (cut at a character boundary) so the field stays NUL-terminated."""
    b = (name or "").encode("utf-8")
    if len(b) <= 31:
        return b
    b = b[:31]
    while b and (b[-1] & 0xC0) == 0x80:
        b = b[:-1]
    if b and b[-1] >= 0xC0:   # a lead byte whose continuation was cut
        b = b[:-1]
    return b
