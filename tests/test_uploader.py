"""collectors.uploader against the real receiver (its own process on a loopback port): offline
backoff, restarts, rate limits, conflicts, and a receiver SIGKILLed while uploaders run."""
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest

from collectors.uploader import Uploader
from focuslake import events as ev
from focuslake.config import PROJECT_ROOT, Paths
from focuslake.ingest import ingest_landing
from focuslake.receiver.process import ReceiverProcess, free_port
from focuslake.receiver.store import Store
from focuslake.segments import CsvSegmentWriter, EventSegmentWriter

T0 = int(datetime(2026, 11, 16, 9, tzinfo=UTC).timestamp()) * 1_000_000
FAST = {"base_delay": 0.05, "max_delay": 0.5, "scan_interval": 0.2, "whole_max": 20_000, "chunk_bytes": 8192}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ReceiverProcess(tmp_path_factory.mktemp("recv") / "data", "--requests-per-s", "off",
                         "--events-per-s", "off") as r:
        yield r


def token(server_root: Path, user: str, dev: str) -> str:
    return Store(server_root / "receiver" / "receiver.sqlite").create_token(user, dev)[0]


def make_segments(landing: Path, user: str, dev: str, minutes: int = 5, start_us: int = T0) -> dict[str, str]:
    """Sealed CSV and binary segments, one per minute each (one binary segment > 20 kB so it
    goes in chunks). Returns {landing-relative path: sha256}."""
    w = CsvSegmentWriter(landing, "system_metrics", user, dev, rotate_seconds=60, durable=False)
    for i in range(minutes * 12):
        w.write_row([start_us + i * 5_000_000, 10 + i % 50, 40, None, i, 0, 0, 0, None, True, "code", 1.0])
    w.seal()
    e = EventSegmentWriter(landing, user, dev, rotate_seconds=60, durable=False)
    for m in range(minutes):
        n = 600 if m == 0 else 40  # 600 x 64 B = 38 kB: chunked
        r = ev.make_records(n)
        r["timestamp_us"] = start_us + m * 60_000_000 + np.arange(n) * 50_000
        r["event_type"] = 3
        r["app_name"] = b"code"
        e.write_records(r)
    e.seal()
    return sealed(landing)


def sealed(landing: Path) -> dict[str, str]:
    return {p.relative_to(landing).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in landing.rglob("*") if p.is_file() and not p.name.startswith(".")
            and not p.name.endswith(".part")}


def test_uploads_and_deletes_only_what_the_receiver_confirmed(server, tmp_path):
    landing = tmp_path / "landing"
    want = make_segments(landing, "ula", "laptop")
    assert len(want) == 10
    # an open segment (.part) is not sealed: never uploaded, never deleted
    part = landing / "system_events/ula/laptop/2026-11-16/system_events-20261116T090000Z-0000.csv.part"
    part.parent.mkdir(parents=True)
    part.write_text("ts_us,event\n")
    up = Uploader(landing, tmp_path / "queue", server.url, token(server.data_root, "ula", "laptop"), **FAST)
    st = up.status()
    assert st["pending"] == 10 and st["pending_bytes"] == sum(p.stat().st_size for p in landing.rglob("*.*")
                                                              if not p.name.endswith(".part"))
    assert up.drain(60)
    assert sealed(landing) == {} and part.exists()
    got = sealed(Paths(server.data_root).landing)
    assert {k: v for k, v in got.items() if k.split("/")[1] == "ula"} == want  # byte-identical, same paths
    st = up.status()
    assert (st["pending"], st["uploaded_segments"], st["rejected"], st["online"]) == (0, 10, 0, True)
    assert st["uploaded_bytes"] > 0 and st["last_success_age_s"] is not None
    up.stop()


def test_offline_backoff_grows_with_jitter_then_drains(tmp_path):
    port = free_port()  # nothing listens there yet: the receiver is "offline"
    landing = tmp_path / "landing"
    want = make_segments(landing, "olga", "laptop", minutes=2)
    srv_root = tmp_path / "srv"
    tok = token(srv_root, "olga", "laptop")
    up = Uploader(landing, tmp_path / "queue", f"http://127.0.0.1:{port}", tok, rng=random.Random(7),
                  **{**FAST, "base_delay": 0.04, "max_delay": 0.3})
    seen = []
    for k in range(1, 7):
        counts = up.run_once()
        assert counts["offline"] == 1 and counts["done"] == 0  # one probe, not one per item
        st = up.status()
        assert not st["online"] and st["consecutive_failures"] == k and st["pending"] == len(want)
        assert "ConnectError" in st["last_error"]
        d = min(0.3, 0.04 * 2 ** (k - 1))
        assert d / 2 - 0.05 <= st["next_attempt_in_s"] <= d, (k, st["next_attempt_in_s"], d)
        seen.append(st["next_attempt_in_s"])
        assert up.run_once()["offline"] == 0  # during the backoff nothing is tried
        time.sleep(st["next_attempt_in_s"] + 0.01)
    assert seen[3] > seen[0] and max(seen) <= 0.3  # exponential, then capped
    assert sealed(landing) == want  # nothing deleted while offline
    with ReceiverProcess(srv_root, port=port):
        assert up.drain(60)
        st = up.status()
        assert st["online"] and st["uploaded_segments"] == len(want)
    assert sealed(Paths(srv_root).landing) == want
    up.stop()


