"""kill -9 the collector (and its native capture) again and again while it writes: no landed
segment is ever corrupt, the ingest accepts every one, and each start recovers or discards
the `.part` files it finds, with a count. Then: the landing disk full / unwritable."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from collector_harness import (
    ROOT,
    all_records,
    csv_rows,
    event_segments,
    files,
    start_collector,
    write_config,
)
from x11 import xserver  # noqa: F401 - fixture

from collectors.agent.native import _is_capture
from focuslake.config import Paths
from focuslake.ingest import ingest_landing
from focuslake.schemas import CSV_STREAMS

pytestmark = pytest.mark.timeout(240)
STREAMS = (*CSV_STREAMS, "events")


def _parts(landing: Path) -> list[Path]:
    return [p for s in STREAMS for p in files(landing, s, parts=True)]


def _wait_gone(pidfile: Path, timeout: float = 5) -> None:
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end and _is_capture(pid):   # (a zombie has sealed and exited)
        time.sleep(0.02)


class Typist(threading.Thread):
    """Keeps input flowing (moves, clicks, keys) so every kill lands during writes."""

    def __init__(self, xs):
        super().__init__(daemon=True)
        self.xs, self.stop_ev = xs, threading.Event()

    def run(self):
        rnd = random.Random(7)
        while not self.stop_ev.is_set():
            args = []
            for _ in range(5):
                args += ["mousemove", str(rnd.randrange(300, 1200)), str(rnd.randrange(300, 780))]
            self.xs.xdotool(*args, "click", "4", "type", "--delay", "5", "asdf", check=False)


@pytest.mark.slow
def test_kill9_during_writes_never_corrupts_and_recovers(xserver, tmp_path):  # noqa: F811
    subprocess.run(["make", "-s", "-C", str(ROOT / "native")], check=True)
    landing, state = tmp_path / "landing", tmp_path / "state"
    cfg = write_config(tmp_path / "c.toml", landing, state, rotate_seconds=1, flush_seconds=0.1,
                       system={"interval_seconds": 1, "top_process": False},
                       window={"heartbeat_seconds": 1}, input={"bucket_seconds": 1},
                       idle={"idle_seconds": 0.5, "afk_seconds": 1.0},
                       network={"interval_seconds": 1}, native={"rotate_seconds": 1})
    xserver.open_window("focusapp-crash", "crash test")
    typist = Typist(xserver)
    typist.start()
    rnd = random.Random(11)
    seen_parts = recovered = discarded = native_parts = 0
    cycles = 22
    try:
        for i in range(cycles):
            _wait_gone(state / "native.pid")          # a capture orphaned by the kill seals first
            parts = _parts(landing)
            native_parts += sum(1 for p in parts if p.name.split("-")[-1].startswith("n"))
            run = start_collector(cfg, state, xserver.env, wait_native=True)
            rec = run.status()["recovery"]
            assert rec["recovered"] + rec["discarded"] == len(parts), (i, rec, parts)
            seen_parts += len(parts)
            recovered += rec["recovered"]
            discarded += rec["discarded"]
            time.sleep(rnd.uniform(0.15, 0.7))
            if i % 3 == 1:                            # the capture itself dies by SIGKILL too
                os.kill(int((state / "native.pid").read_text()), signal.SIGKILL)
                time.sleep(rnd.uniform(0.0, 0.2))
            run.kill9()
        _wait_gone(state / "native.pid")
        final_parts = len(_parts(landing))
        run = start_collector(cfg, state, xserver.env, wait_native=True)
        rec = run.status()["recovery"]
        assert rec["recovered"] + rec["discarded"] == final_parts
        recovered += rec["recovered"]
        discarded += rec["discarded"]
        time.sleep(1.0)
    finally:
        typist.stop_ev.set()
        typist.join(30)
    assert run.stop() == 0
    print(f"{cycles} kill -9 cycles: {seen_parts + final_parts} .part files found at start, "
          f"{recovered} recovered, {discarded} discarded, {native_parts} from the native capture")
    assert seen_parts + final_parts >= cycles // 2, "the kills never hit an open segment"
    assert recovered > 0
    assert native_parts > 0, "no native .part was left by kill -9 of the capture"
    assert not _parts(landing), "a .part file survived the final clean stop"

    # every landed segment is whole: binary ones decode, CSV ones have their header
    segs = event_segments(landing)
    assert segs and all(len(r) > 0 for _, _, r in segs)
    for s in CSV_STREAMS:
        for f in files(landing, s):
            assert f.read_text().split("\n", 1)[0] == ",".join(CSV_STREAMS[s].names), f
    n_files = sum(len(files(landing, s)) for s in STREAMS)
    summary = ingest_landing(Paths(tmp_path))
    assert summary["segments_quarantined"] == 0 and summary["rows_quarantined"] == 0, summary
    assert summary["segments_ingested"] == n_files
    assert len(all_records(landing, native=True)) > 100
    assert csv_rows(landing, "input_counts")


# ------------------------------------------------------------------------- backpressure
def _no_x_config(tmp_path: Path, landing: Path, state: Path, **kw) -> Path:
    return write_config(tmp_path / "c.toml", landing, state, rotate_seconds=1, flush_seconds=0.1,
                        system={"interval_seconds": 1, "top_process": False},
                        window={"enabled": False}, input={"enabled": False}, idle={"enabled": False},
                        lock={"enabled": False}, native={"enabled": False},
                        backpressure={"max_pending_rows": 3, "retry_seconds": 0.5}, **kw)


def test_unwritable_landing_keeps_running_counts_drops_and_resumes(tmp_path):
    landing, state = tmp_path / "landing", tmp_path / "state"
    cfg = _no_x_config(tmp_path, landing, state)
    landing.parent.mkdir(parents=True, exist_ok=True)
    landing.write_text("not a directory")             # unwritable: every mkdir/open fails
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    run = start_collector(cfg, state, env)
    try:
        st = run.wait_status(lambda s: s["rows_dropped"] > 0 and not s["landing_ok"], 20, "drops")
        err = st["streams"]["system_metrics"]["error"]
        assert err and ("NotADirectory" in err or "FileExists" in err), err
        assert st["streams"]["system_metrics"]["rows_pending"] == 3          # bounded in memory
        r = subprocess.run([sys.executable, "-m", "collectors.agent", "status", "--config", str(cfg)],
                           cwd=ROOT, capture_output=True, text=True, check=False)
        assert r.returncode == 0 and "landing: ERROR" in r.stdout and "dropped" in r.stdout
        assert run.proc.poll() is None
        landing.unlink()                              # the disk is back
        st = run.wait_status(lambda s: s["landing_ok"] and s["streams"]["system_metrics"]["rows_written"] >= 3,
                             20, "recovery")
        dropped = st["rows_dropped"]
    finally:
        assert run.stop() == 0
    rows = csv_rows(landing, "system_metrics")
    assert len(rows) >= 3
    final = json.loads((state / "status.json").read_text())
    assert final["rows_dropped"] == dropped                                   # none after recovery
    assert ingest_landing(Paths(tmp_path))["segments_quarantined"] == 0


def test_full_disk_enospc(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        landing, state = mnt / "landing", tmp_path / "state"
        cfg = _no_x_config(tmp_path, landing, state)
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill the disk to the last block
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        run = start_collector(cfg, state, {k: v for k, v in os.environ.items() if k != "DISPLAY"})
        try:
            st = run.wait_status(lambda s: s["rows_dropped"] > 0, 20, "drops on a full disk")
            errors = " ".join(v for v in st["landing_errors"].values() if v)
            assert "No space left" in errors, st["landing_errors"]
            assert run.proc.poll() is None
            filler.unlink()
            run.wait_status(lambda s: s["landing_ok"] and s["streams"]["system_metrics"]["rows_written"] >= 2,
                            20, "writes resume")
        finally:
            assert run.stop() == 0
        assert not _parts(landing)
        dst = tmp_path / "copy"
        shutil.copytree(landing, dst / "landing")
        assert ingest_landing(Paths(dst))["segments_quarantined"] == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
