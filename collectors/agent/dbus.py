"""Lock and suspend from D-Bus (jeepney, pure Python; one thread per bus).

Desktops that do not use the X screensaver for locking announce it on D-Bus:
  * session bus: `ActiveChanged(b)` of org.freedesktop.ScreenSaver (KDE, Xfce, LXQt...),
    org.gnome.ScreenSaver (GNOME), org.cinnamon.ScreenSaver, org.mate.ScreenSaver;
  * system bus (systemd-logind): `PropertiesChanged` of this session's `LockedHint`
    (set by every logind-aware locker), and `PrepareForSleep(b)` of the login1 Manager
    (true just before suspend/hibernate, false after resume).
Buses that are not there (no session bus in a plain X session, no logind in a container)
are simply not used; `status` lists the sources that are live.

Posts ("lock"|"unlock"|"suspend"|"resume", ts_us, source) to the collector's queue.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger("collectors.agent.dbus")

SCREENSAVER_INTERFACES = ("org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver",
                          "org.cinnamon.ScreenSaver", "org.mate.ScreenSaver")
LOGIN1_MANAGER = "org.freedesktop.login1.Manager"
LOGIN1_SESSION = "org.freedesktop.login1.Session"


def now_us() -> int:
    return time.time_ns() // 1000


def bus_path_encode(prefix: str, name: str) -> str:
    """sd_bus_path_encode: every character but [A-Za-z0-9] (and a leading digit) as _XX."""
    out = []
    for i, ch in enumerate(name):
        if ch.isascii() and (ch.isalpha() or (ch.isdigit() and i > 0)):
            out.append(ch)
        else:
            out.extend(f"_{b:02x}" for b in ch.encode())
    return f"{prefix}/{''.join(out) or '_'}"


class BusWatcher(threading.Thread):
    def __init__(self, bus: str, post, *, session_id: str | None = None):
        super().__init__(name=f"dbus-{bus.lower()}", daemon=True)
        self.bus = bus
        self.post = post
        self.session_path = (bus_path_encode("/org/freedesktop/login1/session", session_id)
                             if session_id else None)
        self.conn = None
        self.error: str | None = None
        self.ready = threading.Event()
        self.sources: list[str] = []

    def _rules(self):
        from jeepney import MatchRule
        if self.bus == "SESSION":
            for iface in SCREENSAVER_INTERFACES:
                yield MatchRule(type="signal", interface=iface, member="ActiveChanged")
        else:
            yield MatchRule(type="signal", interface=LOGIN1_MANAGER, member="PrepareForSleep",
                            path="/org/freedesktop/login1")
            rule = MatchRule(type="signal", interface="org.freedesktop.DBus.Properties",
                             member="PropertiesChanged",
                             **({"path": self.session_path} if self.session_path else
                                {"path_namespace": "/org/freedesktop/login1/session"}))
            rule.add_arg_condition(0, LOGIN1_SESSION)
            yield rule

    def run(self) -> None:
        try:
            from jeepney.bus_messages import message_bus
            from jeepney.io.blocking import Proxy, open_dbus_connection
            self.conn = open_dbus_connection(bus=self.bus)
            proxy = Proxy(message_bus, self.conn, timeout=5)
            for rule in self._rules():
                proxy.AddMatch(rule)
        except Exception as e:   # noqa: BLE001 - no such bus here: not an error, just absent
            self.error = f"{self.bus.lower()} bus unavailable: {type(e).__name__}: {e}"
            self.ready.set()
            return
        self.sources = (["dbus-screensaver"] if self.bus == "SESSION"
                        else ["logind-locked-hint", "logind-prepare-for-sleep"])
        self.ready.set()
        try:
            while True:
                msg = self.conn.receive()
                self._handle(msg)
        except Exception as e:   # noqa: BLE001 - closed by stop(), or the bus went away
            if self.conn is not None:
                self.error = f"{self.bus.lower()} bus closed: {type(e).__name__}"

    def _handle(self, msg) -> None:
        from jeepney import HeaderFields
        ts = now_us()
        f = msg.header.fields
        iface, member = f.get(HeaderFields.interface), f.get(HeaderFields.member)
        body = msg.body
        if member == "ActiveChanged" and iface in SCREENSAVER_INTERFACES and body:
            self.post(("lock" if body[0] else "unlock", ts, f"dbus:{iface}"))
        elif member == "PrepareForSleep" and iface == LOGIN1_MANAGER and body:
            self.post(("suspend" if body[0] else "resume", ts, "logind"))
        elif member == "PropertiesChanged" and body and body[0] == LOGIN1_SESSION:
            changed = body[1] if len(body) > 1 else {}
            if "LockedHint" in changed:
                _sig, value = changed["LockedHint"]
                self.post(("lock" if value else "unlock", ts, "logind"))

    def stop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)   # wakes the thread blocked in recv()
                conn.close()
            except OSError as e:
                log.debug("closing the %s bus: %s", self.bus, e)


def start_watchers(post, session_bus: bool = True, system_bus: bool = True) -> list[BusWatcher]:
    out = []
    if session_bus and os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        out.append(BusWatcher("SESSION", post))
    if system_bus:
        out.append(BusWatcher("SYSTEM", post, session_id=os.environ.get("XDG_SESSION_ID")))
    for w in out:
        w.start()
    for w in out:
        w.ready.wait(3)
    return out