def test_offline_for_days_probes_at_the_capped_rate_and_keeps_everything(tmp_path):
    """Three days without the receiver, on a simulated clock (real connection attempts): the
    uploader probes about every max_delay (10 min) with jitter, one probe per backoff, never
    drops an item; when the receiver is back, everything goes."""
    now = [1_800_000_000.0]
    port = free_port()
    landing = tmp_path / "landing"
    want = make_segments(landing, "otto", "laptop", minutes=2)
    srv_root = tmp_path / "srv"
    up = Uploader(landing, tmp_path / "queue", f"http://127.0.0.1:{port}", token(srv_root, "otto", "laptop"),
                  base_delay=1.0, max_delay=600.0, scan_interval=5.0, rng=random.Random(3), clock=lambda: now[0])
    start, probes, gaps = now[0], 0, []
    while now[0] - start < 3 * 86400:
        probes += up.run_once()["offline"]
        wait = up.status(scan=False)["next_attempt_in_s"]
        gaps.append(wait)
        now[0] += wait + 0.001  # status rounds to ms
    assert max(gaps) <= 600 and min(gaps[12:]) >= 300  # capped; past the ramp-up always d/2..d
    assert 3 * 86400 / 600 <= probes <= 3 * 86400 / 300 + 12
    st = up.status()
    assert st["pending"] == len(want) and st["consecutive_failures"] == probes and not st["online"]
    assert sealed(landing) == want
    with ReceiverProcess(srv_root, port=port):
        now[0] += 600
        assert up.drain(60)
    assert sealed(Paths(srv_root).landing) == want and sealed(landing) == {}
    up.stop()


def test_queue_survives_a_restart(server, tmp_path):
    landing, queue = tmp_path / "landing", tmp_path / "queue"
    want = make_segments(landing, "rita", "laptop", minutes=2)
    dead = f"http://127.0.0.1:{free_port()}"
    tok = token(server.data_root, "rita", "laptop")
    a = Uploader(landing, queue, dead, tok, **FAST)
    batch = a.enqueue_events([{"event_id": "r-1", "event_name": "app_open", "timestamp": "2026-11-16T09:00:00Z"}])
    a.run_once()
    assert a.status()["pending"] == len(want) + 1
    a.stop()
    del a  # the process is gone; its queue is on disk
    b = Uploader(landing, queue, server.url, tok, **FAST)
    st = b.status()
    assert (st["pending"], st["pending_segments"], st["pending_event_batches"]) == (len(want) + 1, len(want), 1)
    assert b.drain(60)
    st = b.status()
    assert (st["uploaded_segments"], st["event_batches_uploaded"], st["pending"]) == (len(want), 1, 0)
    assert not (queue / batch).exists()
    got = sealed(Paths(server.data_root).landing)
    assert all(got[k] == v for k, v in want.items())
    assert any(k.startswith("app_events/rita/laptop/2026-11-16/") for k in got)
    b.stop()


def test_rate_limit_retry_after_is_honoured(tmp_path):
    with ReceiverProcess(tmp_path / "srv", "--requests-per-s", "3", "--request-burst", "2") as srv:
        landing = tmp_path / "landing"
        want = make_segments(landing, "rosa", "laptop", minutes=2)  # 2 CSV + 2 binary (one in 5 chunks)
        up = Uploader(landing, tmp_path / "queue", srv.url, token(srv.data_root, "rosa", "laptop"), **FAST)
        t = time.monotonic()
        assert up.drain(90)
        took = time.monotonic() - t
        st = up.status()
        assert "HTTP 429" in st["last_error"] and st["uploaded_segments"] == len(want)
        # 9 requests (2 + 1 whole PUTs, 1 GET + 5 chunks) at 3/s after a burst of 2 cannot take
        # less than 2.3 s unless 429s were ignored
        assert took >= 2.0
        assert sealed(Paths(srv.data_root).landing) == want
        up.stop()


