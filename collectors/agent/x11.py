"""X11 watchers (python-xlib, one connection, one thread): the active window and the screen lock.

Active window: EWMH. The window manager keeps `_NET_ACTIVE_WINDOW` on the root window; we
listen for PropertyNotify on the root (focus changes) and on the active window (title
changes: `_NET_WM_NAME`, `WM_NAME`), so every change is seen when it happens, not at the next
poll. The process is `_NET_WM_PID`, or, for clients that do not set it, the X-Resource
extension's client PID (local clients); its name comes from psutil.

Lock: the MIT-SCREEN-SAVER extension's ScreenSaverNotify (On = locked, Off = unlocked). X11
screen lockers (xss-lock, light-locker, xscreensaver, xsecurelock) activate the X screensaver
when they lock; `xset s activate` / `xdg-screensaver activate` do the same.

Both post `(kind, ts_us, payload)` tuples to a callback; they never write anything.
"""
from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("collectors.agent.x11")

NO_WINDOW_APP = "(none)"


@dataclass(frozen=True)
class WindowInfo:
    wid: int
    app: str
    title: str
    pid: int | None

    @staticmethod
    def none() -> WindowInfo:
        return WindowInfo(0, NO_WINDOW_APP, "", None)


def clean_title(s: str, limit: int = 1024) -> str:
    """One line of text: control characters (newlines, tabs...) become spaces."""
    out = "".join(" " if (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0) else ch for ch in s)
    return out[:limit]


def now_us() -> int:
    return time.time_ns() // 1000


