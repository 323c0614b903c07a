"""The real collector under a real X server (Xvfb + JWM), driven by xdotool.

What a user would check: what was typed/clicked/scrolled/moved is counted exactly (and never
which key), window changes land with app and title at the moment they happen, idle and AFK
are detected, screen lock and network changes are recorded, the native capture's segments
decode to the injected events, and everything the collector landed is accepted by the ingest.
"""
from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from collector_harness import (
    DEVICE,
    ROOT,
    USER,
    all_records,
    csv_rows,
    event_segments,
    files,
    start_collector,
    write_config,
)
from x11 import xserver  # noqa: F401 - fixture

from focuslake.config import Paths
from focuslake.events import EventType as E
from focuslake.ingest import ingest_landing

pytestmark = pytest.mark.timeout(180)

ROUTE_UP = ("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
            "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
            "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n")
ROUTE_DOWN = ROUTE_UP.splitlines(keepends=True)[0] + ROUTE_UP.splitlines(keepends=True)[2]
TYPED = "qzjxvkwqzj"     # lowercase only: one key press per character, no shift


def now_us() -> int:
    return time.time_ns() // 1000


def scan_for(root: Path, needle: bytes) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            hits.append(str(p))
    return hits


@pytest.fixture(scope="module")
def native_built() -> Path:
    r = subprocess.run(["make", "-s", "-C", str(ROOT / "native")], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    exe = ROOT / "native" / "build" / "focus-capture"
    assert exe.is_file(), "make -C native did not build focus-capture (libx11-dev libxtst-dev missing?)"
    return exe


def test_collector_lands_exactly_what_was_injected(xserver, native_built, tmp_path):  # noqa: F811
    landing, state = tmp_path / "landing", tmp_path / "state"
    route = tmp_path / "route"
    route.write_text(ROUTE_UP)
    cfg = write_config(tmp_path / "collector.toml", landing, state, rotate_seconds=2, flush_seconds=0.2,
                       idle={"idle_seconds": 1.0, "afk_seconds": 2.5},
                       network={"interval_seconds": 1, "route_files": [str(route)]},
                       native={"rotate_seconds": 2})
    alpha = xserver.open_window("focusapp-alpha", "Alpha – draft.txt", 20, 20)
    run = start_collector(cfg, state, xserver.env, wait_native=True)
    try:
        # -- input in the alpha window ---------------------------------------------------
        xserver.xdotool("type", "--delay", "15", TYPED)
        positions = [(400, 400), (520, 460), (700, 300), (120, 130)]   # the last one inside alpha
        for x, y in positions:
            xserver.xdotool("mousemove", str(x), str(y))
        for button in ("1", "3", "2", "4", "4", "5"):   # left, right, middle, wheel up x2, down
            xserver.xdotool("click", button)
        # -- window changes ----------------------------------------------------------------
        t_beta0 = now_us()
        beta = xserver.open_xmessage("Beta notes")
        t_beta1 = now_us()
        time.sleep(0.3)
        t_title0 = now_us()
        xserver.xdotool("set_window", "--name", "Beta notes (edited)", str(beta))
        time.sleep(0.3)
        t_title1 = now_us()
        xserver.wait_active(alpha)
        # -- idle, then AFK, then back --------------------------------------------------------
        st = run.wait_status(lambda s: s["activity"]["state"] == "afk", 15, "AFK")
        assert st["activity"]["afk_periods"] == 1 and st["activity"]["idle_periods"] == 1
        assert st["activity"]["afk_since"] == st["activity"]["last_input"]   # dated back
        xserver.xdotool("key", "q")
        run.wait_status(lambda s: s["activity"]["wakes"] == 1, 10, "back from AFK")
        # -- lock / unlock (X screensaver), network down / up ---------------------------------
        xserver.screensaver(True)
        run.wait_status(lambda s: s["lock"]["locked"], 10, "locked")
        xserver.screensaver(False)
        run.wait_status(lambda s: not s["lock"]["locked"] and s["lock"]["locks"] == 1, 10, "unlocked")
        route.write_text(ROUTE_DOWN)
        run.wait_status(lambda s: s["network"]["online"] is False, 10, "network down")
        route.write_text(ROUTE_UP)
        run.wait_status(lambda s: s["network"]["online"] is True, 10, "network up")
        # -- the status command while running -------------------------------------------------
        r = subprocess.run([sys.executable, "-m", "collectors.agent", "status", "--config", str(cfg)],
                           cwd=ROOT, capture_output=True, text=True, env=xserver.env, check=False)
        assert r.returncode == 0, r.stderr
        assert "running (pid" in r.stdout and "keystroke_dynamics=False" in r.stdout
        assert "native capture  running" in r.stdout
    finally:
        rc = run.stop()
    assert rc == 0, run.log.read_text()[-3000:]
    keys = len(TYPED) + 1

    # -- nothing half-written, every segment accepted ---------------------------------------
    for stream in ("system_metrics", "active_window", "input_counts", "system_events", "events"):
        assert files(landing, stream), f"no {stream} segment landed"
        assert not files(landing, stream, parts=True), f"{stream}: .part left after a clean stop"

    # -- input counts (pynput) == what xdotool injected ----------------------------------------
    ic = csv_rows(landing, "input_counts")
    sums = {k: sum(int(r[k]) for r in ic) for k in ("key_presses", "clicks", "wheel", "mouse_moves")}
    assert sums == {"key_presses": keys, "clicks": 3, "wheel": 3, "mouse_moves": len(positions)}
    want_dist = sum(math.dist(a, b) for a, b in itertools.pairwise(positions))
    assert sum(float(r["mouse_distance_px"]) for r in ic) == pytest.approx(want_dist, abs=0.01)
    assert all(int(r["ts_us"]) % 5_000_000 == 0 and r["bucket_s"] == "5" for r in ic)

    # -- native capture: the injected events, in order ------------------------------------------
    nat = all_records(landing, native=True)
    t = nat["event_type"]
    assert (t == E.KEY_PRESS).sum() == keys and (t == E.KEY_RELEASE).sum() == keys
    moves = nat[t == E.MOUSE_MOVE]
    assert [(int(d[0]), int(d[1])) for d in moves["data"]] == positions
    clicks = nat[t == E.MOUSE_CLICK]
    assert clicks["data"][:, 2].tolist() == [1, 2, 3]                      # left, right, middle
    assert [tuple(c[:2]) for c in clicks["data"].astype(np.int64).tolist()] == [positions[-1]] * 3
    wheel = nat[t == E.MOUSE_WHEEL]["data"][:, 1].view(np.int32).tolist()
    assert wheel == [1, 1, -1]
    typed = nat[(t == E.KEY_PRESS)][:len(TYPED)]
    assert set(typed["app_name"].tolist()) == {b"focusapp-alpha"}
    assert len(set(typed["process_id"].tolist())) == 1 and typed["process_id"][0] > 0
    assert typed["window_handle"][0] == alpha

    # -- windows: change at the moment, with app and title; heartbeats on the grid ----------------
    aw = csv_rows(landing, "active_window")
    changes = [(r["app_name"], r["window_title"]) for r in aw if r["reason"] == "change"]
    assert changes[:4] == [("focusapp-alpha", "Alpha – draft.txt"), ("xmessage", "Beta notes"),
                           ("xmessage", "Beta notes (edited)"), ("focusapp-alpha", "Alpha – draft.txt")]
    ch = [r for r in aw if r["reason"] == "change"]
    # recorded when the change happened (PropertyNotify), not on the next 5 s heartbeat; the
    # slack only covers the collector's X thread being scheduled late on a busy machine
    assert t_beta0 <= int(ch[1]["ts_us"]) <= t_beta1 + 500_000
    assert t_title0 <= int(ch[2]["ts_us"]) <= t_title1 + 500_000
    assert int(ch[1]["pid"]) == xserver.procs[-1].pid            # xmessage: pid via X-Resource
    hb = [r for r in aw if r["reason"] == "heartbeat"]
    first, last = int(aw[0]["ts_us"]), int(aw[-1]["ts_us"])
    assert aw[0]["reason"] == "change" and aw[-1]["reason"] == "close"     # start ... stop
    lk = [int(r["ts_us"]) for r in csv_rows(landing, "system_events") if r["event"] in ("lock", "unlock")]
    grid = [g for g in range(first - first % 5_000_000 + 5_000_000, last, 5_000_000)
            if not lk[0] <= g <= lk[1]]
    assert [int(r["ts_us"]) for r in hb] == grid, (  # every 5 s on the grid while unlocked
        [(r["ts_us"], r["reason"], r["app_name"]) for r in aw], lk)
    assert [int(r["ts_us"]) for r in aw] == sorted(int(r["ts_us"]) for r in aw)

    # -- lock: close sample at the lock, change at the unlock; system events -----------------------
    se = csv_rows(landing, "system_events")
    ev_names = [r["event"] for r in se]
    assert ev_names[0] == "collector_start" and ev_names[-1] == "collector_stop"
    for e in ("lock", "unlock", "network_down"):
        assert ev_names.count(e) == 1, ev_names
    assert ev_names.count("network_up") == 2                      # initial state, then back up
    lock_ts = next(int(r["ts_us"]) for r in se if r["event"] == "lock")
    unlock_ts = next(int(r["ts_us"]) for r in se if r["event"] == "unlock")
    closes = [int(r["ts_us"]) for r in aw if r["reason"] == "close"]
    assert lock_ts in closes
    assert any(int(r["ts_us"]) == unlock_ts and r["reason"] == "change" for r in aw)
    assert not any(lock_ts < int(r["ts_us"]) < unlock_ts for r in aw)   # no heartbeat while locked

    # -- idle and AFK in the events stream ---------------------------------------------------------
    py = all_records(landing, native=False)
    pt = py["event_type"]
    assert (pt == E.WINDOW_FOCUS_CHANGE).sum() == 2 and (pt == E.WINDOW_TITLE_CHANGE).sum() == 1
    assert (pt == E.SCREEN_LOCK).sum() == 1 and (pt == E.SCREEN_UNLOCK).sum() == 1
    starts, ends = py[pt == E.IDLE_START], py[pt == E.IDLE_END]
    assert len(starts) == 2 and len(ends) == 1          # idle after the burst, and after the key
    inputs = np.sort(nat["timestamp_us"][np.isin(t, [1, 2, 3, 4, 5])].astype(np.int64))
    last_before = inputs[inputs < int(starts["timestamp_us"][0])][-1]
    assert abs(int(starts["timestamp_us"][0]) - 1_000_000 - last_before) < 250_000   # pynput vs XRecord clock
    assert int(starts["data"][0][0]) == 1000
    assert int(ends["data"][0][0]) >= 2500                           # idle for longer than afk_seconds
    wake = inputs[inputs > int(starts["timestamp_us"][0])][0]
    assert abs(int(ends["timestamp_us"][0]) - wake) < 250_000

    # -- privacy: no key identity anywhere ------------------------------------------------------
    for _, h, recs in event_segments(landing):
        assert not h.key_identity_consent
        k = np.isin(recs["event_type"], [E.KEY_PRESS, E.KEY_RELEASE])
        assert not recs["data"][k].any(), "key codes/flags stored without consent"
    assert not scan_for(tmp_path, TYPED.encode()), "typed text found in an output file"
    assert not scan_for(tmp_path, TYPED[:4].encode())

    # -- the ingest accepts every landed segment ---------------------------------------------------
    n_files = sum(len(files(landing, s)) for s in ("system_metrics", "active_window", "input_counts",
                                                     "system_events", "events"))
    summary = ingest_landing(Paths(tmp_path))
    assert summary["segments_quarantined"] == 0 and summary["rows_quarantined"] == 0, summary
    assert summary["segments_ingested"] == n_files
    import duckdb
    con = duckdb.connect()
    lake = tmp_path / "lake"
    n_keys, codes = con.execute(
        f"select count(*), coalesce(sum(data_0 + data_1 + data_2), 0) from read_parquet('{lake}/events/**/*.parquet',"
        f" hive_partitioning=true) where event_type = 1 and user_id = '{USER}' and device_id = '{DEVICE}'").fetchone()
    assert (n_keys, codes) == (keys, 0)

    st = json.loads((state / "status.json").read_text())
    assert st["state"] == "stopped" and st["landing_ok"] and st["rows_dropped"] == 0
    assert st["input"]["records_from"] == "native"
    assert st["native"]["capture"]["events_dropped"] == 0


def test_without_native_capture_pynput_writes_the_input_records(xserver, tmp_path):  # noqa: F811
    """native.enabled = false (or focus-capture not built): the collector's own listener writes
    the binary input records, still without key identity."""
    landing, state = tmp_path / "landing", tmp_path / "state"
    cfg = write_config(tmp_path / "collector.toml", landing, state, rotate_seconds=2, flush_seconds=0.2,
                       native={"enabled": False}, network={"enabled": False},
                       idle={"idle_seconds": 30, "afk_seconds": 60})
    xserver.open_window("focusapp-gamma", "Gamma", 20, 20)
    run = start_collector(cfg, state, xserver.env)
    try:
        assert run.status()["input"]["records_from"] == "pynput"
        xserver.xdotool("type", "--delay", "15", "qzjx")
        for x, y in ((500, 500), (90, 90)):
            xserver.xdotool("mousemove", str(x), str(y))
        for b in ("1", "3", "4", "5"):
            xserver.xdotool("click", b)
        run.wait_status(lambda s: s["input"]["totals"]["clicks"] == 2 and s["input"]["totals"]["wheel"] == 2,
                        10, "input counted")
    finally:
        assert run.stop() == 0
    recs = all_records(landing)
    t = recs["event_type"]
    assert (t == E.KEY_PRESS).sum() == 4 and (t == E.KEY_RELEASE).sum() == 4
    assert not recs["data"][np.isin(t, [E.KEY_PRESS, E.KEY_RELEASE])].any()
    assert [tuple(d[:2]) for d in recs[t == E.MOUSE_MOVE]["data"].tolist()] == [(500, 500), (90, 90)]
    assert recs[t == E.MOUSE_CLICK]["data"][:, 2].tolist() == [1, 2]
    assert recs[t == E.MOUSE_WHEEL]["data"][:, 1].view(np.int32).tolist() == [1, -1]
    assert set(recs[t == E.KEY_PRESS]["app_name"].tolist()) == {b"focusapp-gamma"}
    assert not scan_for(tmp_path, b"qzjx")
    assert ingest_landing(Paths(tmp_path))["segments_quarantined"] == 0