def test_conflict_parks_the_item_and_keeps_the_file(server, tmp_path):
    landing = tmp_path / "landing"
    want = make_segments(landing, "carl", "laptop", minutes=2)
    tok = token(server.data_root, "carl", "laptop")
    rel = next(k for k in want if k.endswith(".csv"))
    stream, _, _, day, name = rel.split("/")
    other = b"ts_us,cpu_percent\n"  # someone landed different bytes under this id first
    r = httpx.put(f"{server.url}/v1/segments/{stream}/{name}", params={"date": day}, content=other,
                  headers={"Authorization": f"Bearer {tok}", "X-Segment-SHA256": hashlib.sha256(other).hexdigest()})
    assert r.status_code == 201
    up = Uploader(landing, tmp_path / "queue", server.url, tok, **FAST)
    assert up.drain(60)  # nothing pending any more ...
    st = up.status()
    assert st["rejected"] == 1 and st["rejected_items"][0]["item"] == rel  # ... but one item parked
    assert "HTTP 409" in st["rejected_items"][0]["error"]
    assert sealed(landing) == {rel: want[rel]}  # kept locally
    assert st["uploaded_segments"] == len(want) - 1
    assert up.retry_rejected() == 1 and up.status()["pending"] == 1
    up.stop()


def test_wrong_token_blocks_everything_and_loses_nothing(server, tmp_path):
    landing = tmp_path / "landing"
    want = make_segments(landing, "walt", "laptop", minutes=1)
    up = Uploader(landing, tmp_path / "queue", server.url, "flk_not-a-token", **FAST)
    counts = up.run_once()
    assert counts["blocked"] == 1 and counts["done"] == 0
    st = up.status()
    assert not st["online"] and "HTTP 401" in st["last_error"] and st["pending"] == len(want)
    assert sealed(landing) == want
    # a token for another device: 403 (the uploader names its own user/device), nothing lands
    up2 = Uploader(landing, tmp_path / "queue", server.url, token(server.data_root, "other", "laptop"), **FAST)
    assert up2.run_once()["blocked"] == 1 and "HTTP 403" in up2.status()["last_error"]
    assert not (Paths(server.data_root).landing / "system_metrics" / "walt").exists()
    assert not (Paths(server.data_root).landing / "system_metrics" / "other").exists()
    good = Uploader(landing, tmp_path / "queue", server.url, token(server.data_root, "walt", "laptop"), **FAST)
    assert good.drain(60) and sealed(landing) == {}
    for u in (up, up2, good):
        u.stop()


def test_refuses_to_drain_a_receivers_landing_zone(server, tmp_path):
    with pytest.raises(ValueError, match="receiver's landing zone"):
        Uploader(Paths(server.data_root).landing, tmp_path / "q", server.url, "flk_x")
    with pytest.raises(ValueError, match="inside the landing"):
        Uploader(tmp_path / "landing", tmp_path / "landing" / "q", server.url, "flk_x")


def test_event_batches_go_through_the_queue(server, tmp_path):
    tok = token(server.data_root, "evan", "phone")
    up = Uploader(tmp_path / "landing", tmp_path / "queue", server.url, tok, **FAST)
    up.enqueue_events([{"event_id": f"v{i}", "event_name": "tap", "timestamp": "2026-11-16T09:00:00Z"}
                       for i in range(5)] + [{"event_id": "bad", "timestamp": "nope"}])
    up.enqueue_events([{"session_id": "s", "timestamp": "2026-11-16T09:00:05Z", "data": {"x": 1}}])
    assert up.status()["pending_event_batches"] == 2
    assert up.drain(60)
    st = up.status()
    assert (st["event_batches_uploaded"], st["events_rejected_by_receiver"]) == (2, 1)
    assert list((tmp_path / "queue" / "events").iterdir()) == []
    landed = [p for p in (Paths(server.data_root).landing / "app_events" / "evan").rglob("*.csv")]
    assert sum(len(p.read_text().splitlines()) - 1 for p in landed) == 6
    up.stop()


def test_status_cli(server, tmp_path):
    make_segments(tmp_path / "landing", "stan", "laptop", minutes=1)
    out = subprocess.run([sys.executable, "-m", "collectors.uploader", "status", "--landing",
                          str(tmp_path / "landing"), "--queue", str(tmp_path / "queue")],
                         capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    st = json.loads(out.stdout)
    assert st["pending"] == 2 and st["uploaded_segments"] == 0


# ---------------------------------------------------------------------------------------------
def _uploader_proc(landing: Path, queue: Path, url: str, token_file: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "collectors.uploader", "run", "--landing", str(landing), "--queue", str(queue),
         "--url", url, "--token-file", str(token_file), "--drain", "--timeout", "150", "--base-delay", "0.1",
         "--max-delay", "1.0", "--scan-interval", "0.3", "--whole-max", "20000", "--chunk-bytes", "4096"],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})


