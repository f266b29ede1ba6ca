"""The daemon (``digest run``): APScheduler 3.x jobs that call the pipeline.

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

import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlite_utils import Database

from digest import daemon_watch, pipeline, store
from digest.config import Settings
from digest.errors import ConfigError, DigestError
from digest.lock import lock_path, sender_lock
from digest.mailer import TransportFactory
from digest.schedule import next_fire_time, parse_schedule
from digest.web import UnsubscribeServer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# State keys (store.get_state/set_state): a scheduled send that found nothing
# new creates no digest row, yet it did happen and must not be "caught up".
LAST_SEND_RUN = "daemon.last_send_run"
LAST_SEND_OUTCOME = "daemon.last_send_outcome"

# How often the main loop nudges the scheduler to re-read the wall clock.
WAKEUP_SECONDS = 60.0


def _utcnow() -> datetime:
    return datetime.now(UTC)  # full precision: fire times fall mid-second


# --- pure decisions ----------------------------------------------------------------


def should_catch_up(trigger: BaseTrigger, last_send: datetime | None, now: datetime) -> bool:
    """Whether the schedule had a send time in (last_send, now]: a send was missed.

    ``last_send`` None means a brand-new database that never sent: nothing was
    missed, and the first digest waits for the first scheduled time.
    """
    if last_send is None:
        return False
    if isinstance(trigger, IntervalTrigger):
        # An interval counts from the daemon's start, so measure from the last send.
        return bool(last_send + trigger.interval <= now)
    fire = next_fire_time(trigger, last_send)
    return fire is not None and fire <= now


def last_send_reference(db: Database) -> datetime | None:
    """When a send last happened: the latest digest created or finished, or scheduled send run."""
    known = store.last_digest_activity(db)
    ran = store.from_text(store.get_state(db, LAST_SEND_RUN))
    if ran is not None:
        known.append(ran)
    return max(known) if known else None


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
        last = last_send_reference(self.db)
        if should_catch_up(self.trigger, last, self.clock()):
            log.info("start-up: a scheduled send was missed since %s: sending once now", _when(last, self.settings))
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
            outcome = pipeline.send_locked(self.db, self.settings, stop=self.stop, check=False,
                                           transport_factory=self.transport_factory,
                                           progress=daemon_watch.ProgressLog())  # fmt: skip
        except DigestError as exc:
            summary = f"failed: {exc}"
            log.error("send (%s): %s; %s", reason, exc, self._unfinished_note())
        except Exception:
            summary = "failed: unexpected error (see the log)"
            log.exception("send (%s): unexpected error; %s", reason, self._unfinished_note())
        else:
            summary = self._log_outcome(f"send ({reason})", outcome)
        if not summary.startswith("stopped"):
            store.set_state(self.db, LAST_SEND_RUN, store.to_text(started) or "")
            store.set_state(self.db, LAST_SEND_OUTCOME, summary)
        upcoming = next_fire_time(self.trigger, self.clock())
        if upcoming is not None and not self.stop.is_set():
            log.info("send: next at %s", _when(upcoming, self.settings))

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
            outcome = pipeline.send_locked(self.db, self.settings, stop=self.stop, check=False, new_digest=False,
                                           transport_factory=self.transport_factory,
                                           progress=daemon_watch.ProgressLog())  # fmt: skip
        except Exception as exc:
            # Retried at every check: say so once, not every time.
            level = logging.DEBUG if self._resume_failing else logging.ERROR
            message = str(exc) if isinstance(exc, DigestError) else f"unexpected error: {exc!r}"
            log.log(level, "resume: %s; %s", message, self._unfinished_note(),
                    exc_info=not isinstance(exc, DigestError))  # fmt: skip
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
                log.info("%s: digest %d stopped with %d subscriber(s) still owed it: resumed at the next start",
                         what, r.digest_id, r.remaining)  # fmt: skip
            elif r.remaining:
                when = _when(r.next_retry, self.settings) if r.next_retry else "after the next check"
                log.info("%s: digest %d: %d subscriber(s) deferred: next retry %s",
                         what, r.digest_id, r.remaining, when)  # fmt: skip
            parts.append(f"digest {r.digest_id} {r.sent} sent, {r.failed} failed, {r.remaining} still owed")
        return ("stopped: " if stopped else "") + "; ".join(parts)

    def _unfinished_ids(self) -> list[int]:
        return [int(row["id"]) for row in store.unfinished_digests(self.db)]

    def _unfinished_note(self) -> str:
        ids = self._unfinished_ids()
        if not ids:
            return "no digest was started"
        return f"digest {_ids(ids)} stays unfinished and is retried after each check"


def send_trigger(settings: Settings) -> BaseTrigger:
    try:
        return parse_schedule(settings.schedule, settings.timezone)
    except ValueError as exc:
        raise ConfigError(f"DIGEST_SCHEDULE: {exc}") from None


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
    scheduler.add_job(daemon.check_job, check_trigger(settings), id="check", name="check",
                      misfire_grace_time=max(1, int(settings.check_interval)), **once)  # fmt: skip
    scheduler.add_job(daemon.send_job, daemon.trigger, id="send", name="send", misfire_grace_time=None, **once)
    if settings.bounce_imap_host:
        every = IntervalTrigger(seconds=settings.bounce_interval, timezone=settings.zone)
        scheduler.add_job(daemon.bounce_job, every, id="bounces", name="bounces",
                          misfire_grace_time=max(1, int(settings.bounce_interval)), **once)  # fmt: skip
    every_minute = IntervalTrigger(seconds=daemon_watch.HEARTBEAT_SECONDS, timezone=settings.zone)
    scheduler.add_job(daemon.tick_job, every_minute, id="tick", name="heartbeat and retries",
                      misfire_grace_time=daemon_watch.HEARTBEAT_SECONDS, **once)  # fmt: skip

    def next_run(job_id: str) -> str:
        job = scheduler.get_job(job_id)
        return _when(job.next_run_time, daemon.settings) if job and job.next_run_time else "never"

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
    with sender_lock(settings.db_path, "run"), _signals_set(stop) as received, _hangup_sets(hangup):
        db = store.open_db(settings.db_path)
        web = None
        try:
            web = _start_web(settings)
            daemon = Daemon(settings, db, stop=stop)
            daemon_watch.record_start(db, settings, _utcnow())
            scheduler = build_scheduler(daemon)
            log.info("digest run started (pid %d): database %s; checks every %s; sends on %r (%s)",
                     os.getpid(), settings.db_path, _duration(settings.check_interval),
                     settings.schedule, settings.timezone)  # fmt: skip
            scheduler.start()
            try:
                for job_id in ("check", "send"):
                    job = scheduler.get_job(job_id)
                    when = _when(job.next_run_time, settings) if job and job.next_run_time else "never"
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
                log.info("%s: stopping (finishing the messages in flight)", received[0] if received else "stop")
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
    log.info("SIGHUP: configuration reloaded; checks every %s; sends on %r (%s)",
             _duration(new.check_interval), new.schedule, new.timezone)  # fmt: skip


@contextmanager
def _hangup_sets(event: threading.Event) -> Iterator[None]:
    """While inside, SIGHUP sets ``event`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        yield
        return
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextmanager
def _signals_set(stop: threading.Event) -> Iterator[list[str]]:
    """While inside, SIGTERM and SIGINT set ``stop``; a second signal ends the
    process at once (safe: every accepted message is already recorded). Yields
    the list that receives the name of the signal."""
    received: list[str] = []
    signums = (signal.SIGTERM, signal.SIGINT)

    def handle(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        for each in signums:
            signal.signal(each, signal.SIG_DFL)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield received  # only the main thread may set handlers (tests run the daemon in a thread)
        return
    previous = {signum: signal.signal(signum, handle) for signum in signums}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start_web(settings: Settings) -> UnsubscribeServer | None:
    if settings.http_listen is None:
        return None
    server = UnsubscribeServer(settings, settings.db_path)
    server.start()  # logs the address; a port in use is a DigestError (exit 1)
    return server


# --- for `digest status` --------------------------------------------------------------------


def daemon_holder(db_path: Path) -> str | None:
    """Who holds the sender lock right now (e.g. a running daemon), or None.

    Probes with a shared lock taken and dropped at once; the lock file's text
    alone could be left over from a process killed with -9.
    """
    path = lock_path(db_path)
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def schedule_status(settings: Settings, db: Database, now: datetime) -> list[str]:
    """The scheduling lines of `digest status`: whether the daemon runs, its next
    check and send (computed from the settings), the last scheduled send."""
    holder = daemon_holder(settings.db_path)
    running = holder is not None and holder.startswith("digest run")
    if running:
        lines = [f"Daemon: running: {holder}"]
    else:
        lines = [f"Daemon: not running{f' (the database is in use by {holder})' if holder else ''}"]
    lines += daemon_watch.status_lines(db, running, now)
    trigger = send_trigger(settings)  # an invalid schedule is a ConfigError (exit 2) here too
    every = _duration(settings.check_interval)
    lines.append(f"Schedule: send on {settings.schedule!r} ({settings.timezone}); check every {every}")
    last_send = last_send_reference(db)
    if not running and should_catch_up(trigger, last_send, now):
        next_send = "as soon as the daemon starts (a scheduled send was missed)"
    elif isinstance(trigger, IntervalTrigger):
        # Interval slots count from the daemon's start, which status cannot know.
        interval = _duration(trigger.interval.total_seconds())
        next_send = f"about {_when(last_send + trigger.interval, settings)}" if last_send else (
            f"{interval} after the daemon starts")  # fmt: skip
    else:
        upcoming = next_fire_time(trigger, now)
        next_send = _when(upcoming, settings) if upcoming else "never"
        if not running:
            next_send += " (if the daemon runs by then)"
    lines.append(f"Next send: {next_send}")
    last_check = store.last_feed_check(db)
    last = f" (last {_when(last_check, settings)})" if last_check else ""
    if not running:
        lines.append(f"Next check: when the daemon starts{last}")
    else:
        due = (last_check or now) + timedelta(seconds=settings.check_interval)
        lines.append(f"Next check: {_when(due, settings) if due > now else 'due now'}{last}")
    ran = store.get_state(db, LAST_SEND_RUN)
    if ran:
        outcome = store.get_state(db, LAST_SEND_OUTCOME) or "-"
        lines.append(f"Last scheduled send: {_when(store.from_text(ran), settings)}: {outcome}")
    return lines


# --- formatting ----------------------------------------------------------------------------


def _when(moment: datetime | None, settings: Settings) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
