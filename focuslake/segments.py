"""Crash-safe segment writers for the landing zone. The real collectors and the synthetic
workload generator both write through these classes.

Contract (ARCHITECTURE.md, "Landing zone"):
  landing/<stream>/<user_id>/<device_id>/<YYYY-MM-DD>/<segment>
A writer appends to `<segment>.part`; sealing flushes, fsyncs and renames it to
`<segment>`, then fsyncs the directory. Readers never see a half-written segment and ignore
`.part` files. Segments rotate when the data's time leaves the segment's window
(`rotate_seconds`, aligned to the epoch) or the file passes `rotate_bytes`.

Importers name their segments by content instead (`name=`): one segment per writer, never
rotated, and never written twice -- a name that already exists raises FileExistsError, so
landing the same content again is the caller's no-op, not a second copy.
"""
from __future__ import annotations

import csv
import io
import os
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from focuslake import events as ev
from focuslake.schemas import BINARY_STREAM, CSV_STREAMS, ID_RE

PART_SUFFIX = ".part"


def utc_date(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, tz=UTC).strftime("%Y-%m-%d")


def _stamp(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def fsync_dir(path: Path) -> None:
    """fsync a directory (its entries: a rename is durable) -- or a file, the same way."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process exists (the writer of a `.tmp-<pid>` file or folder, say)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def check_id(kind: str, value: str) -> str:
    if not ID_RE.match(value or ""):
        raise ValueError(f"{kind} {value!r} must match {ID_RE.pattern} (letters, digits, _ . -; "
                         "at most 20 bytes)")
    return value


class _SegmentWriter:
    suffix = ""

    def __init__(self, landing: str | Path, stream: str, user_id: str, device_id: str, *,
                 rotate_seconds: int = 60, rotate_bytes: int = 8 << 20, durable: bool = True,
                 name: str | None = None):
        if name is not None and (not name or "/" in name or name.startswith(".")
                                 or name.endswith(PART_SUFFIX)):
            raise ValueError(f"segment name {name!r}: a plain file name without suffix")
        self.name = name  # fixed, content-derived segment name (importers); None: time-stamped
        self.landing = Path(landing)
        self.stream = stream
        self.user_id = check_id("user_id", user_id)
        self.device_id = check_id("device_id", device_id)
        self.rotate_us = int(rotate_seconds * 1_000_000)
        self.rotate_bytes = rotate_bytes
        self.durable = durable
        self._fh: io.BufferedWriter | None = None
        self._part: Path | None = None
        self._window: int | None = None
        self._bytes = 0
        self.sealed: list[Path] = []

    # -- naming -------------------------------------------------------------------------
    def _segment_path(self, window_start_us: int) -> Path:
        d = (self.landing / self.stream / self.user_id / self.device_id / utc_date(window_start_us))
        d.mkdir(parents=True, exist_ok=True)
        if self.name is not None:  # content-derived: written once, never a second copy
            p = d / f"{self.name}{self.suffix}"
            if p.exists():
                raise FileExistsError(str(p))
            return p
        base = f"{self.stream}-{_stamp(window_start_us)}"
        seq = 0
        while True:  # never reuse a name: a restart in the same window gets the next number
            p = d / f"{base}-{seq:04d}{self.suffix}"
            if not p.exists() and not p.with_name(p.name + PART_SUFFIX).exists():
                return p
            seq += 1

    def _window_of(self, ts_us: int) -> int:
        return ts_us - ts_us % self.rotate_us

    # -- lifecycle ----------------------------------------------------------------------
    def _open(self, ts_us: int) -> None:
        self._window = self._window_of(ts_us)
        final = self._segment_path(self._window)
        self._part = final.with_name(final.name + PART_SUFFIX)
        if self.name is not None:  # a crashed earlier attempt at the same content: start over
            self._part.unlink(missing_ok=True)
        self._fh = open(self._part, "xb")  # noqa: SIM115 -- open across writes; seal() closes it
        self._bytes = 0
        self._start(ts_us)

    def _start(self, ts_us: int) -> None:  # pragma: no cover - overridden
        pass

    def _finish(self) -> None:  # pragma: no cover - overridden
        pass

    def _write(self, data: bytes) -> None:
        assert self._fh is not None
        self._fh.write(data)
        self._bytes += len(data)

    def _ensure_open(self, ts_us: int) -> None:
        if self._fh is not None and self.name is None and (self._window_of(ts_us) != self._window
                                                           or self._bytes >= self.rotate_bytes):
            self.seal()
        if self._fh is None:
            self._open(ts_us)

    def flush(self) -> None:
        """Push buffered bytes to the OS (bounded loss: at most what was written since)."""
        if self._fh is not None:
            self._fh.flush()
            if self.durable:
                os.fsync(self._fh.fileno())

    def seal(self) -> Path | None:
        """Finish the current segment and atomically publish it. Returns its path."""
        if self._fh is None:
            return None
        self._finish()
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())
        self._fh.close()
        assert self._part is not None
        final = self._part.with_name(self._part.name[: -len(PART_SUFFIX)])
        os.replace(self._part, final)
        if self.durable:
            fsync_dir(final.parent)
        self._fh, self._part, self._window = None, None, None
        self.sealed.append(final)
        return final

    close = seal

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.seal()


class CsvSegmentWriter(_SegmentWriter):
    """CSV segments for one stream; the header row comes from focuslake.schemas."""

    suffix = ".csv"

    def __init__(self, landing, stream: str, user_id: str, device_id: str, **kw):
        if stream not in CSV_STREAMS:
            raise ValueError(f"unknown CSV stream {stream!r}; known: {sorted(CSV_STREAMS)}")
        super().__init__(landing, stream, user_id, device_id, **kw)
        self.columns = CSV_STREAMS[stream].names
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")

    def _start(self, ts_us: int) -> None:
        self._csv.writerow(self.columns)
        self._drain()

    def _drain(self) -> None:
        data = self._buf.getvalue().encode("utf-8")
        self._buf.seek(0)
        self._buf.truncate()
        self._write(data)

    def write_row(self, row: Sequence) -> None:
        """One row, values in schema column order; row[0] is ts_us. None -> empty field."""
        self._ensure_open(int(row[0]))
        self._csv.writerow(["" if v is None else v for v in row])
        self._drain()

    def write_rows(self, rows: Iterable[Sequence]) -> None:
        if self.name is not None:  # one segment, no rotation: the rows in one write
            rows = list(rows)
            if rows:
                self._ensure_open(int(rows[0][0]))
                self._csv.writerows(["" if v is None else v for v in row] for row in rows)
                self._drain()
            return
        for row in rows:
            self.write_row(row)


class EventSegmentWriter(_SegmentWriter):
    """Binary segments of 64-byte records: header | records | footer (count, CRC-32)."""

    suffix = ".bin"

    def __init__(self, landing, user_id: str, device_id: str, *, flags: int = 0, **kw):
        super().__init__(landing, BINARY_STREAM, user_id, device_id, **kw)
        self.flags = flags
        self._crc = 0
        self._count = 0

    def _start(self, ts_us: int) -> None:
        self._crc, self._count = 0, 0
        self._write(ev.pack_header(self.user_id, self.device_id, ts_us, self.flags))

    def _finish(self) -> None:
        self._write(ev.pack_footer(self._count, self._crc))

    def _append(self, recs: np.ndarray) -> None:
        body = recs.tobytes()
        self._crc = zlib.crc32(body, self._crc)
        self._count += len(recs)
        self._write(body)

    def write_records(self, records: np.ndarray) -> None:
        """Append records (EVENT_DTYPE), in time order, rotating at window/size bounds."""
        recs = np.ascontiguousarray(records, dtype=ev.EVENT_DTYPE)
        if not (self.flags & ev.FLAG_KEY_IDENTITY_CONSENT):
            keys = np.isin(recs["event_type"], ev.KEY_TYPES)
            if keys.any():  # no consent: key identity never reaches the disk
                recs = recs.copy()
                recs["data"][keys, 0] = 0
                recs["data"][keys, 1] = 0
        i, n = 0, len(recs)
        ts = recs["timestamp_us"].astype(np.int64)
        while i < n:
            self._ensure_open(int(ts[i]))
            # records of this window, bounded by the size budget left
            end_of_window = self._window + self.rotate_us
            j = int(np.searchsorted(ts, end_of_window, side="left", sorter=None)) if ts[-1] >= end_of_window else n
            j = max(j, i + 1)
            room = max(1, (self.rotate_bytes - self._bytes) // ev.RECORD_SIZE)
            j = min(j, i + room)
            self._append(recs[i:j])
            i = j
