"""Recover or discard the `.part` files a crashed writer left in the landing zone.

A `.part` file is a segment that was being written when its writer died (kill -9, power
loss). Everything up to the last flush is on disk; the tail may be cut anywhere. At start
the collector (which holds the one lock for its user/device, so no live writer owns these
files) keeps the longest valid prefix and publishes it the normal way:

* CSV: the header row must be exactly the stream's schema columns; then every complete line
  (ending in a newline) that parses to the right number of fields is kept, up to the first
  one that does not. The file is truncated to that prefix, fsynced and renamed.
* binary: the 64-byte header must be valid and name this user/device; whole 64-byte records
  are kept up to the first one with an invalid event type or an implausible timestamp; a
  footer (count, CRC-32) is computed and appended; then fsync and rename.

A file with no valid row (e.g. killed before the header reached the disk) is discarded
(deleted). Recovery is idempotent: a crash during it leaves a `.part` that the next start
recovers again. Returns counts; nothing here raises for a bad file.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from focuslake import events as ev
from focuslake.schemas import BINARY_STREAM, CSV_STREAMS, MIN_TS_US
from focuslake.segments import PART_SUFFIX, fsync_dir

log = logging.getLogger("collectors.agent.recovery")
_MAX_TS_US = 4_102_444_800_000_000   # 2100-01-01: a record beyond it is garbage, not data


@dataclass
class RecoveryReport:
    recovered: int = 0          # .part files published with their valid prefix
    discarded: int = 0          # .part files with nothing valid, deleted
    rows_recovered: int = 0     # CSV rows / binary records kept
    bytes_cut: int = 0          # trailing bytes dropped (incomplete rows/records)
    files: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"recovered": self.recovered, "discarded": self.discarded,
                "rows_recovered": self.rows_recovered, "bytes_cut": self.bytes_cut,
                "files": self.files[-50:]}


def find_parts(landing: Path, user_id: str, device_id: str) -> list[Path]:
    out = []
    for stream in (*CSV_STREAMS, BINARY_STREAM):
        base = landing / stream / user_id / device_id
        if base.is_dir():
            out.extend(sorted(base.glob(f"*/*{PART_SUFFIX}")))
    return out


def _csv_prefix(data: bytes, columns: list[str]) -> tuple[int, int]:
    """(bytes of the valid prefix, data rows in it); (0, 0) if the header is not valid."""
    nl = data.find(b"\n")
    if nl < 0:
        return 0, 0
    try:
        header = next(csv.reader([data[:nl].decode("utf-8")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        return 0, 0
    if header != columns:
        return 0, 0
    end, rows, pos = nl + 1, 0, nl + 1
    width = len(columns)
    while pos < len(data):
        nxt = data.find(b"\n", pos)
        if nxt < 0:
            break                              # the cut line: no newline yet
        line = data[pos:nxt]
        try:
            fields_ = next(csv.reader(io.StringIO(line.decode("utf-8"), newline="")))
        except (UnicodeDecodeError, StopIteration, csv.Error):
            break
        if len(fields_) != width or not fields_[0].isdigit():
            break                              # a quoted field cut across lines, or garbage
        rows += 1
        end = pos = nxt + 1
    return end, rows


def _binary_prefix(data: bytes, user_id: str, device_id: str) -> tuple[int, np.ndarray | None]:
    if len(data) < ev.HEADER_SIZE:
        return 0, None
    h = np.frombuffer(data[:ev.HEADER_SIZE], dtype=ev.HEADER_DTYPE)[0]
    if (bytes(h["magic"]) != ev.SEGMENT_MAGIC or int(h["version"]) != ev.FORMAT_VERSION
            or int(h["record_size"]) != ev.RECORD_SIZE
            or bytes(h["user_id"]).rstrip(b"\0") != user_id.encode()
            or bytes(h["device_id"]).rstrip(b"\0") != device_id.encode()):
        return 0, None
    n = (len(data) - ev.HEADER_SIZE) // ev.RECORD_SIZE
    recs = np.frombuffer(data, dtype=ev.EVENT_DTYPE, count=n, offset=ev.HEADER_SIZE)
    ts = recs["timestamp_us"]
    good = (np.isin(recs["event_type"], ev.VALID_EVENT_TYPES) & (ts >= MIN_TS_US) & (ts < _MAX_TS_US))
    bad = np.flatnonzero(~good)
    k = int(bad[0]) if bad.size else n
    return ev.HEADER_SIZE + k * ev.RECORD_SIZE, recs[:k]


def recover_part(part: Path, stream: str, user_id: str, device_id: str, durable: bool = True) -> tuple[str, int, int]:
    """Recover one .part file. Returns (outcome "recovered"|"discarded", rows kept, bytes cut)."""
    final = part.with_name(part.name[: -len(PART_SUFFIX)])
    data = part.read_bytes()
    if stream == BINARY_STREAM:
        keep, recs = _binary_prefix(data, user_id, device_id)
        rows = 0 if recs is None else len(recs)
        footer = ev.pack_footer(rows, zlib.crc32(recs.tobytes())) if rows else b""
    else:
        keep, rows = _csv_prefix(data, CSV_STREAMS[stream].names)
        footer = b""
    if rows == 0 or final.exists():
        # nothing worth publishing (or, impossibly, a published twin): drop it
        part.unlink()
        if durable:
            fsync_dir(part.parent)
        return "discarded", 0, len(data)
    with open(part, "r+b") as fh:
        fh.truncate(keep)
        fh.seek(keep)
        fh.write(footer)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    os.replace(part, final)
    if durable:
        fsync_dir(final.parent)
    return "recovered", rows, len(data) - keep


def recover_landing(landing: Path, user_id: str, device_id: str, durable: bool = True) -> RecoveryReport:
    rep = RecoveryReport()
    for part in find_parts(landing, user_id, device_id):
        stream = part.relative_to(landing).parts[0]
        try:
            outcome, rows, cut = recover_part(part, stream, user_id, device_id, durable)
        except OSError as e:   # unreadable landing: leave it for the next start, say so
            log.error("cannot recover %s: %s", part, e)
            rep.files.append({"path": str(part), "outcome": f"error: {e.strerror or e}"})
            continue
        if outcome == "recovered":
            rep.recovered += 1
            rep.rows_recovered += rows
        else:
            rep.discarded += 1
        rep.bytes_cut += cut
        rep.files.append({"path": str(part.relative_to(landing)), "outcome": outcome, "rows": rows,
                          "bytes_cut": cut})
        log.info("%s %s (%d rows kept, %d bytes cut)", outcome, part, rows, cut)
    return rep
