"""What lets an operator watch `digest run`: its own log lines, and a heartbeat in the database.

The daemon records its pid, effective schedule and start time when it starts,
and a heartbeat every minute (the ``state`` table), so `digest status` shows
the schedule the running daemon really uses (not the one in the shell that
runs `status`) and notices when a schedule is configured but no daemon has
been seen for a while. APScheduler's own warnings ("skipped: maximum number of
running instances reached", "was missed by 0:00:10.8") are replaced by lines
that say what happened in digest's terms. Send progress is logged every 10 %
or 30 s, whichever comes first.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent, JobSubmissionEvent
from apscheduler.schedulers.base import BaseScheduler
from sqlite_utils import Database

from digest import feedcheck, pipeline, store
from digest.config import Settings

log = logging.getLogger("digest.daemon")

DAEMON_INFO = "daemon.info"  # JSON: pid, schedule, timezone, check interval, start time
HEARTBEAT = "daemon.heartbeat"  # ISO time of the daemon's last sign of life
HEARTBEAT_SECONDS = 60
# No heartbeat for this long while a schedule is configured: status says so.
SILENT_AFTER = 3 * HEARTBEAT_SECONDS
# A scheduled send that found nothing new creates no digest row, yet it did
# happen and must not be "caught up": these record each scheduled send run.
LAST_SEND_RUN = "daemon.last_send_run"
LAST_SEND_OUTCOME = "daemon.last_send_outcome"


def record_start(db: Database, settings: Settings, now: datetime) -> None:
    info = {
        "pid": os.getpid(),
        "schedule": settings.schedule,
        "timezone": settings.timezone,
        "check_interval": settings.check_interval,
        "started": store.to_text(now),
    }
    store.set_state(db, DAEMON_INFO, json.dumps(info))
    heartbeat(db, now)


def heartbeat(db: Database, now: datetime) -> None:
    store.set_state(db, HEARTBEAT, store.to_text(now) or "")


def recorded(db: Database) -> tuple[dict[str, object] | None, datetime | None]:
    """What the last daemon recorded about itself, and its last heartbeat."""
    raw = store.get_state(db, DAEMON_INFO)
    try:
        info = json.loads(raw) if raw else None
    except ValueError:
        info = None
    return (info if isinstance(info, dict) else None), store.from_text(store.get_state(db, HEARTBEAT))


def last_send_reference(db: Database) -> datetime | None:
    """When a send last happened: the latest digest created or finished, or scheduled send run."""
    known = store.last_digest_activity(db)
    ran = store.from_text(store.get_state(db, LAST_SEND_RUN))
    if ran is not None:
        known.append(ran)
    return max(known) if known else None


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def status_lines(db: Database, running: bool, now: datetime) -> list[str]:
    """The daemon's own record, for `digest status`."""
    info, beat = recorded(db)
    if info is None or beat is None:
        return [] if running else ["Daemon last seen: never (no `digest run` has used this database)"]
    ago = max(0.0, (now - beat).total_seconds())
    since = _ago(ago) if ago >= 1 else "just now"
    schedule = f"{info.get('schedule')!r} ({info.get('timezone')}), pid {info.get('pid')}"
    if running:
        lines = [f"Daemon schedule: {schedule}; heartbeat {since}"]
        if ago > SILENT_AFTER:
            lines.append(f"Warning: the running daemon's last heartbeat was {since}: is it stuck in a long send?")
        return lines
    return [f"Daemon last seen: {since} ({schedule}); the schedule does nothing until `digest run` runs again"]


def log_check(reports: Iterable[feedcheck.FeedReport]) -> None:
    reports = list(reports)
    new = sum(len(r.new) for r in reports)
    unchanged = sum(1 for r in reports if r.status == "not-modified")
    failed = sum(1 for r in reports if r.failed)
    log.info(
        "check: %d feed(s): %d new entr%s, %d not modified, %d failed",
        len(reports),
        new,
        "y" if new == 1 else "ies",
        unchanged,
        failed,
    )


def replace_scheduler_warnings(scheduler: BaseScheduler, describe_next: Callable[[str], str]) -> None:
    """Log a skipped or missed job in our words, and silence APScheduler's own warnings about them."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # with -vv, APScheduler says everything
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)

    def listener(event: JobExecutionEvent | JobSubmissionEvent) -> None:
        job = scheduler.get_job(event.job_id)
        name = job.name if job else event.job_id
        if event.code == EVENT_JOB_MAX_INSTANCES:
            log.info(
                "%s: not started, the previous job is still running (a long send or check); next at %s",
                name,
                describe_next(event.job_id),
            )
        elif event.code == EVENT_JOB_MISSED:
            late = ""
            times = getattr(event, "scheduled_run_time", None)
            if times is not None:
                late = f" (due at {times.isoformat(timespec='seconds')})"
            log.warning(
                "%s: skipped, it could not start in time%s (the machine was asleep or busy); next at %s",
                name,
                late,
                describe_next(event.job_id),
            )

    scheduler.add_listener(listener, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)


class ProgressLog:
    """A ``pipeline.send`` progress callback that logs every 10 % of recipients or every 30 s."""

    def __init__(
        self, *, every_fraction: float = 0.1, every_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every_fraction = every_fraction
        self.every_seconds = every_seconds
        self.clock = clock
        self._last_time: float | None = None
        self._last_done = 0

    def __call__(self, report: pipeline.SendReport, total: int) -> None:
        now = self.clock()
        if self._last_time is None:
            self._last_time = now
        done = report.done
        step = max(1, int(total * self.every_fraction))
        if done >= total or done - self._last_done >= step or now - self._last_time >= self.every_seconds:
            if done == self._last_done:
                return
            log.info(
                "digest %d: %d of %d (%d%%): %d sent, %d failed, %d deferred",
                report.digest_id,
                done,
                total,
                100 * done // max(1, total),
                report.sent,
                report.failed,
                report.deferred,
            )
            self._last_time, self._last_done = now, done
