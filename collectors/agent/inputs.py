"""Input counting (pynput) and the idle/AFK detector.

Privacy: the keyboard callbacks receive the key, and drop it on the floor: only a count and
the time of the press are kept. Nothing here ever stores, logs or forwards which key.

Counts go into 5 s buckets aligned to the epoch (`input_counts`): key presses, clicks
(button presses), wheel notches, pointer motion events and the pointer distance in pixels
(Euclidean distance from the previous motion position; the first motion adds 0).

When the native capture is not running, the same callbacks also produce the binary input
records (KEY_PRESS/KEY_RELEASE with zero key codes, MOUSE_MOVE, MOUSE_CLICK, MOUSE_WHEEL).

Idle: IDLE_START is dated `idle_seconds` after the last input when no input came since;
IDLE_END at the next input with the idle duration. AFK: after `afk_seconds` without input,
dated back to the last input (ActivityWatch's rule); not-AFK again at the next input.
"""
from __future__ import annotations

import contextlib
import math
import threading
import time

from focuslake.events import EventType


def now_us() -> int:
    return time.time_ns() // 1000


class InputCounter:
    def __init__(self, bucket_seconds: int = 5, *, records: bool = False):
        self.bucket_us = int(bucket_seconds * 1_000_000)
        self.lock = threading.Lock()
        self.buckets: dict[int, list] = {}     # start -> [keys, clicks, wheel, moves, distance]
        self.last_input_us: int | None = None
        self.last_pos: tuple[int, int] | None = None
        self.totals = [0, 0, 0, 0, 0.0]
        self.record_events = records
        self.records: list[tuple] = []         # (ts, type, d0, d1, d2) for the binary fallback
        # idle state (changed only under the lock, read by the collector loop)
        self.idle = False
        self.afk = False
        self.wake: tuple[int, int] | None = None   # (first input after idle, idle duration us)

    # -- pynput callbacks (listener threads) -----------------------------------------------
    def _count(self, ts: int, i: int, v=1) -> None:
        b = self.buckets.get(ts - ts % self.bucket_us)
        if b is None:
            b = self.buckets[ts - ts % self.bucket_us] = [0, 0, 0, 0, 0.0]
        b[i] += v
        self.totals[i] += v

    def _activity(self, ts: int) -> None:
        if self.idle and self.wake is None and self.last_input_us is not None:
            self.wake = (ts, ts - self.last_input_us)
        self.last_input_us = ts

    def on_press(self, _key=None) -> None:   # the key is never looked at
        ts = now_us()
        with self.lock:
            self._count(ts, 0)
            self._activity(ts)
            if self.record_events:
                self.records.append((ts, EventType.KEY_PRESS, 0, 0, 0))

    def on_release(self, _key=None) -> None:
        ts = now_us()
        with self.lock:
            self._activity(ts)
            if self.record_events:
                self.records.append((ts, EventType.KEY_RELEASE, 0, 0, 0))

    def on_click(self, x, y, button, pressed) -> None:
        if not pressed:
            return
        ts = now_us()
        with self.lock:
            self._count(ts, 1)
            self._activity(ts)
            if self.record_events:
                self.records.append((ts, EventType.MOUSE_CLICK, int(x), int(y), _button_no(button)))

    def on_scroll(self, x, y, dx, dy) -> None:
        ts = now_us()
        with self.lock:
            self._count(ts, 2)
            self._activity(ts)
            if self.record_events:
                self.records.append((ts, EventType.MOUSE_WHEEL, int(dx), int(dy), 0))

    def on_move(self, x, y) -> None:
        ts = now_us()
        x, y = int(x), int(y)
        with self.lock:
            last = self.last_pos
            dist = math.hypot(x - last[0], y - last[1]) if last is not None else 0.0
            self.last_pos = (x, y)
            self._count(ts, 3)
            self._count(ts, 4, dist)
            self._activity(ts)
            if self.record_events:
                self.records.append((ts, EventType.MOUSE_MOVE, x, y, 0))

    # -- collector loop -----------------------------------------------------------------------
    def take_buckets(self, before_us: int) -> list[tuple]:
        """Rows (start, keys, clicks, wheel, moves, distance) of buckets starting before `before_us`."""
        with self.lock:
            done = sorted(k for k in self.buckets if k < before_us)
            return [(k, *self.buckets.pop(k)) for k in done]

    def take_records(self) -> list[tuple]:
        with self.lock:
            out, self.records = self.records, []
        return out

    def check_idle(self, now: int, idle_us: int, afk_us: int) -> list[tuple]:
        """Transitions since the last call: ("idle_end", ts, dur_us), ("not_afk", ts),
        ("idle_start", ts), ("afk", since_ts), in time order."""
        out = []
        with self.lock:
            if self.wake is not None:
                ts, dur = self.wake
                self.wake = None
                self.idle = False
                out.append(("idle_end", ts, dur))
                if self.afk:
                    self.afk = False
                    out.append(("not_afk", ts))
            last = self.last_input_us
            if last is not None and not self.idle and now >= last + idle_us:
                self.idle = True
                out.append(("idle_start", last + idle_us))
            if last is not None and self.idle and not self.afk and now >= last + afk_us:
                self.afk = True
                out.append(("afk", last))
        return out

    def next_deadline(self, idle_us: int, afk_us: int) -> int | None:
        with self.lock:
            if self.last_input_us is None:
                return None
            if self.wake is not None:
                return 0
            if not self.idle:
                return self.last_input_us + idle_us
            if not self.afk:
                return self.last_input_us + afk_us
            return None


def _button_no(button) -> int:
    """pynput Button -> the record's button: 1 left, 2 right, 3 middle, 4 back, 5 forward
    (the same numbers the native capture writes); 0 for any other button."""
    return {"left": 1, "right": 2, "middle": 3, "button8": 4, "button9": 5}.get(
        getattr(button, "name", ""), 0)


class PynputListener:
    """pynput keyboard + mouse listeners feeding an InputCounter."""

    def __init__(self, counter: InputCounter):
        self.counter = counter
        self.kb = self.mouse = None
        self.error: str | None = None

    def start(self) -> bool:
        try:
            from pynput import keyboard, mouse
        except Exception as e:   # noqa: BLE001 - no X display / unsupported platform
            self.error = f"pynput unavailable: {str(e).splitlines()[0]}"
            return False
        c = self.counter
        self.kb = keyboard.Listener(on_press=c.on_press, on_release=c.on_release)
        self.mouse = mouse.Listener(on_move=c.on_move, on_click=c.on_click, on_scroll=c.on_scroll)
        self.kb.daemon = self.mouse.daemon = True
        self.kb.start()
        self.mouse.start()
        self.kb.wait()
        self.mouse.wait()
        return True

    def alive(self) -> bool:
        return bool(self.kb and self.mouse and self.kb.is_alive() and self.mouse.is_alive())

    def stop(self) -> None:
        for lst in (self.kb, self.mouse):
            if lst is not None:
                with contextlib.suppress(Exception):
                    lst.stop()
