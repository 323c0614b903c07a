"""The landing watcher (focuslake.landing_watch): the trigger that starts focus_ingest when
sealed segments land. Real files, a real asyncio loop; the live triggerer runs it in
tests/test_airflow_server.py and `python -m focuslake.bench_airflow`."""
from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time

import pytest

from focuslake.landing_watch import LandingTrigger, newly_sealed, read_watermark, write_watermark


def _seg(landing, name="events-20261101T100000Z-000001.bin", day="2026-11-01", data=b"x"):
    d = landing / "events" / "u01" / "d01" / day
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_bytes(data)
    return p


def test_counts_sealed_segments_newer_than_the_watermark(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    assert newly_sealed(landing, 0) == (0, 0)
    _seg(landing, "events-20261101T100000Z-000001.bin.part")  # being written
    _seg(landing, ".hidden")
    assert newly_sealed(landing, 0)[0] == 0
    a = _seg(landing)
    n, newest = newly_sealed(landing, 0)
    assert n == 1 and newest == a.stat().st_ctime_ns
    assert newly_sealed(landing, newest) == (0, newest)  # reported: nothing new after it
    time.sleep(0.01)
    b = _seg(landing, "events-20261101T110000Z-000002.bin")
    assert newly_sealed(landing, newest) == (1, b.stat().st_ctime_ns)


def test_a_segment_moved_in_with_an_old_mtime_is_seen(tmp_path):
    """`mv` (and a collector's rename of .part) keeps the file's mtime; its ctime changes."""
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    landing.mkdir()
    old = _seg(outside)
    os.utime(old, (1_000_000_000, 1_000_000_000))  # 2001
    mark = time.time_ns()
    time.sleep(0.01)
    dst = landing / old.relative_to(outside)
    dst.parent.mkdir(parents=True)
    shutil.move(old, dst)
    assert dst.stat().st_mtime_ns < mark
    assert newly_sealed(landing, mark)[0] == 1


def test_the_watermark_survives_a_restart_and_a_corrupt_file(tmp_path):
    assert read_watermark(tmp_path) == 0
    write_watermark(tmp_path, 123)
    assert read_watermark(tmp_path) == 123
    (tmp_path / ".landing_watch").write_text("{not json")
    assert read_watermark(tmp_path) == 0  # then it reports what is there: ingest's ledger dedups


def _first_event(trigger, timeout):
    async def go():
        agen = trigger.run()
        try:
            return await asyncio.wait_for(agen.__anext__(), timeout)
        finally:
            await agen.aclose()
    return asyncio.run(go())


def test_the_trigger_fires_once_per_new_landing(tmp_path, monkeypatch):
    monkeypatch.setenv("FOCUSLAKE_DATA", str(tmp_path))
    landing = tmp_path / "landing"
    landing.mkdir()
    trigger = LandingTrigger(poke_interval=0.05)
    assert trigger.serialize() == ("focuslake.landing_watch.LandingTrigger", {"poke_interval": 0.05})
    with pytest.raises(TimeoutError):  # nothing landed: no event
        _first_event(trigger, 0.5)
    timer = threading.Timer(0.3, lambda: _seg(landing))
    t0 = time.monotonic()
    timer.start()
    event = _first_event(LandingTrigger(poke_interval=0.05), 10)
    assert event.payload["segments"] == 1 and time.monotonic() - t0 < 5
    assert read_watermark(tmp_path) == event.payload["ctime_ns"]
    # the triggerer restarts the trigger after an event: the same segment does not fire again
    with pytest.raises(TimeoutError):
        _first_event(LandingTrigger(poke_interval=0.05), 0.5)
    _seg(landing, "events-20261101T110000Z-000002.bin")
    assert _first_event(LandingTrigger(poke_interval=0.05), 10).payload["segments"] == 1
