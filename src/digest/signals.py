"""The one signal helper: SIGINT/SIGTERM set a stop event; SIGHUP sets a reload event.

``digest send`` is stopped by Ctrl-C, by ``timeout``, by cron wrappers and by
systemd, all with one of these. Inside :func:`stop_on_signals` such a signal
only sets an event: the delivery takes no new subscriber, lets the messages in
flight finish and be recorded, and the command prints its usual summary and
exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).

The daemon (daemon.py) and ``digest serve`` (web.py) use the same helper; the
daemon asks for ``second_ends``: a second signal ends the process at once
(safe: every accepted message is already recorded), and :func:`on_hangup`
turns SIGHUP into a configuration reload. Handlers can only be set from the
main thread; elsewhere (tests that run a daemon in a thread) both helpers
do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Stop:
    event: threading.Event = field(default_factory=threading.Event)
    signal: signal.Signals | None = None  # the first one received

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signal) if self.signal is not None else 0

    @property
    def name(self) -> str:
        return self.signal.name if self.signal is not None else ""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_on_signals(event: threading.Event | None = None, *, second_ends: bool = False) -> Iterator[Stop]:
    """Within the block, SIGINT and SIGTERM set ``stop.event`` (``event`` when given).

    With ``second_ends``, the first signal also restores the default handlers,
    so a second one ends the process.
    """
    stop = Stop() if event is None else Stop(event)
    if not _in_main_thread():
        yield stop
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.signal is None:
            stop.signal = signal.Signals(signum)
        if second_ends:
            for each in _STOP_SIGNALS:
                signal.signal(each, signal.SIG_DFL)
        stop.event.set()

    previous = {sig: signal.signal(sig, handle) for sig in _STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def on_hangup(event: threading.Event) -> Iterator[None]:
    """Within the block, SIGHUP sets ``event``."""
    if not _in_main_thread() or not hasattr(signal, "SIGHUP"):
        yield
        return
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)
