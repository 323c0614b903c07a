"""The ingest receiver: a FastAPI app that lands other machines' segments and JSON events in
this machine's landing zone (docs/receiver.md has the protocol and exact commands).

    PUT  /v1/segments/{stream}/{segment_id}?date=YYYY-MM-DD   a sealed segment (whole or chunked)
    GET  /v1/segments/{stream}/{segment_id}?date=...&sha256=...  landed / partial (offset) / absent
    POST /v1/events                                            a batch of generic JSON events
    GET  /health                                               liveness (no auth)
    GET  /openapi.json, /docs                                  the API description

Every /v1 request carries `Authorization: Bearer <token>`; the token names one user/device and
everything the request writes lands under that user/device only.
"""

import asyncio
import hashlib
import json
import logging
import os
import re
import threading
import time
from contextlib import asynccontextmanager
from datetime import date as Date
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from pydantic import Field as PydField
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from focuslake import events as binev
from focuslake.receiver import events as appev
from focuslake.receiver.commit import Committer, Item
from focuslake.receiver.landing import (
    MARKER,
    BodyError,
    decode_body,
    land_bytes,
    link_into_place,
    sha256_file,
    sweep_stale_parts,
)
from focuslake.receiver.ratelimit import RateLimiter, retry_after
from focuslake.receiver.settings import Settings
from focuslake.receiver.store import Device, Store
from focuslake.schemas import ALL_STREAMS, BINARY_STREAM
from focuslake.segments import fsync_dir, utc_date

log = logging.getLogger("focuslake.receiver")
API_VERSION = "1"
SEGMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,123}\.(csv|bin)$"  # a file name, no path
SHA256_PATTERN = r"^[0-9a-f]{64}$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$"
CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


Stream = Enum("Stream", {s: s for s in ALL_STREAMS}, type=str)


