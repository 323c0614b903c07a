"""The receiver against the real server: `python -m focuslake.receiver serve` (uvicorn) in its
own process on a free loopback port, real HTTP (httpx, and raw sockets to drop connections
mid-body), then the real ingest over what it landed."""
import gzip
import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest
import zstandard

from focuslake import events as ev
from focuslake.config import PROJECT_ROOT, Paths
from focuslake.ingest import ingest_landing
from focuslake.receiver.process import ReceiverProcess
from focuslake.receiver.store import Store, hash_token
from focuslake.schemas import CSV_STREAMS

DAY = "2026-11-16"
T0 = int(datetime(2026, 11, 16, 9, tzinfo=UTC).timestamp()) * 1_000_000
LIMITS = ["--max-segment-body", "65536", "--max-chunk", "32768", "--max-events-body", "262144",
          "--max-events-per-batch", "200", "--requests-per-s", "off", "--events-per-s", "off"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ReceiverProcess(tmp_path_factory.mktemp("receiver") / "data", *LIMITS) as r:
        yield r


def device(server: ReceiverProcess, user: str, dev: str) -> httpx.Client:
    token, _ = Store(server.data_root / "receiver" / "receiver.sqlite").create_token(user, dev)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def put(c: httpx.Client, stream: str, name: str, data: bytes, *, day: str = DAY, sha: str | None = None,
        headers: dict | None = None, params: dict | None = None) -> httpx.Response:
    return c.put(f"/v1/segments/{stream}/{name}", params={"date": day, **(params or {})}, content=data,
                 headers={"X-Segment-SHA256": sha or hashlib.sha256(data).hexdigest(), **(headers or {})})


def csv_segment(n: int, start_us: int = T0, cpu: float = 10.0) -> bytes:
    rows = [",".join(CSV_STREAMS["system_metrics"].names)]
    rows += [f"{start_us + i * 5_000_000},{cpu + i % 7},{40 + i % 3},,{i},{2 * i},{3 * i},{4 * i},,true,code,1.5"
             for i in range(n)]
    return ("\n".join(rows) + "\n").encode()


def bin_segment(user: str, dev: str, n: int = 50, start_us: int = T0) -> bytes:
    r = ev.make_records(n)
    r["timestamp_us"] = start_us + np.arange(n) * 100_000
    r["event_type"] = 3  # mouse move
    r["app_name"] = b"code"
    return ev.encode_segment(r, user, dev, start_us)


def files(root: Path, hidden: bool = False) -> list[str]:
    """Files under root (relative), without hidden temp files unless asked."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                  and (hidden or not (p.name.startswith(".") or p.name.endswith(".part"))))


def landing(server) -> Path:
    return Paths(server.data_root).landing


def drop_mid_body(port: int, target: str, headers: dict, body: bytes, cut: int) -> None:
    """Send the request line, headers and only `cut` bytes of the body, then close the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
    s.sendall(head.encode() + body[:cut])
    time.sleep(0.3)  # the server is waiting for the rest of the body
    s.close()
    time.sleep(0.3)


# ---------------------------------------------------------------------------------------------
def test_health_and_openapi_served(server):
    h = httpx.get(server.url + "/health")
    assert h.status_code == 200 and h.json()["status"] == "ok"
    assert "app_events" in h.json()["streams"]
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/segments/{stream}/{segment_id}", "/v1/events", "/health"} <= set(spec["paths"])
    put_op = spec["paths"]["/v1/segments/{stream}/{segment_id}"]["put"]
    assert "X-Segment-SHA256" in {p["name"] for p in put_op["parameters"]}
    assert "application/octet-stream" in put_op["requestBody"]["content"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert httpx.get(server.url + "/docs").status_code == 200


def test_tokens_issued_by_cli_stored_hashed_and_revocable(server):
    cli = [sys.executable, "-m", "focuslake.receiver", "--data", str(server.data_root)]
    out = subprocess.run([*cli, "token", "create", "--user", "cliuser", "--device", "box1", "--json"],
                         capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    tok = json.loads(out.stdout)
    token = tok["token"]
    c = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    assert c.get("/v1/segments/system_events/x.csv", params={"date": DAY}).json()["status"] == "absent"
    # only the hash is stored, never the token
    db = sqlite3.connect(server.data_root / "receiver" / "receiver.sqlite")
    dump = "\n".join(db.iterdump())
    assert token not in dump and hash_token(token) in dump
    listed = subprocess.run([*cli, "token", "list"], capture_output=True, text=True, check=True,
                            cwd=PROJECT_ROOT).stdout
    assert tok["token_id"] in listed and token not in listed
    # wrong / missing / malformed tokens
    for hdr in ({"Authorization": "Bearer flk_wrong"}, {}, {"Authorization": "Basic dXNlcjpwdw=="},
                {"Authorization": "Bearer " + token[:-1]}):
        r = httpx.get(server.url + "/v1/segments/system_events/x.csv", params={"date": DAY}, headers=hdr)
        assert r.status_code == 401, hdr
        assert r.headers["WWW-Authenticate"] == "Bearer"
    r = put(httpx.Client(base_url=server.url, headers={"Authorization": "Bearer flk_wrong"}),
            "system_events", "system_events-a.csv", b"ts_us,event\n")
    assert r.status_code == 401
    assert not (landing(server) / "system_events").exists()
    subprocess.run([*cli, "token", "revoke", tok["token_id"]], check=True, capture_output=True, cwd=PROJECT_ROOT)
    assert c.get("/v1/segments/system_events/x.csv", params={"date": DAY}).status_code == 401
    bad = subprocess.run([*cli, "token", "create", "--user", "bad user", "--device", "d"],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    assert bad.returncode == 2 and "user_id" in bad.stderr


def test_upload_duplicate_conflict_and_checksum(server):
    c = device(server, "alice", "laptop")
    data = csv_segment(12)
    name = "system_metrics-20261116T090000Z-0000.csv"
    rel = f"system_metrics/alice/laptop/{DAY}/{name}"
    r = put(c, "system_metrics", name, data)
    assert r.status_code == 201, r.text
    assert r.json() == {"status": "landed", "path": rel, "sha256": hashlib.sha256(data).hexdigest(),
                        "size": len(data)}
    target = landing(server) / rel
    assert target.read_bytes() == data
    mtime = target.stat().st_mtime_ns
    # a retry of the same bytes is a no-op
    r = put(c, "system_metrics", name, data)
    assert r.status_code == 200 and r.json()["status"] == "exists"
    assert target.stat().st_mtime_ns == mtime
    # different bytes under the same id: 409, the landed segment untouched
    other = csv_segment(12, cpu=50.0)
    r = put(c, "system_metrics", name, other)
    assert r.status_code == 409 and hashlib.sha256(data).hexdigest() in r.json()["detail"]
    assert target.read_bytes() == data
    # a body that does not match its declared checksum lands nothing
    r = put(c, "system_metrics", "system_metrics-20261116T091000Z-0000.csv", other,
            sha=hashlib.sha256(data).hexdigest())
    assert r.status_code == 422 and "checksum mismatch" in r.json()["detail"]
    assert [f for f in files(landing(server) / "system_metrics" / "alice", hidden=True)] == \
        [f"laptop/{DAY}/{name}"]
    # the status endpoint
    st = c.get(f"/v1/segments/system_metrics/{name}", params={"date": DAY}).json()
    assert st["status"] == "landed" and st["sha256"] == hashlib.sha256(data).hexdigest()
    # malformed parameters
    assert put(c, "system_metrics", "x.bin", data).status_code == 422            # wrong extension
    assert put(c, "nosuchstream", "x.csv", data).status_code == 422
    assert put(c, "system_metrics", "x.csv", data, day="2026-02-30").status_code == 422
    assert put(c, "system_metrics", "x.csv", data, sha="abc").status_code == 422
    assert put(c, "system_metrics", ".hidden.csv", data).status_code == 422
    assert put(c, "system_metrics", "x.csv.part", data).status_code == 422


def test_compressed_bodies(server):
    c = device(server, "alice", "desk")
    data = csv_segment(100)
    for i, (enc, body) in enumerate((("gzip", gzip.compress(data)),
                                     ("zstd", zstandard.ZstdCompressor().compress(data)))):
        name = f"system_metrics-20261116T10{i}000Z-0000.csv"
        r = put(c, "system_metrics", name, body, sha=hashlib.sha256(data).hexdigest(),
                headers={"Content-Encoding": enc})
        assert r.status_code == 201, r.text
        assert (landing(server) / r.json()["path"]).read_bytes() == data  # stored decoded
    r = put(c, "system_metrics", "s-br.csv", data, headers={"Content-Encoding": "br"})
    assert r.status_code == 415
    r = put(c, "system_metrics", "s-badgz.csv", b"\x1f\x8b not gzip at all", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400
    r = put(c, "system_metrics", "s-badzstd.csv", b"not zstd", headers={"Content-Encoding": "zstd"})
    assert r.status_code == 400
    # a small compressed body that expands past the limit (65536 bytes) is refused
    bomb = b"0" * 1_000_000
    r = put(c, "system_metrics", "s-bomb.csv", gzip.compress(bomb), sha=hashlib.sha256(bomb).hexdigest(),
            headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert len(files(landing(server) / "system_metrics" / "alice" / "desk")) == 2


def test_a_device_writes_only_its_own_path(server):
    a = device(server, "bob", "laptop")
    b = device(server, "carol", "laptop")
    data = csv_segment(3)
    name = "system_metrics-20261116T090000Z-0000.csv"
    # naming another user or device is refused, whatever the token
    for params in ({"user_id": "carol"}, {"device_id": "phone"}, {"user_id": "carol", "device_id": "laptop"}):
        r = put(a, "system_metrics", name, data, params=params)
        assert r.status_code == 403, params
    # naming itself is fine; the path comes from the token
    r = put(a, "system_metrics", name, data, params={"user_id": "bob", "device_id": "laptop"})
    assert r.status_code == 201 and r.json()["path"].startswith("system_metrics/bob/laptop/")
    # a binary segment whose header claims someone else
    forged = bin_segment("carol", "laptop")
    r = put(a, "events", "events-20261116T090000Z-0000.bin", forged)
    assert r.status_code == 403 and "carol/laptop" in r.json()["detail"]
    assert put(a, "events", "events-20261116T090000Z-0000.bin", bin_segment("bob", "laptop")).status_code == 201
    # carol's token sees and writes only carol's path: the same id is free for her
    assert b.get(f"/v1/segments/system_metrics/{name}", params={"date": DAY}).json()["status"] == "absent"
    assert put(b, "system_metrics", name, csv_segment(3, cpu=70)).status_code == 201
    assert files(landing(server) / "events") == [f"bob/laptop/{DAY}/events-20261116T090000Z-0000.bin"]
    assert (landing(server) / f"system_metrics/bob/laptop/{DAY}/{name}").read_bytes() == data
    # events naming another user are refused per event
    r = b.post("/v1/events", json=[{"event_id": "1", "event_name": "x", "timestamp": "2026-11-16T09:00:00Z",
                                    "user_id": "bob"}])
    assert r.json()["rejected"] == 1 and "not this device's user" in r.json()["errors"][0]["errors"][0]


def test_oversized_bodies(server):
    c = device(server, "dave", "laptop")
    big = csv_segment(2000)
    assert len(big) > 65536
    r = put(c, "system_metrics", "system_metrics-20261116T090000Z-0000.csv", big)
    assert r.status_code == 413
    # without Content-Length (chunked transfer encoding) the limit holds while reading
    r = c.put("/v1/segments/system_metrics/system_metrics-20261116T090000Z-0001.csv", params={"date": DAY},
              content=iter([big[i:i + 8192] for i in range(0, len(big), 8192)]),
              headers={"X-Segment-SHA256": hashlib.sha256(big).hexdigest()})
    assert r.status_code == 413
    # a chunk above the chunk limit
    r = put(c, "system_metrics", "s-c.csv", big[:40000],
            headers={"Content-Range": f"bytes 0-39999/{len(big)}"}, sha=hashlib.sha256(big).hexdigest())
    assert r.status_code == 413
    # a segment above the total limit
    r = put(c, "system_metrics", "s-t.csv", big[:100], sha=hashlib.sha256(big).hexdigest(),
            headers={"Content-Range": f"bytes 0-99/{(1 << 30) + 1}"})
    assert r.status_code == 413
    # too many events in one batch, and a too large events body
    evs = [{"event_id": str(i), "event_name": "x", "timestamp": "2026-11-16T09:00:00Z"} for i in range(201)]
    assert c.post("/v1/events", json=evs).status_code == 413
    assert c.post("/v1/events", content=b"[" + b" " * 300_000 + b"]",
                  headers={"Content-Type": "application/json"}).status_code == 413
    assert files(landing(server) / "system_metrics" / "dave", hidden=True) == []


def test_dropped_connection_mid_body_then_retry(server):
    c = device(server, "erin", "laptop")
    token = c.headers["Authorization"]
    data = csv_segment(400)
    sha = hashlib.sha256(data).hexdigest()
    name = "system_metrics-20261116T090000Z-0000.csv"
    target = f"/v1/segments/system_metrics/{name}?date={DAY}"
    drop_mid_body(server.port, target, {"Authorization": token, "X-Segment-SHA256": sha}, data, len(data) // 2)
    # the receiver saw the drop and wrote nothing, not even a temp file
    assert f"client dropped mid-body: system_metrics/erin/laptop/{DAY}/{name}" in server.log.read_text()
    assert files(landing(server) / "system_metrics" / "erin", hidden=True) == []
    assert c.get(f"/v1/segments/system_metrics/{name}", params={"date": DAY}).json()["status"] == "absent"
    r = put(c, "system_metrics", name, data)
    assert r.status_code == 201
    assert files(landing(server) / "system_metrics" / "erin") == [f"laptop/{DAY}/{name}"]
    assert (landing(server) / r.json()["path"]).read_bytes() == data

    # chunked: chunk 1 stored, chunk 2 dropped mid-body, resume from the offset the receiver reports
    big = bin_segment("erin", "laptop", n=1500)  # 96 KiB, three chunks of 32 KiB
    bsha = hashlib.sha256(big).hexdigest()
    bname = "events-20261116T090000Z-0000.bin"
    n, step = len(big), 32768

    def chunk(start: int, end: int) -> httpx.Response:
        return put(c, "events", bname, big[start:end + 1], sha=bsha,
                   headers={"Content-Range": f"bytes {start}-{end}/{n}"})

    r = chunk(0, step - 1)
    assert r.status_code == 202 and r.json()["offset"] == step and r.headers["Upload-Offset"] == str(step)
    drop_mid_body(server.port, f"/v1/segments/events/{bname}?date={DAY}",
                  {"Authorization": token, "X-Segment-SHA256": bsha,
                   "Content-Range": f"bytes {step}-{2 * step - 1}/{n}"}, big[step:2 * step], 5000)
    assert f"client dropped mid-body: events/erin/laptop/{DAY}/{bname}" in server.log.read_text()
    st = c.get(f"/v1/segments/events/{bname}", params={"date": DAY, "sha256": bsha}).json()
    assert st == {"status": "partial", "path": f"events/erin/laptop/{DAY}/{bname}", "offset": step}
    # out of order: told where to resume
    r = chunk(2 * step, n - 1)
    assert r.status_code == 416 and r.headers["Upload-Offset"] == str(step)
    # a chunk sent twice (its answer lost) changes nothing
    assert chunk(0, step - 1).json()["offset"] == step
    assert chunk(step, 2 * step - 1).status_code == 202
    r = chunk(2 * step, n - 1)
    assert r.status_code == 201 and r.json()["sha256"] == bsha
    assert (landing(server) / r.json()["path"]).read_bytes() == big
    assert chunk(0, step - 1).status_code == 200  # after landing: a no-op
    assert files(server.data_root / "receiver" / "uploads") == []  # staging cleaned up

    # a chunked upload whose assembled bytes do not match: discarded, nothing lands
    wrong = "0" * 64
    r = put(c, "events", "events-20261116T091000Z-0000.bin", big[:100], sha=wrong,
            headers={"Content-Range": "bytes 0-99/100"})
    assert r.status_code == 422
    assert files(server.data_root / "receiver" / "uploads") == []
    assert files(landing(server) / "events" / "erin") == [f"laptop/{DAY}/{bname}"]


# ---------------------------------------------------------------------------------------------
USER = "frank"
VALID = [
    # seed 004's generic event
    {"event_id": "e-1", "event_name": "user_login", "event_category": "user", "user_id": USER,
     "session_id": "s-1", "timestamp": "2026-11-16T09:00:00Z", "properties": {"method": "password"},
     "context": {"device_type": "desktop", "platform": "web", "app_version": "1.2.0", "locale": "en-GB",
                 "timezone": "Europe/London"}, "privacy": {"consent_given": True, "ip_anonymized": True}},
    # seed 002's performance event: no event_name, extra top-level fields
    {"event_id": "e-2", "event_type": "performance", "timestamp": "2026-11-16T10:00:00.123456+01:00",
     "platform": "web", "category": "network", "session_id": "s-1",
     "measurements": [{"name": "ttfb", "value": 120, "unit": "ms"}]},
    # seed 000's EyeCore snapshot, on the next UTC day
    {"session_id": "eyecore-9", "timestamp": "2026-11-17T00:00:01Z",
     "data": {"system_metrics": {"cpu_percent": 12.5}, "voice_data": {"enabled": False}}},
]
INVALID = [
    ({"event_id": "x-1", "event_name": "a", "timestamp": "2026-11-16 09:00:00"}, "no UTC offset"),
    ({"event_id": "x-2", "event_name": "a", "timestamp": "yesterday"}, "not ISO 8601"),
    ({"event_name": "a", "timestamp": "2026-11-16T09:00:00Z"}, "event_id: required"),
    ({"event_id": "x-4", "event_name": "a", "timestamp": "2026-11-16T09:00:00Z", "user_id": "mallory"},
     "not this device's user"),
    ({"event_id": "x-5", "event_name": "a", "timestamp": "2026-11-16T09:00:00Z", "properties": [1]},
     "properties: must be a JSON object"),
    ({"event_id": "x-6", "event_name": "a", "timestamp": "2026-11-16T09:00:00Z",
      "privacy": {"consent_given": False}, "properties": {"secret": "do-not-keep"}}, "consent_given is false"),
    ({"event_id": "e-1", "event_name": "again", "timestamp": "2026-11-16T09:00:00Z"}, "duplicate within"),
    ("not an object", "must be a JSON object"),
    ({"event_id": "x-9", "event_name": "a", "timestamp": "1999-12-31T23:59:59Z"}, "out of range"),
    ({"event_id": "x-10", "event_name": "a\nb", "timestamp": "2026-11-16T09:00:00Z"}, "control characters"),
    ({"event_id": "x-11", "timestamp": "2026-11-16T09:00:00Z"}, "event_name: required"),
    ({"event_id": "x-12", "event_name": "a", "timestamp": "2026-11-16T09:00:00Z",
      "privacy": {"consent_given": "yes"}}, "must be true or false"),
]


def test_events_batch_mixing_valid_and_invalid(server):
    c = device(server, USER, "phone")
    batch = []
    for i, (bad, _) in enumerate(INVALID):  # interleave: valid ones at 0, 5, 10
        if i % 4 == 0 and i // 4 < len(VALID):
            batch.append(VALID[i // 4])
        batch.append(bad)
    r = c.post("/v1/events", json={"events": batch})
    assert r.status_code == 200, r.text
    res = r.json()
    assert (res["received"], res["accepted"], res["rejected"]) == (len(batch), 3, len(INVALID))
    assert res["duplicate"] is False
    bad_at = {e["index"]: e for e in res["errors"]}
    for bad, why in INVALID:
        i = next(k for k, v in enumerate(batch) if v is bad)
        assert any(why in msg for msg in bad_at[i]["errors"]), (why, bad_at[i])
    # valid events landed as app_events segments, one per UTC date
    assert sorted(s.split("/")[3] for s in res["segments"]) == ["2026-11-16", "2026-11-17"]
    rows = []
    for s in res["segments"]:
        text = (landing(server) / s).read_text()
        assert text.splitlines()[0].startswith("ts_us,event_id,event_name,event_type,session_id,source")
        rows += text.splitlines()[1:]
    assert len(rows) == 3
    # the rejects are quarantined with their reasons; the no-consent one without its content
    q = [json.loads(line) for line in (server.data_root / res["quarantine"]).read_text().splitlines()]
    assert [x["index"] for x in q] == sorted(bad_at)
    assert all(x["reasons"] for x in q)
    no_consent = next(x for x in q if x["event_id"] == "x-6")
    assert no_consent["raw"] is None and "do-not-keep" not in (server.data_root / res["quarantine"]).read_text()
    assert next(x for x in q if x["event_id"] == "x-2")["raw"] == INVALID[1][0]

    # the same batch again (its answer lost): the same answer, nothing lands twice
    before = files(landing(server), hidden=True)
    again = c.post("/v1/events", json={"events": batch}).json()
    assert again["duplicate"] is True and again["segments"] == res["segments"]
    assert files(landing(server), hidden=True) == before
    # gzip/zstd bodies; bad JSON; wrong type; wrong shape
    body = json.dumps([{"event_id": "z-1", "event_name": "gz", "timestamp": "2026-11-16T11:00:00Z"}]).encode()
    r = c.post("/v1/events", content=gzip.compress(body),
               headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.json()["accepted"] == 1
    r = c.post("/v1/events", content=zstandard.ZstdCompressor().compress(body.replace(b"z-1", b"z-2")),
               headers={"Content-Encoding": "zstd", "Content-Type": "application/json"})
    assert r.json()["accepted"] == 1
    before = files(landing(server), hidden=True)
    r = c.post("/v1/events", content=b'[{"event_id": "q", ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["detail"]
    assert c.post("/v1/events", content=b"\xff\xfe", headers={"Content-Type": "application/json"}).status_code == 400
    assert c.post("/v1/events", content=body, headers={"Content-Type": "text/plain"}).status_code == 415
    assert c.post("/v1/events", json=42).status_code == 422
    assert files(landing(server), hidden=True) == before

    # the ingest lands the app_events stream; reconciliation is exact
    paths = Paths(server.data_root)
    summary = ingest_landing(paths)
    assert summary["rows_read"] == summary["rows_written"] + summary["rows_quarantined"]
    con = duckdb.connect()
    lake = con.execute(f"""SELECT event_id, ts_us, event_name, event_type, session_id, source,
                                  properties_json, context_json, consent_json, CAST(date AS VARCHAR)
                           FROM read_parquet('{paths.lake}/app_events/date=*/*.parquet', hive_partitioning=true)
                           WHERE user_id = '{USER}' AND device_id = 'phone' ORDER BY ts_us, event_id""").fetchall()
    assert [r[0] for r in lake] == ["e-1", "e-2", "z-1", "z-2", lake[4][0]]
    e1, e2, eye = lake[0], lake[1], lake[4]
    assert e1[1] == T0 and e1[2:6] == ("user_login", "user", "s-1", "generic")
    assert json.loads(e1[7])["platform"] == "web" and json.loads(e1[8]) == {"consent_given": True,
                                                                               "ip_anonymized": True}
    assert e2[1] == T0 + 123_456 and e2[2:4] == ("performance", "performance")  # +01:00 -> UTC, exact us
    assert json.loads(e2[7])["measurements"][0]["name"] == "ttfb"
    assert eye[0].startswith("eyecore-") and eye[2:6] == ("eyecore.snapshot", "eyecore", "eyecore-9", "eyecore")
    assert json.loads(eye[6])["system_metrics"]["cpu_percent"] == 12.5 and eye[9] == "2026-11-17"
    assert json.loads(eye[8]) == {"voice_data": False}
    ledger = con.execute(f"""SELECT count(*), sum(rows_read), sum(rows_written), sum(rows_quarantined)
                             FROM read_parquet('{paths.ledger_export}')
                             WHERE stream = 'app_events' AND user_id = '{USER}'""").fetchone()
    assert ledger == (4, 5, 5, 0)
    # events sent = events in the lake + events quarantined by the receiver
    quarantined = sum(len(p.read_text().splitlines())
                      for p in (paths.quarantine / "events" / USER).rglob("*.jsonl"))
    assert len(batch) + 2 == len(lake) + quarantined
    # the receiver's own books agree
    totals = Store(server.data_root / "receiver" / "receiver.sqlite").totals()
    assert totals["events_received"] == totals["events_accepted"] + totals["events_rejected"]


def test_uploaded_segments_reconcile_through_the_ingest(tmp_path):
    """A fresh receiver: everything uploaded is in the lake once; rows read = written + quarantined."""
    with ReceiverProcess(tmp_path / "data", *LIMITS) as srv:
        c = device(srv, "gina", "laptop")
        sent_rows = 0
        for i in range(5):
            data = csv_segment(20 + i, start_us=T0 + i * 600_000_000)
            if i == 4:  # one bad row (cpu above 100): the ingest quarantines that row only
                data += f"{T0 + 4 * 600_000_000 + 999_000_000},150,40,,0,0,0,0,,true,code,1\n".encode()
            sent_rows += data.count(b"\n") - 1
            name = f"system_metrics-20261116T{9 + i:02d}0000Z-0000.csv"
            assert put(c, "system_metrics", name, data).status_code == 201
            assert put(c, "system_metrics", name, data).status_code == 200  # retry: no-op
        seg = bin_segment("gina", "laptop", n=300)
        assert put(c, "events", "events-20261116T090000Z-0000.bin", seg).status_code == 201
        s = ingest_landing(Paths(srv.data_root))
    assert s["segments_ingested"] == 6 and s["segments_duplicate"] == 0 and s["segments_quarantined"] == 0
    assert s["rows_read"] == sent_rows + 300
    assert (s["rows_written"], s["rows_quarantined"]) == (sent_rows + 300 - 1, 1)
    lake = Paths(srv.data_root).lake
    n = duckdb.connect().execute(f"SELECT count(*), count(DISTINCT ts_us) FROM "
                                 f"read_parquet('{lake}/system_metrics/*/*.parquet')").fetchone()
    assert n == (sent_rows - 1, sent_rows - 1)


def test_rate_limits_per_device(tmp_path):
    args = ["--requests-per-s", "0.5", "--request-burst", "3", "--events-per-s", "1", "--event-burst", "20"]
    with ReceiverProcess(tmp_path / "data", *args) as srv:
        a, b = device(srv, "hana", "laptop"), device(srv, "ivan", "laptop")
        st = "/v1/segments/system_events/x.csv"
        codes = [a.get(st, params={"date": DAY}) for _ in range(4)]
        assert [r.status_code for r in codes[:3]] == [200, 200, 200]
        assert codes[3].status_code == 429
        wait = int(codes[3].headers["Retry-After"])
        assert 1 <= wait <= 2
        assert b.get(st, params={"date": DAY}).status_code == 200  # another device: its own budget
        time.sleep(wait)
        assert a.get(st, params={"date": DAY}).status_code == 200
        # events: 15 fit the burst of 20; the next 15 do not (nothing of them lands)
        evs = [{"event_id": f"r{i}", "event_name": "x", "timestamp": "2026-11-16T09:00:00Z"} for i in range(15)]
        assert b.post("/v1/events", json=evs).json()["accepted"] == 15
        r = b.post("/v1/events", json=[{**e, "event_id": e["event_id"] + "b"} for e in evs])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 5
        assert len(files(Paths(srv.data_root).landing / "app_events")) == 1
        # a batch larger than the burst can never pass
        many = [{**e, "event_id": f"m{i}"} for i, e in enumerate(evs * 2)]
        time.sleep(1.0)
        assert b.post("/v1/events", json=many).status_code == 413


def test_receiver_binds_loopback_by_default():
    out = subprocess.run([sys.executable, "-m", "focuslake.receiver", "serve", "--help"], capture_output=True,
                         text=True, check=True, cwd=PROJECT_ROOT).stdout
    assert "default 127.0.0.1" in out
    from focuslake.receiver.__main__ import main  # noqa: F401  (importable without starting anything)


def test_gzip_limit_is_on_decoded_size():
    from focuslake.receiver.landing import BodyError, decode_body

    blob = zlib.compress(b"x", 9)
    with pytest.raises(BodyError) as e:
        decode_body(blob, "gzip", 100)  # zlib, not gzip framing
    assert e.value.status == 400
    assert decode_body(gzip.compress(b"y" * 100), "gzip", 100) == b"y" * 100
    with pytest.raises(BodyError) as e:
        decode_body(gzip.compress(b"y" * 101), "gzip", 100)
    assert e.value.status == 413
    with pytest.raises(BodyError) as e:
        decode_body(zstandard.ZstdCompressor().compress(b"y" * 101), "zstd", 100)
    assert e.value.status == 413


def _app_rows(server, user: str) -> list[str]:
    out = []
    for p in sorted((landing(server) / "app_events" / user).rglob("*.csv")):
        out += p.read_text().splitlines()[1:]
    return out


def test_events_group_commit_lands_concurrent_retries_once(server):
    c = device(server, "gus", "phone")
    batch = [{"event_id": f"g{i}", "event_name": "tap", "timestamp": f"2026-11-16T09:00:{i:02d}Z"} for i in range(30)]
    body = json.dumps(batch).encode()
    from concurrent.futures import ThreadPoolExecutor

    def post(_):
        return c.post("/v1/events", content=body, headers={"Content-Type": "application/json"}).json()

    with ThreadPoolExecutor(8) as pool:  # the same batch eight times at once (a client retrying hard)
        answers = list(pool.map(post, range(8)))
    assert all(a["accepted"] == 30 and a["batch_sha256"] == answers[0]["batch_sha256"] for a in answers)
    assert sum(not a["duplicate"] for a in answers) == 1
    assert len({tuple(a["segments"]) for a in answers}) == 1
    rows = _app_rows(server, "gus")
    assert len(rows) == 30 and len({r.split(",")[1] for r in rows}) == 30
    # many different small batches at once share segments (group commit), every row once
    with ThreadPoolExecutor(8) as pool:
        res = list(pool.map(lambda i: c.post("/v1/events", json=[{**batch[0], "event_id": f"h{i}"}]).json(),
                            range(40)))
    assert all(r["accepted"] == 1 and len(r["segments"]) == 1 for r in res)
    assert len(_app_rows(server, "gus")) == 70
    assert len({s for r in res for s in r["segments"]}) <= 40


def test_events_landing_interrupted_by_a_crash_resumes_without_duplicates(server):
    """A receiver that died between writing a batch's segments and recording them done: the
    retried batch re-lands only the dates whose segment is missing."""
    c = device(server, "hugo", "phone")
    batch = [{"event_id": "d1-a", "event_name": "x", "timestamp": "2026-11-16T09:00:00Z"},
             {"event_id": "d1-b", "event_name": "x", "timestamp": "2026-11-16T10:00:00Z"},
             {"event_id": "d2-a", "event_name": "x", "timestamp": "2026-11-17T09:00:00Z"}]
    first = c.post("/v1/events", json=batch).json()
    day1, day2 = sorted(first["segments"])
    # the crash: day 2's segment never made it, the batch is still marked `landing`
    (landing(server) / day2).unlink()
    db = sqlite3.connect(server.data_root / "receiver" / "receiver.sqlite")
    with db:
        db.execute("UPDATE batches SET state = 'landing' WHERE batch_sha256 = ?", (first["batch_sha256"],))
        db.execute("DELETE FROM segments WHERE landing_path = ?", (day2,))
    again = c.post("/v1/events", json=batch).json()
    assert again["accepted"] == 3 and day1 in again["segments"] and len(again["segments"]) == 2
    new_day2 = next(s for s in again["segments"] if s != day1)
    assert new_day2.split("/")[3] == "2026-11-17" and new_day2 != day2
    ids = sorted(r.split(",")[1] for r in _app_rows(server, "hugo"))
    assert ids == ["d1-a", "d1-b", "d2-a"]  # nothing lost, nothing twice
    assert "resuming an interrupted landing" in server.log.read_text()
    assert c.post("/v1/events", json=batch).json()["duplicate"] is True  # and now it is done
    assert sorted(r.split(",")[1] for r in _app_rows(server, "hugo")) == ids
