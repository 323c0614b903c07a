"""Generic events end to end: posted to the real receiver -> landed as app_events segments ->
the ingest -> `dbt build --select +slv_app_sessions` alone from dbt_project/ -> sessions
stitched exactly as expected (explicit session ids across devices, inferred sessions by the
inactivity gap, re-sent events counted once)."""
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from focuslake.config import DBT_PROJECT_DIR, NO_TELEMETRY_ENV, Paths
from focuslake.ingest import ingest_landing
from focuslake.receiver.process import ReceiverProcess
from focuslake.receiver.store import Store

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
T9 = datetime(2026, 11, 16, 9, tzinfo=UTC)


def iso(minutes: float) -> str:
    return (T9 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def us(minutes: float) -> int:
    return int((T9 + timedelta(minutes=minutes)).timestamp()) * 1_000_000


def ev(eid: str, minutes: float, name: str = "screen_view", session: str | None = None, **kw) -> dict:
    e = {"event_id": eid, "event_name": name, "timestamp": iso(minutes),
         "context": {"platform": "web", "app_version": "2.0"}, "privacy": {"consent_given": True}, **kw}
    if session:
        e["session_id"] = session
    return e


def test_app_events_bronze_and_session_stitching(tmp_path):
    root = tmp_path / "data"
    with ReceiverProcess(root, "--requests-per-s", "off", "--events-per-s", "off") as rx:
        store = Store(root / "receiver" / "receiver.sqlite")

        def client(user: str, dev: str) -> httpx.Client:
            return httpx.Client(base_url=rx.url, timeout=30,
                                headers={"Authorization": f"Bearer {store.create_token(user, dev)[0]}"})

        laptop, phone, other = client("u1", "laptop"), client("u1", "phone"), client("u2", "laptop")
        r = laptop.post("/v1/events", json=[
            ev("a1", 0, "app_open", "s-A"), ev("a2", 5, session="s-A"), ev("a3", 10, session="s-A"),
            ev("n1", 60, "app_open"), ev("n2", 70), ev("n3", 80),      # inferred: gaps of 10 min
            ev("n4", 120, "app_open"), ev("n5", 125),                   # 40 min later: a new one
            {"event_id": "bad", "timestamp": "not a time"}])
        assert (r.json()["accepted"], r.json()["rejected"]) == (8, 1)
        # the same session continued on the phone
        assert phone.post("/v1/events", json=[ev("p1", 12, "purchase", "s-A")]).json()["accepted"] == 1
        # the laptop re-sends two events in a new batch (an SDK re-batching after a restart)
        assert laptop.post("/v1/events", json=[ev("a3", 10, session="s-A"), ev("n5", 125)]
                           ).json()["accepted"] == 2
        # u2: EyeCore snapshots every 5 s for a minute
        snaps = [{"session_id": "eye-1", "timestamp": iso(i / 12),
                  "data": {"system_metrics": {"cpu_percent": 10 + i}}} for i in range(12)]
        assert other.post("/v1/events", json=snaps).json()["accepted"] == 12

    paths = Paths(root)
    s = ingest_landing(paths)
    assert s["rows_read"] == s["rows_written"] == 23 and s["rows_quarantined"] == 0
    env = {**os.environ, **NO_TELEMETRY_ENV, "FOCUSLAKE_DATA": str(root)}
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    b = subprocess.run([str(DBT), "build", "--profiles-dir", ".", "--select", "+slv_app_sessions",
                        "--target-path", str(root / "dbt_target"), "--log-path", str(root / "dbt_logs")],
                       cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert b.returncode == 0, b.stdout[-4000:] + b.stderr[-2000:]
    assert "assert_app_sessions_count_each_event_once" in b.stdout and "ERROR=0" in b.stdout

    con = duckdb.connect(str(paths.warehouse), read_only=True)
    bronze = con.execute("""SELECT count(*), count(DISTINCT (user_id, event_id)), count(*) FILTER (WHERE platform = 'web'),
                                   count(*) FILTER (WHERE consent_given), count(*) FILTER (WHERE source = 'eyecore'),
                                   min(ts), count(DISTINCT date)
                            FROM bronze.brz_app_events""").fetchone()
    assert bronze == (23, 21, 11, 11, 12, T9.replace(tzinfo=None), 1)
    rows = con.execute("""SELECT user_id, session_key, session_id, is_inferred, event_count, duration_s,
                                 device_count, device_ids, first_event_name, last_event_name, platform, source,
                                 CAST(date AS VARCHAR)
                          FROM silver.slv_app_sessions ORDER BY user_id, session_start""").fetchall()
    assert rows == [
        ("u1", "s-A", "s-A", False, 4, 720.0, 2, "laptop,phone", "app_open", "purchase", "web", "generic",
         "2026-11-16"),
        ("u1", f"inferred:laptop:{us(60)}", None, True, 3, 1200.0, 1, "laptop", "app_open", "screen_view", "web",
         "generic", "2026-11-16"),
        ("u1", f"inferred:laptop:{us(120)}", None, True, 2, 300.0, 1, "laptop", "app_open", "screen_view", "web",
         "generic", "2026-11-16"),
        ("u2", "eye-1", "eye-1", False, 12, 55.0, 1, "laptop", "eyecore.snapshot", "eyecore.snapshot", None,
         "eyecore", "2026-11-16"),
    ]