class X11Watcher(threading.Thread):
    def __init__(self, display_name: str | None, post, *, windows: bool = True, lock: bool = True):
        super().__init__(name="x11-watcher", daemon=True)
        self.display_name = display_name or None
        self.post = post
        self.want_windows = windows
        self.want_lock = lock
        self._stop_r, self._stop_w = os.pipe()
        self.error: str | None = None
        self.ready = threading.Event()
        self.ewmh = False
        self.screensaver = False
        self._name_cache: dict[int, tuple[float, str]] = {}

    def stop(self) -> None:
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass

    # -- connection ---------------------------------------------------------------------
    def _connect(self) -> None:
        from Xlib import X, display
        self.d = display.Display(self.display_name)
        self.d.set_error_handler(lambda *a, **k: None)   # vanished windows: not our problem
        self.root = self.d.screen().root
        a = self.d.intern_atom
        self.A_ACTIVE = a("_NET_ACTIVE_WINDOW")
        self.A_NAME = a("_NET_WM_NAME")
        self.A_WMNAME = a("WM_NAME")
        self.A_PID = a("_NET_WM_PID")
        self.A_UTF8 = a("UTF8_STRING")
        self.root.change_attributes(event_mask=X.PropertyChangeMask)
        if self.want_lock and self.d.has_extension("MIT-SCREEN-SAVER"):
            from Xlib.ext import screensaver
            self.root.screensaver_select_input(screensaver.NotifyMask)
            # compare event codes, not classes: python-xlib may load the extension module
            # twice, and then isinstance() fails on its own event objects
            self.ss_event = self.d.query_extension("MIT-SCREEN-SAVER").first_event
            self.screensaver = True
        self.has_res = self.d.has_extension("X-Resource")
        self.d.flush()

    # -- window properties ----------------------------------------------------------------
    def _prop(self, win, atom, typ=None):
        from Xlib import X
        from Xlib.error import XError
        try:
            p = win.get_full_property(atom, typ if typ is not None else X.AnyPropertyType)
        except (XError, AttributeError, ValueError):
            return None
        return p.value if p is not None else None

    def _active_window(self):
        v = self._prop(self.root, self.A_ACTIVE)
        if v is None or len(v) == 0:
            return None
        wid = int(v[0])
        return self.d.create_resource_object("window", wid) if wid else None

    def _title(self, win) -> str:
        v = self._prop(win, self.A_NAME)          # UTF8_STRING normally; some tools set STRING
        if not v:
            v = self._prop(win, self.A_WMNAME)
        if not v:
            return ""
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        return clean_title(str(v))

    def _pid(self, win) -> int | None:
        v = self._prop(win, self.A_PID)
        if v is not None and len(v) and int(v[0]) > 0:
            return int(v[0])
        if self.has_res:   # clients that do not set _NET_WM_PID (xmessage, many Xt/Motif apps)
            from Xlib.error import XError
            from Xlib.ext import res
            try:
                r = self.d.res_query_client_ids([{"client": win.id, "mask": res.LocalClientPIDMask}])
                for cid in r.ids:
                    if cid.spec.mask == res.LocalClientPIDMask and cid.value:
                        return int(cid.value[0])
            except (XError, AttributeError):
                return None
        return None

    def _app(self, win, pid: int | None) -> str:
        if pid:
            name = self._proc_name(pid)
            if name:
                return name
        try:
            cls = win.get_wm_class()
        except Exception:   # noqa: BLE001 - any X error: fall through
            cls = None
        if cls and cls[0]:
            return cls[0]
        return "unknown"

    def _proc_name(self, pid: int) -> str | None:
        import psutil
        try:
            p = psutil.Process(pid)
            key = p.create_time()
            hit = self._name_cache.get(pid)
            if hit and hit[0] == key:
                return hit[1]
            name = p.name()
        except (psutil.Error, OSError):
            return None
        if len(self._name_cache) > 512:
            self._name_cache.clear()
        self._name_cache[pid] = (key, name)
        return name

    def _info(self):
        from Xlib import X
        win = self._active_window()
        if win is None:
            return None, WindowInfo.none()
        with contextlib.suppress(Exception):   # gone already: its title no longer matters
            win.change_attributes(event_mask=X.PropertyChangeMask)   # its title changes
        pid = self._pid(win)
        return win, WindowInfo(win.id, self._app(win, pid), self._title(win), pid)

    # -- loop ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._connect()
        except Exception as e:   # noqa: BLE001 - report any connection failure as status
            self.error = f"cannot open X display {self.display_name or os.environ.get('DISPLAY', '(DISPLAY unset)')}: {e}"
            self.ready.set()
            self.post(("x11_error", now_us(), self.error))
            return
        try:
            self._loop()
        except Exception as e:   # noqa: BLE001
            self.error = f"X connection lost: {type(e).__name__}: {e}"
            log.error("%s", self.error)
            self.post(("x11_error", now_us(), self.error))
        finally:
            with contextlib.suppress(Exception):
                self.d.close()

    def _loop(self) -> None:
        from Xlib import X
        from Xlib.ext import screensaver
        ts = now_us()
        self.ewmh = self._prop(self.root, self.A_ACTIVE) is not None
        win, info = self._info() if self.want_windows else (None, None)
        locked = None
        if self.screensaver:
            locked = self.root.screensaver_query_info().state == screensaver.StateOn
        self.post(("x11_ready", ts, {"window": info, "locked": locked, "ewmh": self.ewmh,
                                     "screensaver": self.screensaver}))
        self.ready.set()
        fd = self.d.fileno()
        while True:
            if not self.d.pending_events():
                r, _, _ = select.select([fd, self._stop_r], [], [])
                if self._stop_r in r:
                    return
            while self.d.pending_events():
                e = self.d.next_event()
                ts = now_us()
                if e.type == X.PropertyNotify and self.want_windows:
                    if e.window.id == self.root.id and e.atom == self.A_ACTIVE:
                        win, new = self._info()
                        self.ewmh = True
                        if new != info:
                            self.post(("window", ts, new))
                            info = new
                    elif win is not None and e.window.id == win.id and e.atom in (self.A_NAME, self.A_WMNAME):
                        title = self._title(win)
                        if info is not None and title != info.title:
                            info = WindowInfo(info.wid, info.app, title, info.pid)
                            self.post(("window", ts, info))
                elif self.screensaver and e.type == self.ss_event:
                    on = e.state in (screensaver.StateOn, screensaver.StateCycle)
                    if on != locked:
                        locked = on
                        self.post(("lock" if on else "unlock", ts, "x11-screensaver"))
