"""The ``digest status`` use case: what the database and the daemon say, as a StatusReport.

:func:`build_status` reads everything in one pass over the database (feeds,
pending entries, the daemon's record and the sender lock, subscribers,
bounce rates, recent digests) and returns a :class:`StatusReport`; the CLI
only prints its ``lines()`` or its ``as_json()``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from digest import bounceprocess, daemon_watch, store
from digest.config import Settings
from digest.lock import lock_holder
from digest.models import DigestSummary, FeedStatus
from digest.schedule import duration_text, next_fire_time, send_trigger, should_catch_up, when_text


@dataclass
class StatusReport:
    settings: Settings
    exists: bool  # False: no database yet, every other field is empty
    feeds: list[FeedStatus] = field(default_factory=list)
    pending: int = 0
    holder: str | None = None  # who holds the sender lock
    schedule_lines: list[str] = field(default_factory=list)
    subscribers: dict[str, int] = field(default_factory=dict)
    bounce_rates: list[str] = field(default_factory=list)
    digests: list[DigestSummary] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.settings.db_path

    def as_json(self) -> dict[str, Any]:
        if not self.exists:
            return {"database": str(self.database), "exists": False}
        settings = self.settings
        daemon = {
            "holder": self.holder,
            "schedule": settings.schedule,
            "timezone": settings.timezone,
            "check_interval_seconds": settings.check_interval,
            "lines": self.schedule_lines,
        }
        return {
            "database": str(self.database),
            "exists": True,
            "feeds": [asdict(feed) for feed in self.feeds],
            "pending_entries": self.pending,
            "daemon": daemon,
            "subscribers": self.subscribers,
            "digests": [asdict(digest) for digest in self.digests],
            "bounce_rates": self.bounce_rates,
        }

    def lines(self) -> list[str]:
        if not self.exists:
            return [f"No database yet at {self.database}: run `digest check` or `digest send` first."]
        lines = [f"Database: {self.database}", "Feeds:"]
        for feed in self.feeds:
            lines += _feed_lines(feed, self.settings)
        lines.append(f"Pending entries: {self.pending}")
        lines += self.schedule_lines
        lines.append("Subscribers: " + ", ".join(f"{n} {s}" for s, n in self.subscribers.items()))
        lines += self.bounce_rates
        lines.append("Recent digests:")
        if not self.digests:
            lines.append("  none yet")
        for row in self.digests:
            lines += _digest_lines(row)
        return lines


def build_status(settings: Settings) -> StatusReport:
    if not settings.db_path.exists():
        return StatusReport(settings, exists=False)
    with store.opened(settings.db_path) as db:
        holder = lock_holder(settings.db_path)
        return StatusReport(
            settings,
            exists=True,
            feeds=store.feed_rows(db),
            pending=store.pending_count(db),
            holder=holder,
            schedule_lines=schedule_status(settings, db, store.utcnow(), holder),
            subscribers=store.status_counts(db),
            bounce_rates=bounceprocess.rate_lines(db),
            digests=summary_rows(db),
        )


def summary_rows(db: Database, limit: int = 10) -> list[DigestSummary]:
    """Recent digests with their delivery counts, newest first.

    ``pending`` is what an unfinished digest still owes (0 once it is sent);
    ``failures`` lists failed and deferred deliveries with the server's reply.
    """
    return [
        replace(
            row,
            pending=store.count_undelivered(db, row.id) if row.status in ("pending", "sending") else 0,
            failures=tuple(store.failed_deliveries(db, row.id)) if row.failed or row.deferred else (),
        )
        for row in store.recent_digests(db, limit)
    ]


def _daemon_line(holder: str | None, running: bool) -> str:
    if running:
        return f"Daemon: running: {holder}"
    return f"Daemon: not running{f' (the database is in use by {holder})' if holder else ''}"


def _next_send(settings: Settings, db: Database, now: datetime, running: bool) -> str:
    from apscheduler.triggers.interval import IntervalTrigger

    trigger = send_trigger(settings.schedule, settings.timezone)  # an invalid schedule: ConfigError, exit 2
    last_send = daemon_watch.last_send_reference(db)
    if not running and should_catch_up(trigger, last_send, now):
        return "as soon as the daemon starts (a scheduled send was missed)"
    if isinstance(trigger, IntervalTrigger):
        # Interval slots count from the daemon's start, which status cannot know.
        if last_send:
            return f"about {when_text(last_send + trigger.interval, settings.zone)}"
        return f"{duration_text(trigger.interval.total_seconds())} after the daemon starts"
    upcoming = next_fire_time(trigger, now)
    next_send = when_text(upcoming, settings.zone) if upcoming else "never"
    return next_send if running else next_send + " (if the daemon runs by then)"


def _next_check(settings: Settings, db: Database, now: datetime, running: bool) -> str:
    last_check = store.last_feed_check(db)
    last = f" (last {when_text(last_check, settings.zone)})" if last_check else ""
    if not running:
        return f"Next check: when the daemon starts{last}"
    due = (last_check or now) + timedelta(seconds=settings.check_interval)
    return f"Next check: {when_text(due, settings.zone) if due > now else 'due now'}{last}"


def schedule_status(settings: Settings, db: Database, now: datetime, holder: str | None) -> list[str]:
    """The scheduling lines: whether the daemon runs, its next check and send
    (computed from the settings), the last scheduled send."""
    running = holder is not None and holder.startswith("digest run")
    lines = [_daemon_line(holder, running), *daemon_watch.status_lines(db, running, now)]
    every = duration_text(settings.check_interval)
    lines.append(f"Schedule: send on {settings.schedule!r} ({settings.timezone}); check every {every}")
    lines.append(f"Next send: {_next_send(settings, db, now, running)}")
    lines.append(_next_check(settings, db, now, running))
    ran = store.get_state(db, daemon_watch.LAST_SEND_RUN)
    if ran:
        outcome = store.get_state(db, daemon_watch.LAST_SEND_OUTCOME) or "-"
        lines.append(f"Last scheduled send: {when_text(store.from_text(ran), settings.zone)}: {outcome}")
    return lines


def _feed_lines(feed: FeedStatus, settings: Settings) -> list[str]:
    name = feed.title or feed.url
    if feed.status == "gone":
        head = f"  {name}: GONE (HTTP 410 at {feed.last_checked}): no longer fetched; remove it from DIGEST_FEED_URL"
    else:
        checked = f"last checked {feed.last_checked or 'never'} ({feed.last_status or '-'})"
        head = f"  {name}: {checked}, {feed.pending} pending"
    lines = [head, f"    {feed.url}"]
    if feed.fetch_url:
        lines.append(f"    moved permanently: fetched from {feed.fetch_url} (update DIGEST_FEED_URL)")
    if feed.last_error and feed.status != "gone":
        lines.append(f"    last error: {feed.last_error}")
    if settings.feed_urls and feed.url not in settings.feed_urls:
        lines.append("    (no longer in DIGEST_FEED_URL)")
    return lines


def _digest_lines(row: DigestSummary) -> list[str]:
    tally = f"{row.sent} sent, {row.failed} failed, {row.deferred} deferred"
    if row.status in ("pending", "sending"):
        tally += f", {row.pending} pending"
    lines = [f"  #{row.id} {row.created} {row.status}: {row.subject!r} ({row.entry_count} entries; {tally})"]
    for failure in row.failures:
        attempts = f"after {failure.attempts} attempt(s)"
        lines.append(f"      {failure.status}: {failure.email} {attempts}: {failure.last_error or 'no reply'}")
    if len(row.failures) < row.failed + row.deferred:
        lines.append(f"      ... {row.failed + row.deferred - len(row.failures)} more")
    return lines
