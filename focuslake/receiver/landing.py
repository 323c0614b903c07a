"""Atomic, idempotent landing of received bytes, and request-body decoding.

A segment lands at landing/<stream>/<user_id>/<device_id>/<YYYY-MM-DD>/<segment_id> (the
contract of focuslake.segments): the bytes go to a hidden `.<segment_id>.<random>.part` file in
the same directory (the ingest ignores hidden and `.part` files), are fsynced, then hard-linked
to the final name -- link(2) fails if the name exists, so two racing uploads can never overwrite
each other -- and the directory is fsynced. An existing file with the same SHA-256 makes the
upload a no-op; a different one is a conflict.
"""
from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
import zlib
from pathlib import Path

from focuslake.segments import PART_SUFFIX, fsync_dir

MARKER = ".focuslake-receiver"  # in the landing root: uploaders refuse to drain this directory


class BodyError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def decode_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding (identity, gzip, zstd), refusing output beyond `limit` bytes
    (a small compressed body can expand enormously)."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return raw
    if enc in ("gzip", "x-gzip"):
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(raw, limit + 1)
            if len(out) > limit or d.unconsumed_tail:
                raise BodyError(413, f"decoded body exceeds {limit} bytes")
            out += d.flush()
            if len(out) > limit:
                raise BodyError(413, f"decoded body exceeds {limit} bytes")
        except zlib.error as e:
            raise BodyError(400, f"body is not valid gzip: {e}") from None
        if not d.eof:
            raise BodyError(400, "gzip body is truncated")
        if d.unused_data:
            raise BodyError(400, "trailing bytes after the gzip stream (multi-member gzip is not accepted)")
        return out
    if enc == "zstd":
        import zstandard

        try:
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True) as r:
                out = r.read(limit + 1)
        except zstandard.ZstdError as e:
            raise BodyError(400, f"body is not valid zstd: {e}") from None
        if len(out) > limit:
            raise BodyError(413, f"decoded body exceeds {limit} bytes")
        # a stream cut short decodes to fewer bytes without an error: the segment checksum or
        # the JSON parser downstream refuses it
        return out
    raise BodyError(415, f"Content-Encoding {encoding!r} is not supported (identity, gzip, zstd)")


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _tmp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}{PART_SUFFIX}")


def land_bytes(final: Path, data: bytes, sha256: str) -> str:
    """Write `data` at `final` atomically. Returns 'landed', or 'exists' when a file with the
    same SHA-256 is already there; raises FileExistsError when a different one is."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        return _compare(final, sha256)
    tmp = _tmp_name(final)
    with open(tmp, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return link_into_place(tmp, final, sha256)


def link_into_place(tmp: Path, final: Path, sha256: str) -> str:
    """Publish a fsynced file under its final name without ever replacing one."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return _compare(final, sha256)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(final.parent)
    return "landed"


def _compare(final: Path, sha256: str) -> str:
    if sha256_file(final) == sha256:
        return "exists"
    raise FileExistsError(str(final))


def sweep_stale_parts(root: Path, older_than_s: float = 3600) -> int:
    """Remove the hidden temp files a killed receiver left behind (never a sealed segment)."""
    n, cutoff = 0, time.time() - older_than_s
    if not root.exists():
        return 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.startswith(".") and f.endswith(PART_SUFFIX):
                p = Path(dirpath) / f
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                        n += 1
                except FileNotFoundError:
                    pass
    return n
