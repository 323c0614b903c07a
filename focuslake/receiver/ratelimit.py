"""Per-device token buckets: requests per second and events per second, each with a burst.
A request that would overdraw a bucket is refused with 429 and the seconds until it would not
(Retry-After). In memory, per server process (run one process per receiver, the default)."""
from __future__ import annotations

import math
import threading
import time


class TokenBucket:
    def __init__(self, rate: float, burst: float):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self, n: float = 1.0, now: float | None = None) -> float:
        """Take n tokens; returns 0 when granted, else the seconds to wait (nothing taken)."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if n > self.burst:
            return math.inf
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


class RateLimiter:
    """Buckets per (device, kind). `rate=None` disables a kind."""

    def __init__(self, requests_per_s: float | None, request_burst: float,
                 events_per_s: float | None, event_burst: float):
        self.conf = {"requests": (requests_per_s, request_burst), "events": (events_per_s, event_burst)}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, device_key: str, kind: str, n: float = 1.0) -> float:
        rate, burst = self.conf[kind]
        if rate is None:
            return 0.0
        with self._lock:
            b = self._buckets.get((device_key, kind))
            if b is None:
                b = self._buckets[(device_key, kind)] = TokenBucket(rate, burst)
            return b.take(n)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
