"""The rate limit the SMTP workers share (SMTP_RATE): at most so many messages per second in all."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """At most ``rate`` messages per second across all workers (0: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            stop.wait(slot - now)
