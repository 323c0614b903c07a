"""The 64-byte event record and the binary segment format, mirrored from
native/include/focus_event.h (the one C header). This module is the one numpy home.

Decoding is vectorised: a segment is read into one structured array; there is no
per-record Python loop anywhere in the ingest path.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np

RECORD_SIZE = 64
FORMAT_VERSION = 1
SEGMENT_MAGIC = b"FOCUSEVT"
FOOTER_MAGIC = b"FEND"
ID_LEN = 20
FLAG_KEY_IDENTITY_CONSENT = 0x1


class EventType(IntEnum):
    UNKNOWN = 0
    KEY_PRESS = 1
    KEY_RELEASE = 2
    MOUSE_MOVE = 3
    MOUSE_CLICK = 4
    MOUSE_WHEEL = 5
    WINDOW_FOCUS_CHANGE = 6
    WINDOW_TITLE_CHANGE = 7
    WINDOW_MINIMIZE = 8
    WINDOW_MAXIMIZE = 9
    IDLE_START = 10
    IDLE_END = 11
    SCREEN_LOCK = 12
    SCREEN_UNLOCK = 13
    RESERVED_14 = 14
    RESERVED_15 = 15


# Types a valid record may carry (UNKNOWN is "should never occur": quarantined).
VALID_EVENT_TYPES = np.array([t.value for t in EventType if t != EventType.UNKNOWN], dtype="<u4")
KEY_TYPES = np.array([EventType.KEY_PRESS, EventType.KEY_RELEASE], dtype="<u4")

# The union `data` is three little-endian 32-bit words; their meaning depends on event_type
# (see the header). Bronze (dbt) gives them names; signed fields (x, y, dx, dy) are the
# two's-complement reading of data_0/data_1.
EVENT_DTYPE = np.dtype([
    ("timestamp_us", "<u8"),
    ("event_type", "<u4"),
    ("process_id", "<u4"),
    ("app_name", "S32"),
    ("window_handle", "<u4"),
    ("data", "<u4", (3,)),
])
assert EVENT_DTYPE.itemsize == RECORD_SIZE

HEADER_DTYPE = np.dtype([
    ("magic", "S8"),
    ("version", "<u2"),
    ("record_size", "<u2"),
    ("flags", "<u4"),
    ("created_us", "<u8"),
    ("user_id", "S20"),
    ("device_id", "S20"),
])
assert HEADER_DTYPE.itemsize == 64

FOOTER_DTYPE = np.dtype([
    ("magic", "S4"),
    ("crc32", "<u4"),
    ("record_count", "<u8"),
])
assert FOOTER_DTYPE.itemsize == 16

HEADER_SIZE = HEADER_DTYPE.itemsize
FOOTER_SIZE = FOOTER_DTYPE.itemsize


class SegmentError(ValueError):
    """A binary segment that cannot be trusted; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SegmentHeader:
    version: int
    record_size: int
    flags: int
    created_us: int
    user_id: str
    device_id: str

    @property
    def key_identity_consent(self) -> bool:
        return bool(self.flags & FLAG_KEY_IDENTITY_CONSENT)


def pack_header(user_id: str, device_id: str, created_us: int, flags: int = 0) -> bytes:
    h = np.zeros(1, dtype=HEADER_DTYPE)
    h["magic"] = SEGMENT_MAGIC
    h["version"] = FORMAT_VERSION
    h["record_size"] = RECORD_SIZE
    h["flags"] = flags
    h["created_us"] = created_us
    for name, value in (("user_id", user_id), ("device_id", device_id)):
        raw = value.encode("ascii")
        if not raw or len(raw) > ID_LEN:
            raise ValueError(f"{name} must be 1..{ID_LEN} ASCII bytes: {value!r}")
        h[name] = raw
    return h.tobytes()


def pack_footer(record_count: int, crc32: int) -> bytes:
    f = np.zeros(1, dtype=FOOTER_DTYPE)
    f["magic"] = FOOTER_MAGIC
    f["crc32"] = crc32 & 0xFFFFFFFF
    f["record_count"] = record_count
    return f.tobytes()


def encode_segment(records: np.ndarray, user_id: str, device_id: str, created_us: int,
                   flags: int = 0) -> bytes:
    """Whole segment as bytes (header | records | footer). Used by tests and benchmarks;
    collectors stream through segments.EventSegmentWriter instead."""
    body = np.ascontiguousarray(records, dtype=EVENT_DTYPE).tobytes()
    return (pack_header(user_id, device_id, created_us, flags) + body
            + pack_footer(len(records), zlib.crc32(body)))


def decode_segment(buf: bytes | memoryview | np.ndarray) -> tuple[SegmentHeader, np.ndarray]:
    """Validate and decode a whole binary segment. Raises SegmentError with the reason.

    Returns the header and a read-only structured array viewing the record bytes (no copy).
    """
    raw = np.frombuffer(buf, dtype=np.uint8)
    n = raw.size
    if n < HEADER_SIZE + FOOTER_SIZE:
        raise SegmentError("truncated", f"{n} bytes is shorter than header+footer "
                                        f"({HEADER_SIZE + FOOTER_SIZE})")
    h = raw[:HEADER_SIZE].view(HEADER_DTYPE)[0]
    if bytes(h["magic"]) != SEGMENT_MAGIC:
        raise SegmentError("bad_magic", f"header magic {bytes(h['magic'])!r} != {SEGMENT_MAGIC!r}")
    if int(h["version"]) != FORMAT_VERSION:
        raise SegmentError("unsupported_version", f"format version {int(h['version'])}, "
                                                  f"this reader knows {FORMAT_VERSION}")
    if int(h["record_size"]) != RECORD_SIZE:
        raise SegmentError("bad_record_size", f"record size {int(h['record_size'])} != {RECORD_SIZE}")
    body_len = n - HEADER_SIZE - FOOTER_SIZE
    if body_len % RECORD_SIZE:
        raise SegmentError("truncated", f"record area of {body_len} bytes is not a multiple of "
                                        f"{RECORD_SIZE} (file cut short or footer missing)")
    f = raw[n - FOOTER_SIZE:].view(FOOTER_DTYPE)[0]
    if bytes(f["magic"]) != FOOTER_MAGIC:
        raise SegmentError("missing_footer", f"footer magic {bytes(f['magic'])!r} != {FOOTER_MAGIC!r} "
                                             "(segment not sealed)")
    count = body_len // RECORD_SIZE
    if int(f["record_count"]) != count:
        raise SegmentError("count_mismatch", f"footer says {int(f['record_count'])} records, "
                                             f"file holds {count}")
    body = raw[HEADER_SIZE:n - FOOTER_SIZE]
    crc = zlib.crc32(body)
    if crc != int(f["crc32"]):
        raise SegmentError("bad_checksum", f"CRC-32 {crc:#010x} != footer {int(f['crc32']):#010x}")
    try:
        user_id = bytes(h["user_id"]).rstrip(b"\0").decode("ascii")
        device_id = bytes(h["device_id"]).rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError as e:
        raise SegmentError("bad_header", f"user/device id is not ASCII: {e}") from None
    header = SegmentHeader(int(h["version"]), int(h["record_size"]), int(h["flags"]),
                           int(h["created_us"]), user_id, device_id)
    return header, body.view(EVENT_DTYPE)


def read_segment(path: str | Path) -> tuple[SegmentHeader, np.ndarray]:
    return decode_segment(np.fromfile(path, dtype=np.uint8))


def make_records(n: int) -> np.ndarray:
    return np.zeros(n, dtype=EVENT_DTYPE)
