"""Progress for long sends: a live bar on a terminal, plain periodic lines otherwise.

``pipeline.send`` calls a ``SendProgress`` after every recorded outcome; it
decides what is worth showing. On a terminal: one redrawn line with a bar,
count, rate and ETA (at most ten redraws a second). Elsewhere (cron, systemd,
a pipe): one plain line every ``every`` seconds while it runs, which reads
well in a log; the command's own summary reports the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from digest.pipeline import SendReport


class SendProgress:
    """Callable passed to ``pipeline.send`` as ``progress``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interactive: bool | None = None,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.every = every
        self.clock = clock
        self._last: float | None = None
        self._drawn = False

    def __call__(self, report: SendReport, total: int) -> None:
        done = report.done
        now = self.clock()
        finished = done >= total
        if self._last is None:
            self._last = now  # the first outcome starts the clock; no line yet
            if not (finished and self.interactive):
                return
        if not self.interactive:
            # Plain lines only while it runs: the command's summary says how it ended.
            if finished or now - self._last < self.every:
                return
        elif not finished and now - self._last < 0.1:
            return
        self._last = now
        rate = report.rate
        eta = _clock((total - done) / rate) if rate > 0 else "?"
        problems = f", {report.failed} failed" if report.failed else ""
        problems += f", {report.deferred} deferred" if report.deferred else ""
        if self.interactive:
            width = 28
            filled = min(width, int(width * done / total)) if total else width
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} "
                f"{rate:,.0f} msg/s ETA {eta}{problems}\x1b[K"
            )
            self._drawn = True
            if finished:
                self.close()
        else:
            percent = 100 * done / total if total else 100.0
            self.stream.write(
                f"digest {report.digest_id}: {done:,}/{total:,} ({percent:.0f}%) {rate:,.0f} msg/s, "
                f"ETA {eta}{problems}\n"
            )
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
