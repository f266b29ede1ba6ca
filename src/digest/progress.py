"""Progress for long sends: a live line on a terminal, sparse log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from digest.pipeline import SendReport

log = logging.getLogger("digest.progress")


class SendProgress:
    """Callable passed to ``pipeline.send`` as ``progress``."""

    def __init__(self, stream: TextIO | None = None, *, interactive: bool | None = None, every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.every = every
        self._last = 0.0
        self._drawn = False

    def __call__(self, report: SendReport, total: int) -> None:
        done = report.sent + report.failed
        now = time.monotonic()
        finished = done >= total
        if not finished and now - self._last < (0.1 if self.interactive else self.every):
            return
        self._last = now
        rate = done / report.elapsed if report.elapsed > 0 else 0.0
        if self.interactive:
            width = 28
            filled = int(width * done / total) if total else width
            eta = (total - done) / rate if rate > 0 else 0.0
            line = (
                f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                f"{rate:,.0f}/s ETA {_clock(eta)} failed {report.failed}"
            )
            self.stream.write(line)
            self.stream.flush()
            self._drawn = True
            if finished:
                self.close()
        else:
            log.info(
                "digest %d: %d/%d done (%d failed), %.0f msg/s", report.digest_id, done, total, report.failed, rate
            )

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
