"""The collector service: one process, one loop, every stream written through the landing sinks.

Threads: the main loop (owns every writer), the X11 watcher (window + lock notifications),
pynput's two listener threads (input callbacks only count). The native capture is a child
process. Everything time-based runs on the epoch grid: system samples, window heartbeats and
input buckets at multiples of their interval (5 s by default), each written with the grid
time, a quarter second after it (so callbacks for the closing bucket are in).

Crash-loss bound (kill -9, power loss): rows reach the disk (flush + fsync) at most
`flush_seconds` (1 s) after they are produced; the next start recovers the `.part` files
with everything flushed. So a crash loses at most the rows of the last `flush_seconds`, plus
the input bucket still open (at most `bucket_seconds`, 5 s) and the system sample not yet
due. The native capture seals at the end of every `native.rotate_seconds` window (60 s): if
the capture itself is killed with SIGKILL its open segment keeps what the C library had
already written (it buffers up to 1 MiB), at most one window of input events is lost; if
only the collector is killed, the capture is told by the kernel (PR_SET_PDEATHSIG) and
seals, losing nothing.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import signal
import threading
import time
from pathlib import Path

from focuslake import events as ev
from focuslake.events import EventType

from .config import Config
from .inputs import InputCounter, PynputListener
from .native import NativeSupervisor, stop_stale
from .privacy import WindowPolicy
from .recovery import recover_landing
from .sinks import CsvSink, EventSink, _utc
from .system import SuspendDetector, SystemSampler, network_online
from .x11 import WindowInfo, X11Watcher

log = logging.getLogger("collectors.agent")
TICK_LAG_US = 250_000
# events that change which window is active (or whether any is): the heartbeats due before them first
_WINDOW_STATE_EVENTS = frozenset({"window", "x11_ready", "lock", "unlock", "suspend", "resume"})
STATUS_EVERY_US = 5_000_000
NEVER_RECORDED = [
    ("which key was pressed (key codes, scan codes, characters, modifier state) unless "
    "consent.keystroke_dynamics = true, and then only in the native events stream"),
    "typed text, clipboard, screen contents, keystroke sequences",
    "file names or file contents (consent.file_metadata has no collector yet)",
    "network traffic, URLs, addresses (connectivity is read from the local routing table)",
    "audio, camera, location",
]


class AlreadyRunning(RuntimeError):
    pass


def now_us() -> int:
    return time.time_ns() // 1000


def _next_grid(t_us: int, step_us: int) -> int:
    return t_us - t_us % step_us + step_us


class PidLock:
    """`state_dir/collector.pid`, locked with flock for the life of the process (the kernel
    drops the lock when the process dies, however it dies)."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(f"a collector is already running (pid {read_pid(self.path)}, "
                                 f"pidfile {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_running(path: Path) -> int | None:
    """The pid holding the pidfile's lock, or None if no collector runs."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_pid(path)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class Collector:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.state_dir = cfg.state_path
        self.landing = cfg.landing_path
        self.q: queue.Queue = queue.Queue()
        self.stopping = False
        self.started_us = now_us()
        self.lock = PidLock(self.state_dir / "collector.pid")
        self.status_path = self.state_dir / "status.json"
        self.recovery: dict = {}
        self.sinks: dict[str, CsvSink | EventSink] = {}
        # state
        self.win: WindowInfo | None = None
        self.locked = False
        self.lock_events = 0
        self.x11: X11Watcher | None = None
        self.x11_info: dict = {}
        self.x11_error: str | None = None
        self._x11_retry_at = 0
        self.counter: InputCounter | None = None
        self.listener: PynputListener | None = None
        self.native: NativeSupervisor | None = None
        self.records_source: str | None = None
        self.activity = {"state": "active", "idle_since": None, "afk_since": None,
                         "idle_periods": 0, "afk_periods": 0, "wakes": 0}
        self._dirty = False              # write status.json at the end of this step
        self.online: bool | None = None
        self.network_changes = 0
        self.suspend: SuspendDetector | None = None
        self.suspends = 0
        self.asleep_since: int | None = None      # between a D-Bus suspend and its resume
        self._last_resume_us = 0
        self.dbus: list = []
        self.sampler: SystemSampler | None = None
        self._last_pump = 0
        self._last_status = 0
        self._next_native_poll = 0
        self._last_change_ts = None
        self.window_policy = WindowPolicy(cfg.privacy, self.state_dir)
        self.registry_path = self.landing.parent / "privacy" / "consent.sqlite"  # shared data root only
        self.registry_seen = False
        self.keys_consent = False          # effective: config AND (registry, when it is there)
        self._next_consent_check = 0

    # ------------------------------------------------------------------ setup
    def _make_sinks(self) -> None:
        c = self.cfg
        common = {"rotate_seconds": c.rotate_seconds, "rotate_bytes": c.rotate_bytes, "durable": c.durable,
                      "max_pending": c.backpressure.max_pending_rows,
                      "retry_seconds": c.backpressure.retry_seconds,
                      "grace_seconds": max(c.input.bucket_seconds, c.system.interval_seconds) + 1}
        streams = ["system_events"]
        if c.system.enabled:
            streams.append("system_metrics")
        if c.window.enabled:
            streams.append("active_window")
        if c.input.enabled:
            streams.append("input_counts")
        for s in streams:
            self.sinks[s] = CsvSink(self.landing, s, c.user_id, c.device_id, **common)
        # window/idle/lock records (the native capture writes its own input segments)
        self.sinks["events"] = EventSink(self.landing, c.user_id, c.device_id, **common)

    def _sysevent(self, ts: int, event: str) -> None:
        self.sinks["system_events"].put_dict({"ts_us": ts, "event": event})

    def _record(self, ts: int, etype: int, d0: int = 0, d1: int = 0, d2: int = 0) -> None:
        w = self.win or WindowInfo.none()
        self.sinks["events"].put_event(ts, etype, w.pid or 0, w.app if w.wid else "", w.wid, d0, d1, d2)

    def _window_row(self, ts: int, reason: str) -> None:
        if "active_window" not in self.sinks or self.win is None:
            return
        w = self.win
        self.sinks["active_window"].put_dict({"ts_us": ts, "app_name": w.app, "window_title": w.title,
                                              "pid": w.pid, "reason": reason})
        if reason == "change":
            self._last_change_ts = ts

    def start(self) -> None:
        c = self.cfg
        self.lock.acquire()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        stale = stop_stale(self.state_dir / "native.pid")
        rep = recover_landing(self.landing, c.user_id, c.device_id, c.durable)
        self.recovery = {"stale_capture_stopped": stale, **rep.as_dict()}
        log.info("recovery at start: %d .part recovered (%d rows), %d discarded",
                 rep.recovered, rep.rows_recovered, rep.discarded)
        self._make_sinks()
        self._refresh_consent(self.started_us)
        self._sysevent(self.started_us, "collector_start")
        display = c.display or None
        if display:
            os.environ["DISPLAY"] = display     # pynput reads it at import
        if c.native.enabled:
            self.native = NativeSupervisor(
                binary=c.native.binary, landing=self.landing, user_id=c.user_id, device_id=c.device_id,
                state_dir=self.state_dir, display=display, rotate_seconds=c.native.rotate_seconds,
                rotate_bytes=c.rotate_bytes, consent_keys=self.keys_consent,
                restart_max_seconds=c.native.restart_max_seconds, exclude_apps=c.privacy.exclude_apps)
            if not self.sinks["events"].consented:
                log.warning("native capture not started: the consent registry withdrew the events stream")
            elif not self.native.start():
                log.error("native capture unavailable: %s", self.native.error)
        if c.input.enabled:
            native_ok = self.native is not None and self.native.running()
            self.counter = InputCounter(c.input.bucket_seconds, records=not native_ok)
            self.records_source = "native" if native_ok else "pynput"
            self.listener = PynputListener(self.counter)
            if not self.listener.start():
                log.error("input: %s", self.listener.error)
        if c.window.enabled or c.lock.enabled and c.lock.x11_screensaver:
            self._start_x11()
        if c.system.enabled:
            self.sampler = SystemSampler(c.system.top_process, self.window_policy.exclude_apps)
        if c.lock.enabled and c.lock.detect_suspend:
            self.suspend = SuspendDetector()
        if c.lock.enabled and c.lock.dbus:
            from .dbus import start_watchers
            self.dbus = start_watchers(self.q.put)
        if c.network.enabled:
            self.online = network_online(c.network.route_files)
            self._sysevent(self.started_us, "network_up" if self.online else "network_down")
        if c.consent.file_metadata:
            log.warning("consent.file_metadata is on, but no file-metadata collector exists: "
                        "nothing is recorded for it")
        t = self.started_us
        self.next_sys = _next_grid(t, c.system.interval_seconds * 1_000_000)
        self.next_hb = _next_grid(t, c.window.heartbeat_seconds * 1_000_000)
        self.next_bucket = _next_grid(t, c.input.bucket_seconds * 1_000_000)
        self.first_bucket = t - t % (c.input.bucket_seconds * 1_000_000)
        self.next_net = _next_grid(t, c.network.interval_seconds * 1_000_000)
        self._pump_all(now_us())
        self._write_status(now_us(), "running")
        log.info("collector started: user %s device %s landing %s (key identity %s)", c.user_id,
                 c.device_id, self.landing,
                 "RECORDED by consent" if self.keys_consent else "never recorded")

    def _start_x11(self) -> None:
        c = self.cfg
        self.x11 = X11Watcher(c.display or None, self.q.put, windows=c.window.enabled,
                              lock=c.lock.enabled and c.lock.x11_screensaver)
        self.x11.start()

    # ------------------------------------------------------------------ events
    def _handle(self, item: tuple) -> None:
        kind, ts = item[0], item[1]
        if kind in _WINDOW_STATE_EVENTS and ts - self.next_hb <= self.cfg.window.heartbeat_seconds * 1_000_000:
            # a grid point already passed belongs to the window active until now: its heartbeat
            # goes first (the tick runs TICK_LAG_US behind, so under load a change just after a
            # grid point is often handled before that point's tick, which would then skip it).
            # Only the point just before the event: a longer gap is a sleep the suspend check
            # (after the events) has not seen yet, and no heartbeat may be dated inside it.
            self._heartbeats(ts - 1)
        if kind == "window":
            self._on_window(ts, item[2])
        elif kind == "x11_ready":
            info = item[2]
            self.x11_error = None
            self.x11_info = {"ewmh": info["ewmh"], "screensaver": info["screensaver"]}
            if info["locked"]:
                self._on_lock(ts, "x11-screensaver")
            if info["window"] is not None:
                self.win = self.window_policy.apply(info["window"])
                if not self.locked:
                    self._window_row(ts, "change")
        elif kind == "lock":
            self._on_lock(ts, item[2])
        elif kind == "unlock":
            self._on_unlock(ts, item[2])
        elif kind == "suspend":
            self._on_suspend(ts, item[2])
        elif kind == "resume":
            self._on_resume(ts, item[2])
        elif kind == "x11_error":
            self.x11_error = item[2]
            self._x11_retry_at = now_us() + 5_000_000
            log.error("%s (retrying every 5 s)", item[2])
        elif kind == "signal":
            sig = item[2]
            if sig == signal.SIGHUP:
                log.info("SIGHUP: sealing every open segment now")
                self._pump_all(now_us())
                for s in self.sinks.values():
                    s.seal_due(now_us(), force=True)
                if self.native:
                    self.native.signal(signal.SIGHUP)
            else:
                log.info("signal %d: stopping", sig)
                self.stopping = True

    def _on_window(self, ts: int, info: WindowInfo) -> None:
        info = self.window_policy.apply(info)  # exclusions, redaction, title mode: before anything is written
        old = self.win
        if old == info:
            return
        self.win = info
        if old is not None and old.wid != info.wid:
            self._record(ts, EventType.WINDOW_FOCUS_CHANGE, old.wid, info.wid, 0)
        elif old is not None:
            self._record(ts, EventType.WINDOW_TITLE_CHANGE, info.wid, 0, 0)
        if not self.locked:
            self._window_row(ts, "change")

    def _on_lock(self, ts: int, source: str) -> None:
        if self.locked:
            return
        self._window_row(ts, "close")
        self.locked = True
        self.lock_events += 1
        self._sysevent(ts, "lock")
        self._record(ts, EventType.SCREEN_LOCK)
        self._dirty = True
        log.info("screen locked (%s)", source)
        self._pump_all(ts)

    def _on_unlock(self, ts: int, source: str) -> None:
        if not self.locked:
            return
        self.locked = False
        self._sysevent(ts, "unlock")
        self._record(ts, EventType.SCREEN_UNLOCK)
        self._dirty = True
        self._window_row(ts, "change")
        log.info("screen unlocked (%s)", source)
        self._pump_all(ts)

    # ------------------------------------------------------------------ periodic work
    def _heartbeats(self, due: int) -> None:
        """The window heartbeats of the grid points up to ``due``, for the window active then."""
        if "active_window" not in self.sinks:
            return
        step = self.cfg.window.heartbeat_seconds * 1_000_000
        while self.next_hb <= due:
            t = self.next_hb
            # only after the window's change sample: under load the X thread may report the
            # first window after a grid point has passed, which must not get a heartbeat
            # dated before the window was known
            if (not self.locked and self.asleep_since is None and self.win is not None
                    and self._last_change_ts is not None and t > self._last_change_ts):
                self._window_row(t, "heartbeat")
            self.next_hb = max(t + step, _next_grid(due, step))

    def _ticks(self, now: int) -> None:
        c = self.cfg
        due = now - TICK_LAG_US
        if self.sampler is not None:
            step = c.system.interval_seconds * 1_000_000
            if self.next_sys <= due:
                t = self.next_sys
                self.sinks["system_metrics"].put_dict(self.sampler.sample(t))
                self.next_sys = max(t + step, _next_grid(due, step))   # skip missed ones (slept)
        self._heartbeats(due)
        if self.counter is not None:
            step = c.input.bucket_seconds * 1_000_000
            if self.next_bucket <= due:
                t = self.next_bucket
                rows = self.counter.take_buckets(t)
                starts = {r[0] for r in rows}
                b = t - step
                if b not in starts and not self.locked and b >= self.first_bucket:
                    rows.append((b, 0, 0, 0, 0, 0.0))
                sink = self.sinks["input_counts"]
                for r in sorted(rows):
                    sink.put_dict({"ts_us": r[0], "bucket_s": c.input.bucket_seconds, "key_presses": r[1],
                                   "clicks": r[2], "wheel": r[3], "mouse_moves": r[4],
                                   "mouse_distance_px": round(r[5], 3)})
                self.next_bucket = max(t + step, _next_grid(due, step))
        if c.network.enabled:
            step = c.network.interval_seconds * 1_000_000
            if self.next_net <= due:
                online = network_online(c.network.route_files)
                if online != self.online:
                    self.online = online
                    self.network_changes += 1
                    self._dirty = True
                    self._sysevent(now, "network_up" if online else "network_down")
                    log.info("network %s", "up" if online else "down")
                self.next_net = _next_grid(due, step)

    def _idle(self, now: int) -> None:
        if self.counter is None or not self.cfg.idle.enabled:
            return
        idle_us = int(self.cfg.idle.idle_seconds * 1e6)
        afk_us = int(self.cfg.idle.afk_seconds * 1e6)
        for tr in self.counter.check_idle(now, idle_us, afk_us):
            kind, ts = tr[0], tr[1]
            self._dirty = True
            if kind == "idle_start":
                self._record(ts, EventType.IDLE_START, idle_us // 1000)
                self.activity.update(state="idle", idle_since=ts)
                self.activity["idle_periods"] += 1
            elif kind == "idle_end":
                self._record(ts, EventType.IDLE_END, min(tr[2] // 1000, 0xFFFFFFFF))
                self.activity.update(state="active", idle_since=None, afk_since=None)
                self.activity["wakes"] += 1
            elif kind == "afk":
                self.activity.update(state="afk", afk_since=ts)
                self.activity["afk_periods"] += 1
                log.info("AFK since %s (no input for %.0f s)", _utc(ts), self.cfg.idle.afk_seconds)
            elif kind == "not_afk":
                log.info("back from AFK at %s", _utc(ts))

    def _records(self) -> None:
        if self.counter is None or not self.counter.record_events:
            return
        recs = self.counter.take_records()
        if not recs:
            return
        w = self.win or WindowInfo.none()
        sink = self.sinks["events"]
        for ts, etype, d0, d1, d2 in recs:
            sink.put_event(ts, etype, w.pid or 0, w.app if w.wid else "", w.wid, d0, d1, d2)

    def _check_suspend(self) -> None:
        if self.suspend is None:
            return
        hit = self.suspend.check()
        if hit is None:
            return
        t_sleep, t_wake = hit
        if self.asleep_since is not None or self._last_resume_us >= t_sleep:
            return                          # logind already told us (PrepareForSleep)
        self._on_suspend(t_sleep, "clock-jump")
        self._on_resume(t_wake, "clock-jump")

    def _on_suspend(self, ts: int, source: str) -> None:
        if self.asleep_since is not None:
            return
        self.asleep_since = ts
        self.suspends += 1
        if not self.locked:
            self._window_row(ts, "close")
        self._sysevent(ts, "suspend")
        self._dirty = True
        self._pump_all(ts)                  # on disk before the machine sleeps
        log.info("suspend at %s (%s)", _utc(ts), source)

    def _on_resume(self, t_wake: int, source: str) -> None:
        if self.asleep_since is None:
            return
        self.asleep_since = None
        self._last_resume_us = t_wake
        self._sysevent(t_wake, "resume")
        if not self.locked:
            self._window_row(t_wake, "change")
        log.info("resume at %s (%s)", _utc(t_wake), source)
        c = self.cfg   # nothing is sampled for the time asleep: the grids restart after the wake
        self.next_sys = _next_grid(t_wake, c.system.interval_seconds * 1_000_000)
        self.next_hb = _next_grid(t_wake, c.window.heartbeat_seconds * 1_000_000)
        self.next_bucket = _next_grid(t_wake, c.input.bucket_seconds * 1_000_000)
        self._dirty = True

    def _pump_all(self, now: int) -> None:
        for s in self.sinks.values():
            s.pump(now)
        self._last_pump = now

    def _x11_supervise(self, now: int) -> None:
        if self.x11 is not None and not self.x11.is_alive() and self.x11_error and now >= self._x11_retry_at:
            self._x11_retry_at = now + 5_000_000
            self._start_x11()

    def step(self, now: int) -> None:
        items = []
        while True:
            try:
                items.append(self.q.get_nowait())
            except queue.Empty:
                break
        for item in sorted(items, key=lambda it: it[1] if isinstance(it[1], int) else 0):
            self._handle(item)
        self._check_suspend()            # first: no heartbeat or sample dated inside a sleep
        self._records()
        if now >= self._next_consent_check:   # before the ticks: a withdrawal seen stops this round's rows
            self._refresh_consent(now)
        self._idle(now)
        self._ticks(now)
        if self.native is not None and now >= self._next_native_poll and self.sinks["events"].consented:
            self.native.poll()
            self._next_native_poll = now + 2_000_000
        self._x11_supervise(now)
        if now - self._last_pump >= self.cfg.flush_seconds * 1e6 or any(
                len(s.pending) > 1000 for s in self.sinks.values()):
            self._pump_all(now)
        for s in self.sinks.values():
            s.seal_due(now)
        if self._dirty or now - self._last_status >= STATUS_EVERY_US:
            self._write_status(now, "running")

    def _refresh_consent(self, now: int) -> None:
        """Follow the consent registry when the landing is in a data root that has one (a local
        deployment; behind a receiver the ingest enforces it): a withdrawn stream is not written
        (counted per sink), key identity needs the config flag and a registry grant."""
        from focuslake.config import Paths
        from focuslake.privacy.consent import Registry
        from focuslake.privacy.policy import KEYSTROKE_DYNAMICS

        self._next_consent_check = now + int(self.cfg.privacy.registry_check_seconds * 1_000_000)
        self.registry_seen = self.registry_path.exists()
        want_keys = self.cfg.consent.keystroke_dynamics
        if self.registry_seen:
            try:
                with Registry(Paths(self.landing.parent)) as reg:
                    for name, sink in self.sinks.items():
                        allowed = reg.allowed_at(self.cfg.user_id, name, now)
                        if allowed != sink.consented:
                            log.warning("consent registry: %s %s", name, "granted again" if allowed else
                                        "withdrawn: not recorded")
                            sink.consented = allowed
                            self._dirty = True
                    want_keys = want_keys and reg.allowed_at(self.cfg.user_id, KEYSTROKE_DYNAMICS, now)
            except Exception as e:  # noqa: BLE001 -- a broken registry must not stop the collector
                log.error("cannot read the consent registry %s: %s (keeping the last state)", self.registry_path, e)
                return
        native = self.native
        if native is not None:
            events_ok = self.sinks["events"].consented
            if not events_ok and native.running():
                native.stop()
            elif events_ok and (want_keys != self.keys_consent or not native.running() and native.stopping):
                native.restart(want_keys)
        self.keys_consent = want_keys

    def _next_wake(self, now: int) -> int:
        c = self.cfg
        cands = [self._last_status + STATUS_EVERY_US]
        if self.sampler is not None:
            cands.append(self.next_sys + TICK_LAG_US)
        if "active_window" in self.sinks:
            cands.append(self.next_hb + TICK_LAG_US)
        if self.counter is not None:
            cands.append(self.next_bucket + TICK_LAG_US)
            if c.idle.enabled:
                d = self.counter.next_deadline(int(c.idle.idle_seconds * 1e6), int(c.idle.afk_seconds * 1e6))
                if d is not None:
                    cands.append(d)
            if self.counter.record_events:
                cands.append(now + int(c.flush_seconds * 1e6))
        if c.network.enabled:
            cands.append(self.next_net + TICK_LAG_US)
        if any(s.pending for s in self.sinks.values()):
            cands.append(self._last_pump + int(c.flush_seconds * 1e6))
        for s in self.sinks.values():
            if s.window_end_us is not None:
                cands.append(s.window_end_us + s.grace_us)
        if self.native is not None:
            cands.append(self._next_native_poll)
        return min(cands)

    def run(self, on_ready=None) -> int:
        self.start()
        if on_ready:
            on_ready()
        try:
            while not self.stopping:
                now = now_us()
                self.step(now)
                if self.stopping:
                    break
                wait = (self._next_wake(now_us()) - now_us()) / 1e6
                try:
                    self.q.put(self.q.get(timeout=min(max(wait, 0.001), 5.0)))
                except queue.Empty:
                    pass
        finally:
            self.shutdown()
        return 0

    def request_stop_from_signal(self, sig: int, _frame=None) -> None:
        # never touch the queue's lock from a signal handler: hand it to a thread
        threading.Thread(target=self.q.put, args=(("signal", 0, sig),), daemon=True).start()

    # ------------------------------------------------------------------ stop
    def shutdown(self) -> None:
        t = now_us()
        try:
            # everything that already happened, then the final samples: the grid points up to
            # now are due (step() leaves the last TICK_LAG_US to late input), so a heartbeat due
            # just before the stop is written before the close that ends the window
            self.step(t)
            self._ticks(t + TICK_LAG_US)
            if not self.locked:
                self._window_row(t, "close")
            if self.counter is not None:
                for r in self.counter.take_buckets(t + 1):
                    self.sinks["input_counts"].put_dict({
                        "ts_us": r[0], "bucket_s": self.cfg.input.bucket_seconds, "key_presses": r[1],
                        "clicks": r[2], "wheel": r[3], "mouse_moves": r[4],
                        "mouse_distance_px": round(r[5], 3)})
            if "system_events" in self.sinks:
                self._sysevent(t, "collector_stop")
            if self.listener is not None:
                self.listener.stop()
            if self.x11 is not None:
                self.x11.stop()
            for w in self.dbus:
                w.stop()
            if self.native is not None:
                self.native.stop()
            for s in self.sinks.values():
                s.close(now_us())
            self._write_status(now_us(), "stopped")
        finally:
            self.lock.release()
        log.info("collector stopped")

    # ------------------------------------------------------------------ status
    def status(self, now: int, state: str) -> dict:
        c = self.cfg
        streams = {}
        for name in ("system_metrics", "active_window", "input_counts", "system_events", "events"):
            s = self.sinks.get(name)
            streams[name] = {"enabled": s is not None, **(s.status() if s else {})}
        errors = {n: s.error for n, s in self.sinks.items() if s.error}
        dropped = sum(s.rows_dropped for s in self.sinks.values())
        seals = [s.last_seal_us for s in self.sinks.values() if s.last_seal_us]
        flushes = [s.last_flush_us for s in self.sinks.values() if s.last_flush_us]
        counter = self.counter
        totals = None
        if counter is not None:
            k, cl, wh, mv, dist = counter.totals
            totals = {"key_presses": k, "clicks": cl, "wheel": wh, "mouse_moves": mv,
                      "mouse_distance_px": round(dist, 1)}
        native = self.native.status() if self.native else {"enabled": False}
        if self.native:
            native["enabled"] = True
            cap = native.get("capture") or {}
            if cap.get("last_error"):
                errors["native"] = cap["last_error"]
            dropped_native = cap.get("events_dropped") or 0
        else:
            dropped_native = 0
        return {
            "state": state, "pid": os.getpid(), "started": _utc(self.started_us), "updated": _utc(now),
            "config": c.source, "user_id": c.user_id, "device_id": c.device_id,
            "landing": str(self.landing),
            "landing_ok": not errors, "landing_errors": errors,
            "rows_dropped": dropped, "native_events_dropped": dropped_native,
            "segments_sealed": sum(s.segments_sealed for s in self.sinks.values()),
            "last_flush": _utc(max(flushes)) if flushes else None,
            "last_seal": _utc(max(seals)) if seals else None,
            "consent": {"keystroke_dynamics": c.consent.keystroke_dynamics,
                        "file_metadata": c.consent.file_metadata,
                        "keystroke_dynamics_effective": self.keys_consent,
                        "registry": str(self.registry_path) if self.registry_seen else None,
                        "withdrawn_streams": sorted(n for n, s in self.sinks.items() if not s.consented)},
            "privacy": {"title_mode": c.privacy.title_mode, "redaction_rules": len(c.privacy.redact),
                        "excluded_apps": len(c.privacy.exclude_apps),
                        "excluded_title_rules": len(c.privacy.exclude_titles),
                        "windows_excluded": self.window_policy.excluded},
            "never_recorded": NEVER_RECORDED,
            "streams": streams,
            "window": {"enabled": c.window.enabled, "app": self.win.app if self.win else None,
                       "x11": self.x11_info, "error": self.x11_error},
            "input": {"enabled": c.input.enabled,
                      "listener": ("pynput" if self.listener and self.listener.alive() else
                                   (self.listener.error if self.listener else None)),
                      "records_from": self.records_source, "totals": totals},
            "activity": {**self.activity, "idle_since": _utc(self.activity["idle_since"]),
                         "afk_since": _utc(self.activity["afk_since"]),
                         "last_input": _utc(counter.last_input_us) if counter else None,
                         "idle_seconds": c.idle.idle_seconds, "afk_seconds": c.idle.afk_seconds},
            "lock": {"locked": self.locked, "locks": self.lock_events, "suspends": self.suspends,
                     "asleep": self.asleep_since is not None,
                     "sources": (["x11-screensaver"] if self.x11_info.get("screensaver") else [])
                     + [src for w in self.dbus for src in w.sources]
                     + (["clock-jump suspend"] if self.suspend else []),
                     "unavailable": [w.error for w in self.dbus if w.error]},
            "network": {"enabled": c.network.enabled, "online": self.online, "changes": self.network_changes},
            "native": native,
            "recovery": self.recovery,
            "config_values": c.public(),
        }

    def _write_status(self, now: int, state: str) -> None:
        self._last_status = now
        self._dirty = False
        doc = self.status(now, state)
        tmp = self.status_path.with_name(self.status_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
            os.replace(tmp, self.status_path)
        except OSError as e:
            log.error("cannot write %s: %s", self.status_path, e)


def install_signal_handlers(col: Collector) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, col.request_stop_from_signal)


__all__ = ["AlreadyRunning", "Collector", "ev", "install_signal_handlers", "pid_running", "read_pid"]