# -- helpers ----------------------------------------------------------------------------------
def _error(status: int, detail: str, headers: dict | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=detail, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes (413) before and while reading."""
    cl = request.headers.get("content-length")
    if cl is not None:
        if not cl.isdigit():
            raise _error(400, "Content-Length is not a number")
        if int(cl) > limit:
            raise _error(413, f"body of {cl} bytes exceeds the limit of {limit} bytes")
    buf = bytearray()
    async for piece in request.stream():
        buf += piece
        if len(buf) > limit:
            raise _error(413, f"body exceeds the limit of {limit} bytes")
    return bytes(buf)


def _decode(raw: bytes, encoding: str | None, limit: int) -> bytes:
    try:
        return decode_body(raw, encoding, limit)
    except BodyError as e:
        raise _error(e.status, e.detail) from None


def _binary_identity(head: bytes) -> tuple[str, str] | None:
    """(user, device) a binary segment's header claims, when it has a readable header."""
    if len(head) < binev.HEADER_SIZE or head[:8] != binev.SEGMENT_MAGIC:
        return None
    import numpy as np

    h = np.frombuffer(head[:binev.HEADER_SIZE], dtype=binev.HEADER_DTYPE)[0]
    try:
        return (bytes(h["user_id"]).rstrip(b"\0").decode("ascii"),
                bytes(h["device_id"]).rstrip(b"\0").decode("ascii"))
    except UnicodeDecodeError:
        return None


def _check_claimed_identity(device: Device, user_id: str | None, device_id: str | None) -> None:
    if (user_id is not None and user_id != device.user_id) or \
            (device_id is not None and device_id != device.device_id):
        raise _error(403, f"this token writes only as {device.user_id}/{device.device_id}, "
                          f"not {user_id or device.user_id}/{device_id or device.device_id}")


def _only_params(request: Request, *allowed: str) -> None:
    """Unknown query parameters are an error, not ignored (a misspelt `user_id` must not be
    silently skipped)."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise _error(422, f"unknown query parameter(s) {unknown}; allowed: {list(allowed)}")


def _check_date(day: str) -> None:
    try:
        Date.fromisoformat(day)
    except ValueError:
        raise _error(422, f"date {day!r} is not a calendar date (YYYY-MM-DD)") from None


def _check_name(stream: str, segment_id: str) -> None:
    want = ".bin" if stream == BINARY_STREAM else ".csv"
    if not segment_id.endswith(want):
        raise _error(422, f"{stream} segment ids end in {want}: {segment_id!r}")


class _KeyedLocks:
    """One lock per key (a chunked upload's staging file), dropped when unused."""

    def __init__(self):
        self._lock = threading.Lock()
        self._locks: dict[str, list] = {}

    def __call__(self, key: str):
        outer = self

        class _Ctx:
            def __enter__(self):
                with outer._lock:
                    entry = outer._locks.setdefault(key, [threading.Lock(), 0])
                    entry[1] += 1
                entry[0].acquire()

            def __exit__(self, *exc):
                with outer._lock:
                    entry = outer._locks[key]
                    entry[0].release()
                    entry[1] -= 1
                    if entry[1] == 0:
                        del outer._locks[key]

        return _Ctx()


# -- OpenAPI: raw bodies and response models -------------------------------------------------
_SEGMENT_BODY = {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string"}}}}
_OBJ = {"type": "object", "additionalProperties": True}
GENERIC_EVENT_SCHEMA = {
    "type": "object", "title": "GenericEvent", "additionalProperties": True,
    "required": ["event_id", "timestamp"],
    "description": "seeds 002/004: event_name or event_type required; unknown fields go to context",
    "properties": {
        "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "event_name": {"type": "string", "minLength": 1, "maxLength": 128},
        "event_type": {"type": "string", "minLength": 1, "maxLength": 128},
        "event_category": {"type": "string", "minLength": 1, "maxLength": 128},
        "timestamp": {"type": "string", "format": "date-time",
                      "description": "ISO 8601 with a UTC offset"},
        "user_id": {"type": "string", "description": "when present: the token's user"},
        "session_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "properties": _OBJ, "context": _OBJ,
        "privacy": {"type": "object", "additionalProperties": {"type": "boolean"},
                    "properties": {"consent_given": {"type": "boolean"},
                                   "ip_anonymized": {"type": "boolean"}}},
    }}
EYECORE_SCHEMA = {
    "type": "object", "title": "EyeCoreSnapshot", "required": ["session_id", "timestamp", "data"],
    "description": "seed 000: one EyeCore snapshot",
    "properties": {"session_id": {"type": "string", "minLength": 1, "maxLength": 128},
                   "timestamp": {"type": "string", "format": "date-time"}, "data": _OBJ}}
# The request schema is what the endpoint *accepts*: any array (each element is validated on its
# own and refused with its reasons, without failing the batch), a {"events": [...]} wrapper, or
# one event object. The event shapes are documented in the components and examples.
_EVENTS_BODY = {"required": True, "content": {"application/json": {
    "schema": {"anyOf": [
        {"type": "array", "items": {}, "description": "a batch of GenericEvent / EyeCoreSnapshot"},
        {"type": "object", "description": "{\"events\": [...]}, or one GenericEvent / EyeCoreSnapshot"}]},
    "examples": {
        "generic": {"summary": "seed 004 generic events", "value": [
            {"event_id": "8c3e0d0e-1", "event_name": "user_login", "event_category": "user",
             "timestamp": "2026-11-16T09:00:00Z", "session_id": "s-1", "properties": {"method": "password"},
             "context": {"platform": "web", "app_version": "1.2.0"},
             "privacy": {"consent_given": True, "ip_anonymized": True}}]},
        "eyecore": {"summary": "seed 000 EyeCore snapshot", "value": {
            "session_id": "0b7c", "timestamp": "2026-11-16T09:00:05Z",
            "data": {"system_metrics": {"cpu_percent": 12.5}}}}}}}}


class Problem(BaseModel):
    detail: str | list[dict[str, Any]]


class SegmentResult(BaseModel):
    status: Literal["landed", "exists", "partial", "absent"]
    path: str = PydField(description="landing path: <stream>/<user>/<device>/<date>/<segment_id>")
    sha256: str | None = None
    size: int | None = None
    offset: int | None = PydField(None, description="bytes held; a chunked upload resumes here")


class EventError(BaseModel):
    index: int = PydField(description="position in the batch")
    event_id: str | None
    errors: list[str]


class EventsResult(BaseModel):
    batch_sha256: str = PydField(description="SHA-256 of the decoded body: the batch's identity")
    received: int
    accepted: int
    rejected: int
    duplicate: bool = PydField(description="true: this batch was processed before; nothing new landed")
    segments: list[str]
    quarantine: str | None
    errors: list[EventError]


_TEXT = {200: "already landed with the same bytes (idempotent retry): nothing written", 201: "landed",
         202: "chunk stored; the upload is incomplete",
         400: "malformed request (bad JSON, bad Content-Range, bad compressed body)",
         401: "missing, unknown or revoked token", 403: "another user's or device's data",
         409: "a different segment already landed under this id",
         413: "body, chunk, segment or batch too large", 415: "unsupported Content-Encoding or Content-Type",
         416: "chunk does not start at the stored offset", 422: "invalid parameters, or checksum mismatch",
         429: "rate limit"}
_HEADERS = {202: {"Upload-Offset": {"schema": {"type": "integer"}, "description": "resume here"}},
            416: {"Upload-Offset": {"schema": {"type": "integer"}, "description": "resume here"}},
            429: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
            401: {"WWW-Authenticate": {"schema": {"type": "string"}}}}


def _responses(*codes: int, ok: dict | None = None) -> dict:
    out = {}
    for c in codes:
        out[c] = {"description": _TEXT[c], "model": (ok or {}).get(c, Problem)}
        if c in _HEADERS:
            out[c]["headers"] = _HEADERS[c]
    return out


# -- the app ----------------------------------------------------------------------------------
def create_app(settings: Settings) -> FastAPI:
    paths = settings.paths
    store = Store(settings.state_dir / "receiver.sqlite")
    limiter = RateLimiter(settings.requests_per_s, settings.request_burst,
                          settings.events_per_s, settings.event_burst)
    chunk_locks = _KeyedLocks()
    committer = Committer(paths.landing, store, linger_s=settings.events_linger_s)
    bearer = HTTPBearer(auto_error=False, description="per-device token: "
                        "`python -m focuslake.receiver token create --user U --device D`")

    @asynccontextmanager
    async def lifespan(app):
        for d in (paths.landing, settings.uploads, settings.events_quarantine):
            d.mkdir(parents=True, exist_ok=True)
        (paths.landing / MARKER).write_text("landing zone of a focuslake receiver: never drain it "
                                            "with collectors.uploader\n")
        swept = sweep_stale_parts(paths.landing) + sweep_stale_parts(settings.uploads, 7 * 86400)
        log.info("receiver on %s (swept %d stale temp files)", paths.root, swept)
        yield
        committer.stop()
        store.close()

    app = FastAPI(title="focuslake receiver", version=API_VERSION, lifespan=lifespan,
                  description="Lands other machines' segments and JSON events in the landing zone "
                              "(docs/receiver.md).")
    app.state.settings, app.state.store = settings, store

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(
                GenericEvent=GENERIC_EVENT_SCHEMA, EyeCoreSnapshot=EYECORE_SCHEMA)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi

    def device_of(request: Request,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Device:
        if creds is None or creds.scheme.lower() != "bearer":
            raise _error(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        device = store.authenticate(creds.credentials)
        if device is None:
            raise _error(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
        wait = limiter.take(device.key, "requests")
        if wait:
            raise _error(429, f"rate limit: {settings.requests_per_s:g} requests/s per device",
                         {"Retry-After": retry_after(wait)})
        return device

    DeviceDep = Annotated[Device, Depends(device_of)]

    @app.get("/health", tags=["ops"])
    def health() -> dict:
        return {"status": "ok", "api_version": API_VERSION, "streams": list(ALL_STREAMS)}

    # ---------------------------------------------------------------------------- segments
    @app.put("/v1/segments/{stream}/{segment_id}", tags=["segments"], status_code=201,
             response_model=SegmentResult, openapi_extra={"requestBody": _SEGMENT_BODY},
             responses=_responses(200, 202, 400, 401, 403, 409, 413, 415, 416, 422, 429,
                                  ok={200: SegmentResult, 202: SegmentResult}))
    async def put_segment(
        request: Request, device: DeviceDep, stream: Stream,
        segment_id: Annotated[str, PathParam(pattern=SEGMENT_ID_PATTERN, max_length=128)],
        date: Annotated[str, Query(pattern=DATE_PATTERN, description="UTC date directory",
                                   json_schema_extra={"format": "date"})],
        sha256: Annotated[str, Header(alias="X-Segment-SHA256", pattern=SHA256_PATTERN,
                                      description="SHA-256 of the whole decoded segment, hex")],
        user_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="must be the token's")] = None,
        device_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="must be the token's")] = None,
        content_range: Annotated[str | None, Header(
            alias="Content-Range", pattern=r"^bytes \d{1,12}-\d{1,12}/\d{1,12}$",
            description="bytes START-END/TOTAL: this body is one chunk of a chunked upload")] = None,
    ):
        """Upload a sealed segment: whole (one PUT) or in chunks (Content-Range), idempotent by
        SHA-256. 201 landed, 200 same bytes already landed, 409 different bytes under this id.
        The body may carry `Content-Encoding: gzip` or `zstd`; the checksum is of the decoded
        bytes. `events` segments end in .bin, CSV streams' in .csv."""
        content_encoding = request.headers.get("content-encoding")
        _only_params(request, "date", "user_id", "device_id")
        _check_claimed_identity(device, user_id, device_id)
        stream = stream.value
        _check_date(date)
        _check_name(stream, segment_id)
        rel = f"{stream}/{device.user_id}/{device.device_id}/{date}/{segment_id}"
        try:
            if content_range is None:
                raw = await _read_body(request, settings.max_segment_body)
            else:
                raw = await _read_body(request, settings.max_chunk)
        except ClientDisconnect:  # dropped mid-body: nothing is written
            log.warning("client dropped mid-body: %s (nothing written)", rel)
            return JSONResponse({"detail": "client disconnected"}, status_code=400)
        if content_range is None:
            return await run_in_threadpool(_whole, device, stream, rel, raw, sha256, content_encoding)
        return await run_in_threadpool(_chunk, device, stream, rel, raw, sha256, content_encoding,
                                       content_range)

    def _landed_response(device: Device, stream: str, rel: str, sha: str, size: int, state: str,
                         origin: str = "upload") -> JSONResponse:
        store.record_segment(rel, device, stream, sha, size, origin)
        return JSONResponse({"status": state, "path": rel, "sha256": sha, "size": size},
                            status_code=201 if state == "landed" else 200)

    def _conflict(rel: str, theirs: str) -> HTTPException:
        return _error(409, f"{rel} already landed with sha256 {theirs}; a segment id is never reused")

    def _check_bin_identity(device: Device, stream: str, head: bytes) -> None:
        if stream == BINARY_STREAM:
            ident = _binary_identity(head)
            if ident is not None and ident != (device.user_id, device.device_id):
                raise _error(403, f"segment header says {ident[0]}/{ident[1]}; this token writes only "
                                  f"as {device.user_id}/{device.device_id}")

    def _whole(device, stream, rel, raw, sha, encoding):
        body = _decode(raw, encoding, settings.max_segment_body)
        got = hashlib.sha256(body).hexdigest()
        if got != sha:
            raise _error(422, f"checksum mismatch: body sha256 {got}, X-Segment-SHA256 {sha}")
        known = store.segment(rel)
        if known is not None:
            if known[0] != sha:
                raise _conflict(rel, known[0])
            return JSONResponse({"status": "exists", "path": rel, "sha256": sha, "size": known[1]})
        _check_bin_identity(device, stream, body[:binev.HEADER_SIZE])
        try:
            state = land_bytes(paths.landing / rel, body, sha)
        except FileExistsError:
            raise _conflict(rel, sha256_file(paths.landing / rel)) from None
        return _landed_response(device, stream, rel, sha, len(body), state)

    def _chunk(device, stream, rel, raw, sha, encoding, content_range):
        m = CONTENT_RANGE_RE.match(content_range.strip())
        if not m:
            raise _error(400, f"Content-Range must be 'bytes START-END/TOTAL', got {content_range[:80]!r}")
        start, end, total = (int(g) for g in m.groups())
        if not start <= end < total:
            raise _error(400, f"Content-Range {content_range!r}: need START <= END < TOTAL")
        if total > settings.max_segment_total:
            raise _error(413, f"segment of {total} bytes exceeds the limit of {settings.max_segment_total}")
        body = _decode(raw, encoding, settings.max_chunk)
        if len(body) != end - start + 1:
            raise _error(400, f"chunk holds {len(body)} bytes, Content-Range says {end - start + 1}")
        known = store.segment(rel)
        if known is not None:
            if known[0] != sha:
                raise _conflict(rel, known[0])
            return JSONResponse({"status": "exists", "path": rel, "sha256": sha, "size": known[1]})
        staging = settings.uploads / f"{rel}.{sha}.{total}.upload"
        staging.parent.mkdir(parents=True, exist_ok=True)
        with chunk_locks(str(staging)):
            offset = staging.stat().st_size if staging.exists() else 0
            if start != offset:
                if start < offset and end < offset:  # a retried chunk we already hold
                    return _partial(rel, offset)
                raise _error(416, f"upload of {rel} is at offset {offset}, chunk starts at {start}",
                             {"Upload-Offset": str(offset)})
            with open(staging, "ab") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            offset += len(body)
            if offset < total:
                return _partial(rel, offset)
            got = sha256_file(staging)
            if got != sha:
                staging.unlink()
                raise _error(422, f"checksum mismatch: assembled sha256 {got}, X-Segment-SHA256 {sha}; "
                                  "upload discarded, start again at offset 0")
            with open(staging, "rb") as fh:
                head = fh.read(binev.HEADER_SIZE)
            try:
                _check_bin_identity(device, stream, head)
            except HTTPException:
                staging.unlink()
                raise
            final = paths.landing / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                state = link_into_place(staging, final, sha)
            except FileExistsError:
                raise _conflict(rel, sha256_file(final)) from None
            fsync_dir(staging.parent)
            return _landed_response(device, stream, rel, sha, total, state)

    def _partial(rel: str, offset: int) -> JSONResponse:
        return JSONResponse({"status": "partial", "path": rel, "offset": offset}, status_code=202,
                            headers={"Upload-Offset": str(offset)})

    @app.get("/v1/segments/{stream}/{segment_id}", tags=["segments"], response_model=SegmentResult,
             response_model_exclude_none=True,
             responses=_responses(401, 403, 422, 429))
    def segment_status(
        request: Request, device: DeviceDep, stream: Stream,
        segment_id: Annotated[str, PathParam(pattern=SEGMENT_ID_PATTERN, max_length=128)],
        date: Annotated[str, Query(pattern=DATE_PATTERN, json_schema_extra={"format": "date"})],
        sha256: Annotated[str | None, Query(pattern=SHA256_PATTERN,
                                            description="to ask for a partial upload's offset")] = None,
        user_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        device_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    ):
        """Where an upload stands: `landed` (with its sha256), `partial` (with the offset to resume
        from), or `absent`."""
        _only_params(request, "date", "sha256", "user_id", "device_id")
        _check_claimed_identity(device, user_id, device_id)
        _check_date(date)
        rel = f"{stream.value}/{device.user_id}/{device.device_id}/{date}/{segment_id}"
        known = store.segment(rel)
        if known is not None:
            return {"status": "landed", "path": rel, "sha256": known[0], "size": known[1], "offset": known[1]}
        if sha256:
            staged = sorted((settings.uploads / rel).parent.glob(f"{segment_id}.{sha256}.*.upload"))
            if staged:
                return {"status": "partial", "path": rel, "offset": staged[0].stat().st_size}
        return {"status": "absent", "path": rel, "offset": 0}

    # ---------------------------------------------------------------------------- events
    @app.post("/v1/events", tags=["events"], response_model=EventsResult,
              openapi_extra={"requestBody": _EVENTS_BODY},
              responses=_responses(400, 401, 413, 415, 422, 429))
    async def post_events(request: Request, device: DeviceDep):
        """A batch of generic JSON events (seeds 002/004) or EyeCore snapshots (seed 000). Valid
        events land as `app_events` segments; each invalid one gets its reasons in `errors` and is
        quarantined; the rest of the batch is kept. A re-sent identical batch is a no-op. The body
        may carry `Content-Encoding: gzip` or `zstd`."""
        content_encoding = request.headers.get("content-encoding")
        content_type = request.headers.get("content-type")
        _only_params(request)
        ctype = (content_type or "application/json").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise _error(415, f"Content-Type {content_type!r}: send application/json")
        try:
            raw = await _read_body(request, settings.max_events_body)
        except ClientDisconnect:
            log.warning("client dropped mid-body: events batch of %s (nothing written)", device.key)
            return JSONResponse({"detail": "client disconnected"}, status_code=400)
        ready = await run_in_threadpool(_events, device, raw, content_encoding)
        if isinstance(ready, dict):
            return ready
        future, first = ready
        answer = await asyncio.wrap_future(future)
        return answer if first else {**answer, "duplicate": True}

    def _events(device: Device, raw: bytes, encoding: str | None):
        """Validate a batch; returns an answer (a batch seen before) or (future of the answer,
        whether this request is the one that submitted it)."""
        body = _decode(raw, encoding, settings.max_events_body)
        batch_sha = hashlib.sha256(body).hexdigest()
        running = committer.inflight((device.key, batch_sha))
        if running is not None:  # the same batch, still being landed for an earlier request
            return running, False
        known = store.batch_record(device, batch_sha)
        if known is not None and known[0] == "done":
            return {**known[1], "duplicate": True}
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise _error(400, f"body is not JSON: {e}") from None
        if isinstance(doc, list):
            events = doc
        elif isinstance(doc, dict) and isinstance(doc.get("events"), list):
            events = doc["events"]
        elif isinstance(doc, dict):
            events = [doc]
        else:
            raise _error(422, "body must be an array of events, {\"events\": [...]}, or one event object")
        n = len(events)
        if n > settings.max_events_per_batch:
            raise _error(413, f"{n} events in one batch; the limit is {settings.max_events_per_batch}")
        wait = limiter.take(device.key, "events", n)
        if wait:
            if wait == float("inf"):
                raise _error(413, f"{n} events exceed this device's event burst ({settings.event_burst:g})")
            raise _error(429, f"rate limit: {settings.events_per_s:g} events/s per device",
                         {"Retry-After": retry_after(wait)})
        now_us = time.time_ns() // 1000
        checked = appev.check_batch(events, device.user_id, now_us, now_us)
        rows = [c.row for c in checked if c.row is not None]
        bad = [c for c in checked if c.row is None]
        landed: dict[str, str] = {}
        if known is not None:  # an attempt died while landing it: keep the dates that made it
            landed = {d: rel for d, rel in known[2].items() if (paths.landing / rel).exists()}
            rows = [r for r in rows if utc_date(r["ts_us"]) not in landed]
            log.warning("batch %s of %s: resuming an interrupted landing (%d dates already landed)",
                        batch_sha[:16], device.key, len(landed))
        quarantine = _quarantine_events(device, bad, events, batch_sha, now_us) if bad else None
        answer = {"batch_sha256": batch_sha, "received": n, "accepted": n - len(bad), "rejected": len(bad),
                  "duplicate": False, "quarantine": quarantine,
                  "errors": [{"index": c.index, "event_id": c.event_id, "errors": c.errors} for c in bad]}
        return committer.submit(Item(device, batch_sha, rows, answer, dict(landed)))

    def _quarantine_events(device: Device, bad: list, events: list, batch_sha: str, now_us: int) -> str:
        rel = f"{device.user_id}/{device.device_id}/{batch_sha[:16]}.rejects.jsonl"  # one per batch, ever
        target = settings.events_quarantine / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"index": c.index, "event_id": c.event_id, "reasons": c.errors,
                             "raw": events[c.index] if c.keep_raw else None,
                             "batch_sha256": batch_sha, "received_us": now_us}, ensure_ascii=False)
                 for c in bad]
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
        fsync_dir(target.parent)
        return f"quarantine/events/{rel}"

    return app
