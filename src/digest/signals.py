"""Stop a one-shot command cleanly on SIGINT or SIGTERM.

``digest send`` is stopped by Ctrl-C, by ``timeout``, by cron wrappers and by
systemd, all with one of these. Inside :func:`stop_on_signals` such a signal
only sets an event: the delivery takes no new subscriber, lets the messages in
flight finish and be recorded, and the command prints its usual summary and
exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType


@dataclass
class Stop:
    event: threading.Event = field(default_factory=threading.Event)
    signal: signal.Signals | None = None

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signal) if self.signal is not None else 0


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """Within the block, SIGINT and SIGTERM set ``stop.event`` (main thread only; elsewhere a no-op)."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.signal is None:
            stop.signal = signal.Signals(signum)
        stop.event.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
