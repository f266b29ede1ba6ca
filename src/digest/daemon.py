"""The daemon (``digest run``): APScheduler 3.x jobs that call the pipeline.

(schedule.py parses DIGEST_SCHEDULE; this module runs the jobs on it.)

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

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlite_utils import Database

from digest import daemon_watch, pipeline, schedule, signup, store
from digest.config import Settings
from digest.errors import DigestError
from digest.lock import sender_lock
from digest.mailer import TransportFactory
from digest.schedule import duration_text, next_fire_time, should_catch_up, when_text
from digest.signals import on_hangup, stop_on_signals

if TYPE_CHECKING:
    from digest.web.server import WebServer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How often the main loop nudges the scheduler to re-read the wall clock.
WAKEUP_SECONDS = 60.0


def _utcnow() -> datetime:
    return datetime.now(UTC)  # full precision: fire times fall mid-second


class FeedHealth:
    """Each feed's ok/failing state, kept in memory so a failing feed is logged
    once when it starts failing and once when it recovers, not at every check."""

    def __init__(self) -> None:
        self._failing: dict[str, bool] = {}

    def update(self, reports: Iterable[pipeline.FeedReport]) -> None:
        for report in reports:
            failing = report.failed  # an error, or a feed marked gone (410)
            was_failing = self._failing.get(report.url, False)
            self._failing[report.url] = failing
            if failing and not was_failing:
                log.warning("feed %s: failing: %s (logged again when it recovers)", report.url, report.error)
            elif failing:
                log.debug("feed %s: still failing: %s", report.url, report.error)
            elif was_failing:
                log.info("feed %s: recovered", report.url)
            if report.new:
                log.info("feed %s: %d new entr%s", report.url, len(report.new), "y" if len(report.new) == 1 else "ies")


# --- the jobs -------------------------------------------------------------------------


class Daemon:
    """The jobs and what they share. Built without a scheduler so tests can call
    the jobs directly with an injected clock."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        stop: threading.Event | None = None,
        clock: Clock = _utcnow,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.stop = stop or threading.Event()
        self.clock = clock
        self.transport_factory = transport_factory
        self.trigger = send_trigger(settings)
        self.health = FeedHealth()
        self._resume_failing = False

    # Each job is the body APScheduler calls; none lets an exception escape,
    # so one bad run is logged and the daemon goes on.

    def startup_job(self) -> None:
        if self.stop.is_set():
            return
        last = daemon_watch.last_send_reference(self.db)
        if should_catch_up(self.trigger, last, self.clock()):
            log.info(
                "start-up: a scheduled send was missed since %s: sending once now", when_text(last, self.settings.zone)
            )
            self.send_job(reason="catch-up")
            return
        unfinished = self._unfinished_ids()
        if unfinished:
            log.info("start-up: resuming unfinished digest %s", _ids(unfinished))
        self.check_job()

    def bounce_job(self) -> None:
        """Read the IMAP bounce mailbox (DIGEST_BOUNCE_IMAP_*); a failure is logged, the daemon goes on."""
        if self.stop.is_set():
            return
        from digest.bounceimap import process_imap

        try:
            report = process_imap(self.db, self.settings)
        except DigestError as exc:
            log.error("bounce mailbox: %s", exc)
            return
        log.info("bounce mailbox: %d message(s), %d subscriber(s) changed", len(report.outcomes), len(report.changed))

    def check_job(self) -> None:
        """Record new entries; retry a digest that a failed or interrupted send left unfinished."""
        if self.stop.is_set():
            return
        self.check()
        with contextlib.suppress(DigestError):  # a busy database: the next check purges
            signup.purge_expired(self.settings, self.db, self.clock())
        if not self.stop.is_set() and self._unfinished_ids():
            self._resume()

    def tick_job(self) -> None:
        """Every minute: a heartbeat for `digest status`, and deferred deliveries retried when due."""
        if self.stop.is_set():
            return
        now = self.clock()
        daemon_watch.heartbeat(self.db, now)
        due = store.next_retry(self.db)
        if due is not None and due <= now:
            self._resume()

    def send_job(self, reason: str = "scheduled") -> None:
        if self.stop.is_set():
            return
        self.check()
        if self.stop.is_set():
            return  # not recorded as run: the next start catches up
        started = self.clock()
        try:
            outcome = pipeline.send_locked(
                self.db,
                self.settings,
                stop=self.stop,
                check=False,
                transport_factory=self.transport_factory,
                progress=daemon_watch.ProgressLog(),
            )
        except DigestError as exc:
            summary = f"failed: {exc}"
            log.error("send (%s): %s; %s", reason, exc, self._unfinished_note())
        except Exception:
            summary = "failed: unexpected error (see the log)"
            log.exception("send (%s): unexpected error; %s", reason, self._unfinished_note())
        else:
            summary = self._log_outcome(f"send ({reason})", outcome)
        if not summary.startswith("stopped"):
            store.set_state(self.db, daemon_watch.LAST_SEND_RUN, store.to_text(started) or "")
            store.set_state(self.db, daemon_watch.LAST_SEND_OUTCOME, summary)
        upcoming = next_fire_time(self.trigger, self.clock())
        if upcoming is not None and not self.stop.is_set():
            log.info("send: next at %s", when_text(upcoming, self.settings.zone))

    # --- helpers ---

    def check(self) -> list[pipeline.FeedReport]:
        """Check each feed on its own, so one feed's unexpected error names it and spares the others."""
        reports = []
        for url in self.settings.require_feeds():
            if self.stop.is_set():
                break
            try:
                reports += pipeline.check_feeds(self.db, replace(self.settings, feed_urls=(url,)))
            except Exception as exc:
                log.debug("feed %s: unexpected error", url, exc_info=True)
                reports.append(pipeline.FeedReport(url=url, status="error", error=f"unexpected error: {exc!r}"))
        self.health.update(reports)
        daemon_watch.log_check(reports)
        return reports

    def _resume(self) -> None:
        try:
            outcome = pipeline.send_locked(
                self.db,
                self.settings,
                stop=self.stop,
                check=False,
                new_digest=False,
                transport_factory=self.transport_factory,
                progress=daemon_watch.ProgressLog(),
            )
        except Exception as exc:
            # Retried at every check: say so once, not every time.
            level = logging.DEBUG if self._resume_failing else logging.ERROR
            message = str(exc) if isinstance(exc, DigestError) else f"unexpected error: {exc!r}"
            log.log(
                level, "resume: %s; %s", message, self._unfinished_note(), exc_info=not isinstance(exc, DigestError)
            )
            self._resume_failing = True
            return
        if self._resume_failing:
            log.info("resume: sending works again")
        self._resume_failing = False
        self._log_outcome("resume", outcome)

    def _log_outcome(self, what: str, outcome: pipeline.SendOutcome) -> str:
        """Log what the pipeline's own lines do not say; return a one-line summary for `digest status`."""
        if not outcome.digests:
            log.info("%s: nothing new to send; no digest sent", what)
            return "nothing new"
        stopped = self.stop.is_set()
        parts = []
        for r in outcome.digests:
            if r.remaining and stopped:
                log.info(
                    "%s: digest %d stopped with %d subscriber(s) still owed it: resumed at the next start",
                    what,
                    r.digest_id,
                    r.remaining,
                )
            elif r.remaining:
                when = when_text(r.next_retry, self.settings.zone) if r.next_retry else "after the next check"
                log.info(
                    "%s: digest %d: %d subscriber(s) deferred: next retry %s", what, r.digest_id, r.remaining, when
                )
            parts.append(f"digest {r.digest_id} {r.sent} sent, {r.failed} failed, {r.remaining} still owed")
        return ("stopped: " if stopped else "") + "; ".join(parts)

    def _unfinished_ids(self) -> list[int]:
        return [row.id for row in store.unfinished_digests(self.db)]

    def _unfinished_note(self) -> str:
        ids = self._unfinished_ids()
        if not ids:
            return "no digest was started"
        return f"digest {_ids(ids)} stays unfinished and is retried after each check"


def send_trigger(settings: Settings) -> BaseTrigger:
    return schedule.send_trigger(settings.schedule, settings.timezone)


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
    settings: Settings, *, stop: threading.Event | None = None, reload: Callable[[], Settings] | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set). Raises DigestError on a bad start.

    On SIGHUP, ``reload`` (when given) reads the configuration again; a bad one
    is logged in one line and the running one kept.
    """
    settings.require_feeds()
    settings.require_sending()
    send_trigger(settings)  # DIGEST_SCHEDULE in DIGEST_TIMEZONE, before taking the lock
    stop = stop or threading.Event()
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # APScheduler logs every job start and end at INFO; only its problems matter here.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    hangup = threading.Event()
    with sender_lock(settings.db_path, "run"), stop_on_signals(stop, second_ends=True) as signalled, on_hangup(hangup):
        db = store.open_db(settings.db_path)
        web = None
        try:
            web = _start_web(settings)
            daemon = Daemon(settings, db, stop=stop)
            daemon_watch.record_start(db, settings, _utcnow())
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
    daemon.settings = new
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


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
