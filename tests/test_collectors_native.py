"""native/build/focus-capture under Xvfb: XRecord events -> binary segments through the C
segment library; key identity only with consent; rotation; SIGTERM/SIGHUP seal; SIGKILL
leaves only a .part; a full disk drops with counts and the process keeps running."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from collector_harness import DEVICE, ROOT, USER
from x11 import xserver  # noqa: F401 - fixture

from collectors.agent.recovery import recover_landing
from focuslake import events as ev
from focuslake.events import EventType as E

pytestmark = pytest.mark.timeout(120)
CAPTURE = ROOT / "native" / "build" / "focus-capture"


@pytest.fixture(scope="module")
def capture_exe() -> Path:
    r = subprocess.run(["make", "-s", "-C", str(ROOT / "native")], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert CAPTURE.is_file(), "focus-capture not built: libx11-dev and libxtst-dev are needed"
    return CAPTURE


class Capture:
    def __init__(self, xs, landing: Path, *extra: str, status_dir: Path | None = None):
        self.status_file = (status_dir or landing.parent) / f"capture-{time.monotonic_ns()}.json"
        self.proc = subprocess.Popen([str(CAPTURE), "--landing", str(landing), "--user", USER, "--device", DEVICE,
                                      "--status-file", str(self.status_file), *extra],
                                     env=xs.env, stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 15
        while time.monotonic() < end and self.status().get("state") != "running":
            assert self.proc.poll() is None, self.proc.stderr.read()
            time.sleep(0.02)
        assert self.status().get("state") == "running"

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def stop(self, sig=signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(15)


def segments(landing: Path, parts: bool = False) -> list[Path]:
    base = landing / "events" / USER / DEVICE
    return sorted(p for p in base.rglob("*") if p.is_file() and p.name.endswith(".part") == parts) \
        if base.exists() else []


def records(landing: Path) -> tuple[list[ev.SegmentHeader], np.ndarray]:
    hs, rs = [], []
    for f in segments(landing):
        h, r = ev.read_segment(f)
        hs.append(h)
        rs.append(r)
    return hs, (np.concatenate(rs) if rs else np.zeros(0, ev.EVENT_DTYPE))


def keycode(xs, name: str) -> int:
    from Xlib import XK, display
    d = display.Display(xs.display)
    try:
        return d.keysym_to_keycode(XK.string_to_keysym(name))
    finally:
        d.close()


@pytest.mark.parametrize("consent", [False, True])
def test_capture_decodes_to_the_injected_events(xserver, capture_exe, tmp_path, consent):  # noqa: F811
    wid = xserver.open_window("focusapp-native", "native capture", 40, 40)
    landing = tmp_path / "landing"
    cap = Capture(xserver, landing, *(["--consent-keys"] if consent else []))
    xserver.xdotool("key", "a", "b", "c")
    pos = [(60, 60), (200, 90), (210, 150)]
    for x, y in pos:
        xserver.xdotool("mousemove", str(x), str(y))
    for b in ("1", "3", "2", "5", "4", "4", "6", "7"):
        xserver.xdotool("click", b)
    assert cap.stop() == 0
    assert not segments(landing, parts=True)
    hs, r = records(landing)
    assert hs and all(h.key_identity_consent == consent for h in hs)
    t = r["event_type"].tolist()
    assert t == [1, 2] * 3 + [3] * 3 + [4] * 3 + [5] * 5
    assert np.all(np.diff(r["timestamp_us"].astype(np.int64)) >= 0)
    assert set(r["app_name"].tolist()) == {b"focusapp-native"} and set(r["window_handle"].tolist()) == {wid}
    assert len(set(r["process_id"].tolist())) == 1 and r["process_id"][0] == xserver.procs[-1].pid
    keys = r[r["event_type"] <= 2]["data"]
    if consent:
        codes = [keycode(xserver, k) for k in "abc"]
        assert keys[:, 0].tolist() == [c for c in codes for _ in (0, 1)]
        assert keys[:, 1].tolist() == [c - 8 for c in codes for _ in (0, 1)]
    else:
        assert not keys.any(), "key identity stored without consent"
    moves = r[r["event_type"] == E.MOUSE_MOVE]["data"]
    assert [tuple(m[:2]) for m in moves.tolist()] == pos
    assert moves[0, 2] == 0 and moves[1, 2] > 0                     # speed: none for the first move
    clicks = r[r["event_type"] == E.MOUSE_CLICK]["data"]
    assert clicks.tolist() == [[*pos[-1], 1], [*pos[-1], 2], [*pos[-1], 3]]
    wheel = r[r["event_type"] == E.MOUSE_WHEEL]["data"][:, :2].view(np.int32).tolist()
    assert wheel == [[0, -1], [0, 1], [0, 1], [-1, 0], [1, 0]]      # down, up, up, left, right
    st = cap.status()
    assert st["state"] == "stopped" and st["events_sealed"] == len(r) == st["events_seen"]
    assert st["events_dropped"] == 0


def test_rotation_sighup_and_sigkill(xserver, capture_exe, tmp_path):  # noqa: F811
    landing = tmp_path / "landing"
    cap = Capture(xserver, landing, "--rotate-bytes", "4096")        # 62 records per segment
    for _ in range(4):
        xserver.xdotool(*[a for i in range(40) for a in ("mousemove", str(100 + i), "300")])
    cap.proc.send_signal(signal.SIGHUP)                               # seal now, keep running
    end = time.monotonic() + 10
    while time.monotonic() < end and cap.status().get("events_sealed", 0) < 160:
        time.sleep(0.05)
    assert cap.proc.poll() is None
    _, r = records(landing)
    assert len(r) == 160 and len(segments(landing)) == 3               # 62 + 62 + 36
    assert max(f.stat().st_size for f in segments(landing)) <= 4096
    n_before = len(segments(landing))
    xserver.xdotool("mousemove", "10", "10", "mousemove", "20", "20")
    time.sleep(0.3)
    assert cap.stop(signal.SIGKILL) == -signal.SIGKILL
    assert len(segments(landing)) == n_before                          # nothing half-written published
    assert len(segments(landing, parts=True)) == 1                     # only the open .part
    rep = recover_landing(landing, USER, DEVICE)
    assert rep.recovered + rep.discarded == 1
    assert all(ev.read_segment(f) for f in segments(landing))

    # time-based rotation: the window's segment is sealed when the window ends, without new events
    landing2 = tmp_path / "landing2"
    cap = Capture(xserver, landing2, "--rotate-seconds", "1")
    xserver.xdotool("mousemove", "30", "30")
    end = time.monotonic() + 5
    while time.monotonic() < end and not segments(landing2):
        time.sleep(0.05)
    assert len(segments(landing2)) == 1 and cap.proc.poll() is None
    xserver.xdotool("mousemove", "40", "40")
    assert cap.stop() == 0
    assert len(segments(landing2)) == 2 and len(records(landing2)[1]) == 2


def test_bad_arguments_and_no_display(capture_exe, tmp_path):
    r = subprocess.run([str(CAPTURE), "--landing", str(tmp_path), "--user", "bad id", "--device", "d"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "must match" in r.stderr
    r = subprocess.run([str(CAPTURE), "--landing", str(tmp_path)], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "usage" in r.stderr
    r = subprocess.run([str(CAPTURE), "--landing", str(tmp_path), "--user", "u", "--device", "d",
                        "--display", ":999"], capture_output=True, text=True, check=False)
    assert r.returncode == 3 and "cannot open display" in r.stderr


def test_full_disk_drops_with_counts_and_recovers(xserver, capture_exe, tmp_path):  # noqa: F811
    mnt = tmp_path / "small"
    mnt.mkdir()
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mnt)], capture_output=True,
                       text=True, check=False)
    if m.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {m.stderr.strip()}")
    try:
        landing = mnt / "landing"
        cap = Capture(xserver, landing, "--rotate-bytes", "4096", status_dir=tmp_path)
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        xserver.xdotool(*[a for i in range(200) for a in ("mousemove", str(100 + i), "200")])
        end = time.monotonic() + 10
        while time.monotonic() < end and not cap.status().get("events_dropped"):
            cap.proc.send_signal(signal.SIGHUP)
            time.sleep(0.1)
        st = cap.status()
        assert st["events_dropped"] > 0 and "No space left" in (st["last_error"] or ""), st
        assert cap.proc.poll() is None                                   # still running
        (mnt / "filler").unlink()
        time.sleep(1.1)                                                  # past the retry backoff
        before = st["events_sealed"]
        xserver.xdotool(*[a for i in range(20) for a in ("mousemove", str(300 + i), "220")])
        assert cap.stop() == 0
        st = cap.status()
        assert st["events_sealed"] >= before + 20
        assert st["events_seen"] == st["events_sealed"] + st["events_dropped"]
        assert not segments(landing, parts=True)
        for f in segments(landing):
            ev.read_segment(f)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
