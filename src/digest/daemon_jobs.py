"""The daemon's jobs: what ``digest run`` does at each check, send, tick and start-up.

daemon.py schedules these on APScheduler; ``Daemon`` is built without a
scheduler so tests can call each job directly with an injected clock. Jobs
share one SQLite connection and never run at the same time (one worker
thread); none lets an exception escape, so one bad run is logged and the
daemon goes on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from apscheduler.triggers.base import BaseTrigger
from sqlite_utils import Database

from digest import daemon_watch, feedcheck, pipeline, schedule, signup, store
from digest.config import Settings
from digest.errors import DigestError
from digest.schedule import next_fire_time, should_catch_up, when_text
from digest.wiring import Wiring

log = logging.getLogger("digest.daemon")  # one name for all the daemon's lines, as before the split

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)  # full precision: fire times fall mid-second


class FeedHealth:
    """Each feed's ok/failing state, kept in memory so a failing feed is logged
    once when it starts failing and once when it recovers, not at every check."""

    def __init__(self) -> None:
        self._failing: dict[str, bool] = {}

    def update(self, reports: Iterable[feedcheck.FeedReport]) -> None:
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


class Daemon:
    """The jobs and what they share. Built without a scheduler so tests can call
    the jobs directly with an injected clock."""

    def __init__(
        self, wiring: Wiring, db: Database, *, stop: threading.Event | None = None, clock: Clock = _utcnow
    ) -> None:
        self.wiring = wiring
        self.db = db
        self.stop = stop or threading.Event()
        self.clock = clock
        self.trigger = send_trigger(wiring.settings)
        self.health = FeedHealth()
        self._resume_failing = False

    @property
    def settings(self) -> Settings:
        return self.wiring.settings

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
            outcome = self._send(new_digest=True)
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

    def check(self) -> list[feedcheck.FeedReport]:
        """Check each feed on its own, so one feed's unexpected error names it and spares the others."""
        reports = []
        for url in self.settings.require_feeds():
            if self.stop.is_set():
                break
            try:
                reports += feedcheck.check_feeds(
                    self.db, self.wiring.with_settings(replace(self.settings, feed_urls=(url,)))
                )
            except Exception as exc:
                log.debug("feed %s: unexpected error", url, exc_info=True)
                reports.append(feedcheck.FeedReport(url=url, status="error", error=f"unexpected error: {exc!r}"))
        self.health.update(reports)
        daemon_watch.log_check(reports)
        return reports

    def _resume(self) -> None:
        try:
            outcome = self._send(new_digest=False)
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

    def _send(self, *, new_digest: bool) -> pipeline.SendOutcome:
        """The daemon's send: under its lock, stopped by its stop event, the feeds already checked, progress logged."""
        return pipeline.send_locked(
            self.db,
            self.wiring,
            stop=self.stop,
            check=False,
            new_digest=new_digest,
            progress=daemon_watch.ProgressLog(),
        )

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


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
