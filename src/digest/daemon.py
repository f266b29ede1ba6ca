"""The daemon (``digest run``): APScheduler 3.x jobs that call the pipeline.

(schedule.py parses DIGEST_SCHEDULE; daemon_jobs.py holds the jobs; this
module schedules them and runs the process.)

Two jobs share one SQLite connection and one worker thread, so they never run
at the same time: *check* (every DIGEST_CHECK_INTERVAL) records new entries
and retries any digest a failed send left unfinished; *send* (on
DIGEST_SCHEDULE, in DIGEST_TIMEZONE) turns pending entries into one digest
and delivers it. A start-up job resumes an interrupted digest and makes up
for a send missed while the daemon was down (once, however many slots were
missed).

The process holds the single-sender lock for its whole life. The main thread
only waits on a stop event: SIGTERM/SIGINT set it, the send in progress
finishes the messages in flight and returns, the scheduler shuts down, and the
process exits 0. Waiting in our own loop (BackgroundScheduler rather than
BlockingScheduler) keeps the signal handler down to setting an event, and lets
the loop nudge the scheduler every minute so a run time passed during a
machine suspend is noticed on wake-up (the scheduler's own timed wait does not
count suspended time).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest import daemon_watch
from digest.config import Settings
from digest.daemon_jobs import Daemon, send_trigger
from digest.errors import DigestError
from digest.lock import sender_lock
from digest.schedule import duration_text, when_text
from digest.signals import on_hangup, stop_on_signals
from digest.wiring import Wiring

if TYPE_CHECKING:
    from digest.web.server import WebServer

log = logging.getLogger(__name__)

# How often the main loop nudges the scheduler to re-read the wall clock.
WAKEUP_SECONDS = 60.0


def check_trigger(settings: Settings) -> IntervalTrigger:
    return IntervalTrigger(seconds=settings.check_interval, timezone=settings.timezone)


def build_scheduler(daemon: Daemon) -> BackgroundScheduler:
    settings = daemon.settings
    # One worker: the jobs share a SQLite connection and must never overlap.
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(max_workers=1)}, timezone=settings.zone)
    # coalesce: run times missed together run once. A late check is pointless
    # once the next one is due; a late send still goes out (once): no digest
    # is ever silently skipped.
    once = {"coalesce": True, "max_instances": 1}
    scheduler.add_job(daemon.startup_job, "date", id="startup", name="start-up", misfire_grace_time=None, **once)
    scheduler.add_job(
        daemon.check_job,
        check_trigger(settings),
        id="check",
        name="check",
        misfire_grace_time=max(1, int(settings.check_interval)),
        **once,
    )
    scheduler.add_job(daemon.send_job, daemon.trigger, id="send", name="send", misfire_grace_time=None, **once)
    if settings.bounce_imap_host:
        every = IntervalTrigger(seconds=settings.bounce_interval, timezone=settings.zone)
        scheduler.add_job(
            daemon.bounce_job,
            every,
            id="bounces",
            name="bounces",
            misfire_grace_time=max(1, int(settings.bounce_interval)),
            **once,
        )
    every_minute = IntervalTrigger(seconds=daemon_watch.HEARTBEAT_SECONDS, timezone=settings.zone)
    scheduler.add_job(
        daemon.tick_job,
        every_minute,
        id="tick",
        name="heartbeat and retries",
        misfire_grace_time=daemon_watch.HEARTBEAT_SECONDS,
        **once,
    )

    def next_run(job_id: str) -> str:
        job = scheduler.get_job(job_id)
        return when_text(job.next_run_time, daemon.settings.zone) if job and job.next_run_time else "never"

    daemon_watch.replace_scheduler_warnings(scheduler, next_run)
    return scheduler


# --- the process ------------------------------------------------------------------------


def run_daemon(
    wiring: Wiring, *, stop: threading.Event | None = None, reload: Callable[[], Settings] | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set). Raises DigestError on a bad start.

    On SIGHUP, ``reload`` (when given) reads the configuration again; a bad one
    is logged in one line and the running one kept.
    """
    settings = wiring.settings
    settings.require_feeds()
    settings.require_sending()
    send_trigger(settings)  # DIGEST_SCHEDULE in DIGEST_TIMEZONE, before taking the lock
    stop = stop or threading.Event()
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # APScheduler logs every job start and end at INFO; only its problems matter here.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    hangup = threading.Event()
    with sender_lock(settings.db_path, "run"), stop_on_signals(stop, second_ends=True) as signalled, on_hangup(hangup):
        db = wiring.open_store()
        web = None
        try:
            web = _start_web(settings)
            daemon = Daemon(wiring, db, stop=stop)
            daemon_watch.record_start(db, settings, daemon.clock())
            scheduler = build_scheduler(daemon)
            log.info(
                "digest run started (pid %d): database %s; checks every %s; sends on %r (%s)",
                os.getpid(),
                settings.db_path,
                duration_text(settings.check_interval),
                settings.schedule,
                settings.timezone,
            )
            scheduler.start()
            try:
                for job_id in ("check", "send"):
                    job = scheduler.get_job(job_id)
                    when = when_text(job.next_run_time, settings.zone) if job and job.next_run_time else "never"
                    log.info("next %s at %s", job_id, when)
                ticks = 0
                while not stop.wait(1.0):  # short waits: a SIGHUP is acted on within a second
                    ticks += 1
                    if hangup.is_set():
                        hangup.clear()
                        if reload is not None:
                            _reload(daemon, scheduler, reload)
                    if ticks % int(WAKEUP_SECONDS) == 0:
                        scheduler.wakeup()
                log.info("%s: stopping (finishing the messages in flight)", signalled.name or "stop")
            finally:
                stop.set()  # whatever brought us here, a send in progress winds down
                scheduler.shutdown(wait=True)  # the job in progress returns before the database closes
        finally:
            if web is not None:
                web.stop()
            db.close()
    log.info("digest run stopped")


def _reload(daemon: Daemon, scheduler: BackgroundScheduler, reload: Callable[[], Settings]) -> None:
    """SIGHUP: adopt the configuration read again, or keep the running one (one log line either way)."""
    old = daemon.settings
    try:
        new = reload()
        new.require_feeds()
        new.require_sending()
        trigger = send_trigger(new)
    except DigestError as exc:
        log.error("SIGHUP: new configuration refused, keeping the running one: %s", exc)
        return
    if new.db_path != old.db_path:
        log.warning("SIGHUP: DIGEST_DB changed; the database changes only at a restart")
        new = replace(new, db_path=old.db_path)
    daemon.wiring = daemon.wiring.with_settings(new)
    daemon.trigger = trigger
    scheduler.reschedule_job("check", trigger=check_trigger(new))
    scheduler.reschedule_job("send", trigger=trigger)
    log.info(
        "SIGHUP: configuration reloaded; checks every %s; sends on %r (%s)",
        duration_text(new.check_interval),
        new.schedule,
        new.timezone,
    )


def _start_web(settings: Settings) -> WebServer | None:
    if settings.http_listen is None:
        return None
    from digest.web.server import WebServer  # Flask and waitress load only when the web app is on

    server = WebServer(settings)
    server.start()  # logs the address; a port in use is a DigestError (exit 1)
    return server
