"""Offline-first upload of sealed segments (and JSON event batches) to a focuslake receiver.

The collector writes sealed segments into its own local landing directory (the layout of
focuslake.segments: <stream>/<user_id>/<device_id>/<YYYY-MM-DD>/<segment>). That directory *is*
the queue: every sealed segment in it is waiting for upload, so nothing is lost if the machine
is offline for days, the collector restarts, or the uploader is killed at any point. A small
SQLite file in the queue directory keeps each item's retry state (attempts, next attempt, last
error) so restarts keep the backoff.

For each due item, oldest first:
  * the file is read once, hashed (SHA-256) and sent with its hash (zstd-compressed by default);
    segments above `whole_max` bytes go in chunks (Content-Range) and resume from the offset the
    receiver reports after any interruption;
  * the local file is deleted only after the receiver answered with the same SHA-256
    (201 landed, or 200 already landed by an earlier attempt whose answer was lost);
  * connection failures back off the whole uploader (exponential, with jitter, capped); 429
    honours Retry-After; 5xx back off the item; a 409 (a different segment already landed under
    this id) or a permanent 4xx parks the item as `rejected` -- kept, never deleted, shown by
    `status`.

    uploader = Uploader(landing, queue_dir, "http://receiver:8765", token)
    uploader.start()            # background thread: scan, upload, back off, repeat
    uploader.status()           # pending / bytes / oldest / rejected / online / last error
    uploader.stop()

    python -m collectors.uploader run --landing DIR --queue DIR --url URL --token-file FILE
    python -m collectors.uploader status --landing DIR --queue DIR
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger("collectors.uploader")
PART_SUFFIX = ".part"
RECEIVER_MARKER = ".focuslake-receiver"

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    rel             TEXT PRIMARY KEY,    -- landing-relative segment path, or events/<file>.json
    kind            TEXT NOT NULL,       -- segment | events
    size_bytes      INTEGER NOT NULL,
    enqueued_at_us  INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    chunked         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def _now_us() -> int:
    return time.time_ns() // 1000


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Outcome:
    """What one upload attempt means for the item."""
    kind: str                     # done | retry | offline | blocked | rejected | rechunk
    detail: str = ""
    retry_after: float | None = None


class Uploader:
    def __init__(self, landing: str | Path, queue_dir: str | Path, url: str | None = None,
                 token: str | None = None, *, base_delay: float = 1.0, max_delay: float = 600.0,
                 timeout: float = 60.0, whole_max: int = 8 << 20, chunk_bytes: int = 4 << 20,
                 compress: str | None = "zstd", scan_interval: float = 5.0,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None):
        self.landing = Path(landing).resolve()
        if (self.landing / RECEIVER_MARKER).exists():
            raise ValueError(f"{self.landing} is a receiver's landing zone: the uploader deletes what "
                             "it uploads, so it only drains a collector's own local landing directory")
        self.queue_dir = Path(queue_dir).resolve()
        if self.queue_dir == self.landing or self.landing in self.queue_dir.parents:
            raise ValueError("the queue directory must not be inside the landing directory")
        (self.queue_dir / "events").mkdir(parents=True, exist_ok=True)
        self.url, self.token = url, token
        self.base_delay, self.max_delay = base_delay, max_delay
        self.whole_max, self.chunk_bytes = whole_max, chunk_bytes
        if compress not in (None, "zstd", "gzip"):
            raise ValueError("compress: zstd, gzip or None")
        self.compress = compress
        self.scan_interval = scan_interval
        self.rng = rng or random.Random()
        self.clock = clock
        self.timeout = timeout
        self._transport = transport
        self._local = threading.local()
        self._client: httpx.Client | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0            # consecutive connection failures (offline)
        self._not_before = 0.0        # the whole uploader waits until then (offline, 429)
        self._last_error: str | None = None
        self._last_scan = 0.0
        with self._db() as con:
            con.executescript(SCHEMA)

    # -- storage --------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.queue_dir / "queue.sqlite", timeout=30, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            self._local.con = con
        return con

    def _bump(self, name: str, by: int = 1) -> None:
        self._db().execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                           "SET value = value + excluded.value", (name, by))

    def _set(self, name: str, value: int) -> None:
        self._db().execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (name, value))

    # -- queueing -------------------------------------------------------------------------------
    def scan(self) -> int:
        """Queue every sealed segment in the landing directory not queued yet. Returns how many."""
        self._last_scan = self.clock()
        found = []
        for dirpath, dirnames, filenames in os.walk(self.landing):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith(".") or name.endswith(PART_SUFFIX):
                    continue
                p = Path(dirpath) / name
                rel = p.relative_to(self.landing).as_posix()
                if rel.count("/") != 4:
                    log.warning("not a landing segment path, left alone: %s", rel)
                    continue
                try:
                    found.append((rel, p.stat().st_size))
                except FileNotFoundError:
                    continue
        if not found:
            return 0
        con = self._db()
        known = {r for (r,) in con.execute("SELECT rel FROM items WHERE kind = 'segment'")}
        new = [(rel, size) for rel, size in found if rel not in known]
        if new:
            now = _now_us()
            with con:
                con.executemany("INSERT OR IGNORE INTO items (rel, kind, size_bytes, enqueued_at_us) "
                                "VALUES (?, 'segment', ?, ?)", [(r, s, now) for r, s in new])
            self._wake.set()
        return len(new)

    def enqueue(self, path: str | Path) -> str:
        """Queue one sealed segment now (the collector calls this right after sealing; a scan
        would find it anyway)."""
        p = Path(path).resolve()
        rel = p.relative_to(self.landing).as_posix()
        if rel.count("/") != 4 or p.name.endswith(PART_SUFFIX):
            raise ValueError(f"not a sealed landing segment: {rel}")
        self._db().execute("INSERT OR IGNORE INTO items (rel, kind, size_bytes, enqueued_at_us) "
                           "VALUES (?, 'segment', ?, ?)", (rel, p.stat().st_size, _now_us()))
        self._wake.set()
        return rel

    def enqueue_events(self, events: list[dict]) -> str:
        """Queue a batch of JSON events for POST /v1/events (written durably first)."""
        body = json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:12]}.json"
        final = self.queue_dir / "events" / name
        tmp = final.with_name("." + name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        rel = f"events/{name}"
        self._db().execute("INSERT OR IGNORE INTO items (rel, kind, size_bytes, enqueued_at_us) "
                           "VALUES (?, 'events', ?, ?)", (rel, len(body), _now_us()))
        self._wake.set()
        return rel

    # -- uploading ------------------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        if self.url is None or self.token is None:
            raise RuntimeError("no receiver url/token configured")
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.url.rstrip("/"), transport=self._transport,
                timeout=httpx.Timeout(self.timeout, connect=10.0),
                headers={"Authorization": f"Bearer {self.token}", "User-Agent": "focuslake-uploader/1"})
        return self._client

    def _encode(self, data: bytes) -> tuple[bytes, dict]:
        if self.compress == "zstd":
            import zstandard

            return zstandard.ZstdCompressor(level=3).compress(data), {"Content-Encoding": "zstd"}
        if self.compress == "gzip":
            import gzip

            return gzip.compress(data, compresslevel=6, mtime=0), {"Content-Encoding": "gzip"}
        return data, {}

    def delay(self, attempts: int) -> float:
        """Exponential backoff with (equal) jitter: between d/2 and d, d = base * 2^(n-1) <= cap."""
        d = min(self.max_delay, self.base_delay * 2 ** max(0, min(attempts - 1, 62)))
        return d / 2 + self.rng.uniform(0, d / 2)

    def run_once(self) -> dict:
        """Try every due item once (oldest first); stop early when the receiver is unreachable."""
        counts = {"done": 0, "retry": 0, "offline": 0, "blocked": 0, "rejected": 0}
        if self.clock() - self._last_scan >= self.scan_interval:
            self.scan()
        while not self._stop.is_set() and self.clock() >= self._not_before:
            row = self._db().execute(
                "SELECT rel, kind, attempts, chunked FROM items WHERE state = 'pending' AND next_attempt_us <= ? "
                "ORDER BY next_attempt_us, enqueued_at_us LIMIT 1", (int(self.clock() * 1e6),)).fetchone()
            if row is None:
                break
            rel, kind, attempts, chunked = row
            try:
                out = self._upload_segment(rel, bool(chunked)) if kind == "segment" else self._upload_events(rel)
            except httpx.TransportError as e:
                out = Outcome("offline", f"{type(e).__name__}: {e}")
            except httpx.HTTPError as e:
                out = Outcome("retry", f"{type(e).__name__}: {e}")
            counts[out.kind if out.kind in counts else "retry"] += 1
            self._apply(rel, attempts, out)
            if out.kind in ("offline", "blocked"):
                break
        return counts

    def _apply(self, rel: str, attempts: int, out: Outcome) -> None:
        con = self._db()
        now = self.clock()
        if out.kind == "done":
            self._failures = 0
            return
        self._last_error = f"{rel}: {out.detail}"
        if out.kind == "rechunk":
            con.execute("UPDATE items SET chunked = 1, last_error = ? WHERE rel = ?", (out.detail, rel))
            return
        if out.kind == "rejected":
            con.execute("UPDATE items SET state = 'rejected', last_error = ? WHERE rel = ?", (out.detail, rel))
            log.error("upload rejected, kept locally: %s", self._last_error)
            return
        if out.kind in ("offline", "blocked"):  # unreachable, or the token refused: everything waits
            self._failures += 1
            self._not_before = now + self.delay(self._failures)
            con.execute("UPDATE items SET last_error = ? WHERE rel = ?", (out.detail, rel))
            log.info("receiver unreachable (%s); next try in %.1f s", out.detail, self._not_before - now)
            return
        self._failures = 0
        wait = self.delay(attempts + 1)
        if out.retry_after is not None:  # 429: the device's rate limit, for every item
            wait = out.retry_after + self.rng.uniform(0, self.base_delay)
            self._not_before = now + wait
        con.execute("UPDATE items SET attempts = attempts + 1, next_attempt_us = ?, last_error = ? "
                    "WHERE rel = ?", (int((now + wait) * 1e6), out.detail, rel))

    def _classify(self, r: httpx.Response) -> Outcome:
        try:
            detail = r.json().get("detail", r.text)
        except (ValueError, AttributeError):
            detail = r.text
        detail = f"HTTP {r.status_code}: {str(detail)[:300]}"
        if r.status_code == 429:
            try:
                ra = float(r.headers.get("Retry-After", "1"))
            except ValueError:
                ra = 1.0
            return Outcome("retry", detail, retry_after=ra)
        if r.status_code == 413:
            return Outcome("rechunk", detail)
        if r.status_code in (401, 403):  # this device's token: every item waits until it is fixed
            return Outcome("blocked", detail)
        if r.status_code == 415 and self.compress:
            self.compress = None  # an older receiver: send uncompressed from now on
            return Outcome("retry", detail)
        if r.status_code == 422 and "checksum mismatch" in detail:
            return Outcome("retry", detail)  # corrupted on the way: send again
        if r.status_code in (400, 409, 422):
            return Outcome("rejected", detail)
        return Outcome("retry", detail)  # 5xx, anything else

    def _confirmed(self, r: httpx.Response, sha: str) -> bool:
        try:
            return r.json().get("sha256") == sha
        except ValueError:
            return False

    def _upload_segment(self, rel: str, chunked: bool) -> Outcome:
        path = self.landing / rel
        if not path.exists():
            self._db().execute("DELETE FROM items WHERE rel = ?", (rel,))
            log.warning("queued segment vanished before upload: %s", rel)
            self._bump("vanished")
            return Outcome("done")
        stream, user, device, day, name = rel.split("/")
        url = f"/v1/segments/{stream}/{name}"
        params = {"date": day, "user_id": user, "device_id": device}
        size = path.stat().st_size
        if not chunked and size <= self.whole_max:
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            body, headers = self._encode(data)
            r = self._http().put(url, params=params, content=body,
                                 headers={**headers, "X-Segment-SHA256": sha,
                                          "Content-Type": "application/octet-stream"})
        else:
            with open(path, "rb") as fh:
                sha = hashlib.file_digest(fh, "sha256").hexdigest()
            r = self._put_chunks(path, url, params, sha, size)
            if isinstance(r, Outcome):
                return r
        if r.status_code in (200, 201):
            if not self._confirmed(r, sha):
                return Outcome("retry", f"receiver answered {r.status_code} without confirming sha256 {sha}")
            self._done_segment(rel, path, size)
            return Outcome("done")
        return self._classify(r)

    def _put_chunks(self, path: Path, url: str, params: dict, sha: str, size: int):
        st = self._http().get(url, params={**params, "sha256": sha})
        if st.status_code != 200:
            return self._classify(st)
        info = st.json()
        if info.get("status") == "landed":
            if info.get("sha256") == sha:
                return st
            return Outcome("rejected", f"HTTP 409: landed with sha256 {info.get('sha256')}, ours is {sha}")
        offset = int(info.get("offset", 0))
        with open(path, "rb") as fh:
            while True:
                fh.seek(offset)
                data = fh.read(self.chunk_bytes)
                if not data:  # defensive: size reached without a final answer
                    return Outcome("retry", "chunked upload ended without confirmation")
                body, headers = self._encode(data)
                end = offset + len(data) - 1
                r = self._http().put(url, params=params, content=body,
                                     headers={**headers, "X-Segment-SHA256": sha,
                                              "Content-Range": f"bytes {offset}-{end}/{size}",
                                              "Content-Type": "application/octet-stream"})
                if r.status_code == 202:
                    offset = int(r.json()["offset"])
                elif r.status_code == 416:
                    offset = int(r.headers.get("Upload-Offset", "0"))
                elif r.status_code == 413:
                    return Outcome("retry", f"chunk of {len(data)} bytes refused (413): lower chunk_bytes")
                else:
                    return r

    def _done_segment(self, rel: str, path: Path, size: int) -> None:
        """The receiver holds these exact bytes: now, and only now, delete the local copy."""
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        con = self._db()
        with con:
            con.execute("DELETE FROM items WHERE rel = ?", (rel,))
            self._bump("uploaded_segments")
            self._bump("uploaded_bytes", size)
            self._set("last_success_us", _now_us())

    def _upload_events(self, rel: str) -> Outcome:
        path = self.queue_dir / rel
        if not path.exists():
            self._db().execute("DELETE FROM items WHERE rel = ?", (rel,))
            return Outcome("done")
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        body, headers = self._encode(data)
        r = self._http().post("/v1/events", content=body,
                              headers={**headers, "Content-Type": "application/json"})
        if r.status_code != 200:
            return self._classify(r)
        resp = r.json()
        if resp.get("batch_sha256") != sha:
            return Outcome("retry", f"receiver did not confirm batch sha256 {sha}")
        path.unlink(missing_ok=True)
        con = self._db()
        with con:
            con.execute("DELETE FROM items WHERE rel = ?", (rel,))
            self._bump("event_batches_uploaded")
            self._bump("events_accepted", int(resp.get("accepted", 0)))
            self._bump("events_rejected_by_receiver", int(resp.get("rejected", 0)))
            self._set("last_success_us", _now_us())
        if resp.get("rejected"):
            log.warning("receiver refused %d of %d events (quarantined there): %s", resp["rejected"],
                        resp.get("received"), json.dumps(resp.get("errors", [])[:3]))
        return Outcome("done")

    # -- running --------------------------------------------------------------------------------
    def _next_wake(self) -> float:
        row = self._db().execute("SELECT min(next_attempt_us) FROM items WHERE state = 'pending'").fetchone()
        t = self._last_scan + self.scan_interval
        if row[0] is not None:
            t = min(t, row[0] / 1e6)
        return max(t, self._not_before)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # never let the thread die: log, back off, go on
                log.exception("uploader pass failed")
                self._not_before = self.clock() + self.delay(max(1, self._failures))
            wait = max(0.01, min(self._next_wake() - self.clock(), self.max_delay))
            self._wake.wait(wait)
            self._wake.clear()

    def start(self) -> Uploader:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="focuslake-uploader", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._client is not None:
            self._client.close()
            self._client = None

    def drain(self, timeout: float = 60.0) -> bool:
        """Upload until nothing is pending (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            self.run_once()
            st = self.status(scan=True)
            if st["pending"] == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            wait = min(self._next_wake() - self.clock(), deadline - time.monotonic())
            time.sleep(max(0.01, min(wait, 1.0)))

    def status(self, scan: bool = True) -> dict:
        """The queue at a glance (what the agent shows)."""
        if scan:
            self.scan()
        con = self._db()
        now_us = int(self.clock() * 1e6)
        pending, pbytes, oldest, next_us = con.execute(
            "SELECT count(*), coalesce(sum(size_bytes), 0), min(enqueued_at_us), min(next_attempt_us) "
            "FROM items WHERE state = 'pending'").fetchone()
        rejected = con.execute("SELECT rel, last_error FROM items WHERE state = 'rejected' "
                               "ORDER BY enqueued_at_us").fetchall()
        counters = dict(con.execute("SELECT name, value FROM counters").fetchall())
        by_kind = dict(con.execute("SELECT kind, count(*) FROM items WHERE state = 'pending' GROUP BY kind"))
        last_err = self._last_error or (con.execute(
            "SELECT rel || ': ' || last_error FROM items WHERE last_error IS NOT NULL "
            "ORDER BY enqueued_at_us LIMIT 1").fetchone() or [None])[0]
        next_at = max(next_us or 0, int(self._not_before * 1e6)) if pending else None
        last_ok = counters.get("last_success_us")
        return {
            "pending": pending, "pending_segments": by_kind.get("segment", 0),
            "pending_event_batches": by_kind.get("events", 0), "pending_bytes": pbytes,
            "oldest_pending_age_s": round((now_us - oldest) / 1e6, 1) if oldest else None,
            "next_attempt_in_s": round(max(0, next_at - now_us) / 1e6, 3) if next_at is not None else None,
            "online": self._failures == 0, "consecutive_failures": self._failures,
            "last_error": last_err,
            "last_success_age_s": round((now_us - last_ok) / 1e6, 1) if last_ok else None,
            "rejected": len(rejected), "rejected_items": [{"item": r, "error": e} for r, e in rejected[:20]],
            "uploaded_segments": counters.get("uploaded_segments", 0),
            "uploaded_bytes": counters.get("uploaded_bytes", 0),
            "event_batches_uploaded": counters.get("event_batches_uploaded", 0),
            "events_rejected_by_receiver": counters.get("events_rejected_by_receiver", 0),
        }

    def retry_rejected(self) -> int:
        """Put parked items back in the queue (after fixing what the receiver complained about)."""
        return self._db().execute("UPDATE items SET state = 'pending', attempts = 0, next_attempt_us = 0 "
                                  "WHERE state = 'rejected'").rowcount


# -- CLI ------------------------------------------------------------------------------------------
def _token(args) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    tok = os.environ.get("FOCUSLAKE_UPLOAD_TOKEN")
    if not tok:
        raise SystemExit("no token: --token-file FILE or FOCUSLAKE_UPLOAD_TOKEN")
    return tok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m collectors.uploader", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "status", "retry-rejected"):
        p = sub.add_parser(name)
        p.add_argument("--landing", required=True, type=Path, help="the collector's local landing directory")
        p.add_argument("--queue", required=True, type=Path, help="queue state directory (not inside landing)")
        if name == "run":
            p.add_argument("--url", required=True, help="receiver base URL, e.g. http://127.0.0.1:8765")
            p.add_argument("--token-file", help="file holding this device's token (else FOCUSLAKE_UPLOAD_TOKEN)")
            p.add_argument("--drain", action="store_true", help="exit once nothing is pending")
            p.add_argument("--timeout", type=float, default=3600.0, help="with --drain: give up after")
            p.add_argument("--base-delay", type=float, default=1.0)
            p.add_argument("--max-delay", type=float, default=600.0)
            p.add_argument("--scan-interval", type=float, default=5.0)
            p.add_argument("--whole-max", type=int, default=8 << 20)
            p.add_argument("--chunk-bytes", type=int, default=4 << 20)
            p.add_argument("--compress", choices=["zstd", "gzip", "none"], default="zstd")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    if a.cmd == "status":
        print(json.dumps(Uploader(a.landing, a.queue).status(), indent=2))
        return 0
    if a.cmd == "retry-rejected":
        print(f"{Uploader(a.landing, a.queue).retry_rejected()} item(s) back in the queue")
        return 0
    up = Uploader(a.landing, a.queue, a.url, _token(a), base_delay=a.base_delay, max_delay=a.max_delay,
                  scan_interval=a.scan_interval, whole_max=a.whole_max, chunk_bytes=a.chunk_bytes,
                  compress=None if a.compress == "none" else a.compress)
    if a.drain:
        ok = up.drain(a.timeout)
        print(json.dumps(up.status(), indent=2))
        return 0 if ok else 1
    signal.signal(signal.SIGTERM, lambda *_: (up._stop.set(), up._wake.set()))
    up.start()
    try:
        while up._thread is not None and up._thread.is_alive():
            up._thread.join(1.0)
    except KeyboardInterrupt:
        pass
    up.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
