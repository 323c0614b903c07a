"""A real X server for collector tests: Xvfb on a free display (chosen by Xvfb itself through
-displayfd), the JWM window manager (EWMH: it maintains _NET_ACTIVE_WINDOW and honours
`xdotool windowactivate`), helper windows, and xdotool. Everything is stopped afterwards.

Fails (does not skip) when Xvfb, jwm or xdotool is missing: `make sysdeps` installs them.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

JWMRC = """<?xml version="1.0"?>
<JWM>
  <FocusModel>click</FocusModel>
  <Desktops width="1" height="1"/>
</JWM>
"""

# A tiny X client with a known title, WM_CLASS and _NET_WM_PID, whose process name (comm) is
# `argv[1]`: the collector must report that name as the app.
WINDOW_PROGRAM = textwrap.dedent("""
    import ctypes, os, sys, time
    ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)   # PR_SET_NAME
    from Xlib import X, Xatom, display
    d = display.Display()
    s = d.screen()
    w = s.root.create_window(int(sys.argv[3]), int(sys.argv[4]), 300, 200, 1, s.root_depth,
                             background_pixel=s.white_pixel,
                             event_mask=X.StructureNotifyMask | X.PropertyChangeMask)
    w.set_wm_name(sys.argv[2].encode("latin-1", "replace").decode("latin-1"))
    w.change_property(d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"), 8,
                      sys.argv[2].encode())
    w.change_property(d.intern_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [os.getpid()])
    w.set_wm_class(sys.argv[1], sys.argv[1].capitalize())
    w.map()
    d.sync()
    print(w.id, flush=True)
    while True:
        d.next_event()
""")


@dataclass
class XServer:
    display: str
    tmp: Path
    procs: list = field(default_factory=list)

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env.pop("XAUTHORITY", None)
        return env

    def xdotool(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=30, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(args)} failed: {r.stderr}")
        return r.stdout.strip()

    def open_window(self, app: str, title: str, x: int = 20, y: int = 20) -> int:
        """A window owned by a process named `app`, with `title`; returns its X id (focused)."""
        p = subprocess.Popen([sys.executable, "-c", WINDOW_PROGRAM, app, title, str(x), str(y)],
                             env=self.env, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        wid = int(p.stdout.readline())
        self.wait_active(wid)
        return wid

    def open_xmessage(self, title: str) -> int:
        """xmessage sets no _NET_WM_PID: its pid comes from the X-Resource extension."""
        p = subprocess.Popen(["xmessage", "-title", title, "-geometry", "+400+20", "hello"], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            out = self.xdotool("search", "--name", f"^{title}$", check=False)
            if out:
                wid = int(out.split()[0])
                self.wait_active(wid)
                return wid
            time.sleep(0.05)
        raise AssertionError(f"xmessage window {title!r} did not appear")

    def active_window(self) -> int:
        return int(self.xdotool("getactivewindow", check=False) or 0)

    def wait_active(self, wid: int, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.active_window() == wid:
                return
            self.xdotool("windowactivate", str(wid), check=False)
            time.sleep(0.05)
        raise AssertionError(f"window {wid} never became active")

    def screensaver(self, on: bool) -> None:
        """What `xset s activate` / `xset s reset` send: the X ForceScreenSaver request."""
        from Xlib import X, display
        d = display.Display(self.display)
        d.force_screen_saver(X.ScreenSaverActive if on else X.ScreenSaverReset)
        d.sync()
        d.close()

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def start_xserver(tmp: Path) -> XServer:
    missing = [t for t in ("Xvfb", "jwm", "xdotool", "xmessage") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {missing}: run `make sysdeps` (APT_PACKAGES: xvfb jwm xdotool x11-utils)",
                    pytrace=False)
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp",
                             "-noreset"], pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    buf = b""
    end = time.monotonic() + 20
    while not buf.endswith(b"\n") and time.monotonic() < end:
        chunk = os.read(r, 16)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    if not buf.strip():
        xvfb.kill()
        pytest.fail("Xvfb did not report a display number", pytrace=False)
    xs = XServer(f":{buf.strip().decode()}", tmp, [xvfb])
    rc = tmp / "jwmrc"
    rc.write_text(JWMRC)
    xs.procs.append(subprocess.Popen(["jwm", "-f", str(rc)], env=xs.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL))
    end = time.monotonic() + 15
    while time.monotonic() < end:   # the WM is up when it advertises itself on the root window
        r = subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=xs.env, capture_output=True,
                           text=True, check=False)
        if "window id" in r.stdout:
            break
        time.sleep(0.05)
    else:
        xs.stop()
        pytest.fail("jwm did not start on Xvfb", pytrace=False)
    return xs


@pytest.fixture(scope="module")
def xserver(tmp_path_factory):
    xs = start_xserver(tmp_path_factory.mktemp("x11"))
    try:
        yield xs
    finally:
        xs.stop()