@pytest.mark.slow
def test_receiver_sigkilled_during_uploads_every_segment_lands_exactly_once(tmp_path):
    from collectors.simulate import simulate

    # three people's collectors, each with its own local landing directory and queue
    sim = tmp_path / "sim"
    simulate(sim, users=3, days=1, hours=1, rotate_seconds=300, durable=False)
    originals = sealed(Paths(sim).landing)
    users = sorted({k.split("/")[1] for k in originals})
    assert len(users) == 3
    srv_root = tmp_path / "srv"
    collectors = []
    for u in users:
        dev = next(k.split("/")[2] for k in originals if k.split("/")[1] == u)
        local = tmp_path / u / "landing"
        for rel in (k for k in originals if k.split("/")[1] == u):
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Paths(sim).landing / rel, local / rel)
        tf = tmp_path / u / "token"
        tf.write_text(token(srv_root, u, dev))
        collectors.append((local, tmp_path / u / "queue", tf, tmp_path / u / "uploader.log"))
        # and app events queued on the same machine: 40 batches of 25
        q = Uploader(local, tmp_path / u / "queue")
        for b in range(40):
            q.enqueue_events([{"event_id": f"{u}-{b}-{k}", "event_name": "tick", "session_id": f"{u}-s{b // 10}",
                               "timestamp": f"2026-11-16T10:{b:02d}:{k:02d}Z"} for k in range(25)])

    port = free_port()
    rx = ReceiverProcess(srv_root, "--requests-per-s", "off", "--events-per-s", "off", port=port).start()
    procs = [_uploader_proc(*c[:2], rx.url, *c[2:]) for c in collectors]
    landed_dir = Paths(srv_root).landing
    try:
        deadline = time.monotonic() + 60
        while len(sealed(landed_dir)) < len(originals) // 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        n_at_kill = len(sealed(landed_dir))
        rx.kill()  # SIGKILL mid-stream
        assert 0 < n_at_kill < len(originals), "the kill must land while uploads are running"
        # one collector's uploader is killed too, and restarted later (its queue is on disk)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        time.sleep(1.5)  # uploaders find the receiver gone and back off
        assert all(p.poll() is None for p in procs[1:]), "uploaders keep waiting while it is down"
        assert any(sealed(c[0]) for c in collectors)  # work left to do
        rx = ReceiverProcess(srv_root, "--requests-per-s", "off", "--events-per-s", "off", port=port).start()
        procs[0] = _uploader_proc(*collectors[0][:2], rx.url, *collectors[0][2:])
        for p in procs:
            assert p.wait(150) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        rx.stop()
    # every queue drained, every local segment deleted
    for landing, queue, _tf, log in collectors:
        assert sealed(landing) == {}, log.read_text()[-2000:]
        st = Uploader(landing, queue).status()
        assert (st["pending"], st["rejected"]) == (0, 0)
    # every segment landed exactly once, byte-identical; no half-written file is visible
    app = {k for k in sealed(landed_dir) if k.startswith("app_events/")}
    assert {k: v for k, v in sealed(landed_dir).items() if k not in app} == originals
    # every event exactly once
    ids = [line.split(",")[1] for k in app for line in (landed_dir / k).read_text().splitlines()[1:]]
    assert len(ids) == len(set(ids)) == 3 * 40 * 25
    # and the ingest takes each once: rows read = written + quarantined, nothing duplicate
    s = ingest_landing(Paths(srv_root))
    assert s["segments_ingested"] == len(originals) + len(app) and s["segments_duplicate"] == 0
    assert s["segments_quarantined"] == 0 and s["rows_read"] == s["rows_written"] + s["rows_quarantined"]
    ref = ingest_landing(Paths(sim))
    assert (s["rows_read"], s["rows_written"]) == (ref["rows_read"] + 3000, ref["rows_written"] + 3000)
    con = duckdb.connect()
    for stream in ("events", "system_metrics", "active_window", "input_counts", "system_events"):
        q = "SELECT count(*), sum(hash(ts_us)) FROM read_parquet('{}/" + stream + "/*/*.parquet')"
        assert con.execute(q.format(Paths(srv_root).lake)).fetchone() == \
            con.execute(q.format(Paths(sim).lake)).fetchone(), stream
