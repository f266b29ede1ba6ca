"""Watching the daemon: heartbeat and schedule in `digest status`, its own log
lines, and deferred deliveries retried by the minute job when they are due.

Jobs are called directly against a real SQLite file and aiosmtpd, with an
injected clock (no sleeping, no timed assertions).
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest import daemon_watch, pipeline, store
from digest.daemon_jobs import Daemon
from digest.lock import sender_lock
from digest.wiring import wire
from helpers import EXAMPLE_FEED, RecordingHandler, add_subscribers, run_cli, running_smtp, settings_from


class Greylist(RecordingHandler):
    """451 to every RCPT of grey@ until ``open`` is set; a full mailbox for full@."""

    open = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if "grey" in address and not self.open:
            return "451 4.7.1 greylisted, come back later"
        if "full" in address:
            return "552 5.2.2 mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def greylist() -> Any:
    with running_smtp(Greylist()) as server:
        yield server


@pytest.fixture
def environ(env: dict[str, str], greylist: Any, tmp_path: Path) -> dict[str, str]:
    feed = tmp_path / "feed.xml"
    shutil.copy(EXAMPLE_FEED, feed)
    environ = {**env, "SMTP_PORT": str(greylist.port), "DIGEST_FEED_URL": str(feed), "DIGEST_SEND_ATTEMPTS": "1"}
    add_subscribers(environ, "ada@example.com", "grey@example.com", "full@example.com")
    return environ


def daemon_at(environ: dict[str, str], now: datetime) -> Daemon:
    settings = settings_from(environ)
    return Daemon(wire(settings), store.open_db(settings.db_path), clock=lambda: now)


def test_the_minute_job_retries_deferred_deliveries_only_when_due(
    environ: dict[str, str], greylist: Any, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    daemon = daemon_at(environ, now)
    try:
        with caplog.at_level(logging.INFO):
            daemon.send_job()
        assert sorted(greylist.handler.recipients()) == ["ada@example.com"]
        assert "2 subscriber(s) deferred: next retry " in caplog.text
        assert "check: 1 feed(s): 3 new entries, 0 not modified, 0 failed" in caplog.text
        assert "digest 1: 3 of 3 (100%): 1 sent, 0 failed, 2 deferred" in caplog.text
        greylist.handler.open = True
        daemon.tick_job()  # not due yet: nothing is tried
        assert sorted(greylist.handler.recipients()) == ["ada@example.com"]
    finally:
        daemon.db.close()
    # A minute and more later (the deferred rows' wait is moved into the past).
    later = daemon_at(environ, now)
    try:
        past = store.to_text(datetime.now(UTC) - timedelta(seconds=1))
        later.db.execute("UPDATE deliveries SET next_attempt = ? WHERE status = 'deferred'", [past])
        later.tick_job()
        # Greylisting passed; a full mailbox stays deferred (soft), never bounced.
        assert sorted(greylist.handler.recipients()) == ["ada@example.com", "grey@example.com"]
        full = store.get_state(later.db, daemon_watch.HEARTBEAT)
        assert full is not None
    finally:
        later.db.close()
    status = run_cli(["status"], environ)
    assert "0 failed, 1 deferred" in status.output
    assert "Subscribers: 3 active" in status.output


def test_status_shows_the_running_daemons_schedule_and_heartbeat(environ: dict[str, str]) -> None:
    never = run_cli(["status"], environ)
    assert "Daemon last seen: never" in never.output
    settings = settings_from({**environ, "DIGEST_SCHEDULE": "every 6h"})
    db = store.open_db(settings.db_path)
    try:
        daemon_watch.record_start(db, settings, datetime.now(UTC) - timedelta(minutes=2))
    finally:
        db.close()
    # A daemon holds the lock: status shows *its* schedule, not this shell's.
    with sender_lock(settings.db_path, "run"):
        running = run_cli(["status"], environ)
    assert "Daemon schedule: 'every 6h' (UTC), pid " in running.output
    assert "heartbeat 2 min ago" in running.output
    assert "Warning: the running daemon's last heartbeat was 2 min ago" not in running.output
    stopped = run_cli(["status"], environ)
    assert "Daemon last seen: 2 min ago ('every 6h' (UTC), pid " in stopped.output
    assert "the schedule does nothing until `digest run` runs again" in stopped.output


def test_progress_is_logged_every_tenth_or_thirty_seconds(caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter([0.0, 1.0, 2.0, 40.0, 41.0])
    progress = daemon_watch.ProgressLog(clock=lambda: next(ticks))
    report = pipeline.SendReport(digest_id=7, subject="s", entries=1, resumed=False)
    with caplog.at_level(logging.INFO, logger="digest.daemon"):
        for sent in (1, 5, 10, 11, 12):
            report.sent = sent
            progress(report, 100)
    lines = [r.getMessage() for r in caplog.records]
    # 10 of 100 is the first tenth; at 40 s the 30-second rule logs 11; 12 is neither.
    assert lines == ["digest 7: 10 of 100 (10%): 10 sent, 0 failed, 0 deferred",
                     "digest 7: 11 of 100 (11%): 11 sent, 0 failed, 0 deferred"]  # fmt: skip


def test_scheduler_warnings_are_said_in_digests_words(caplog: pytest.LogCaptureFixture) -> None:
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent, JobSubmissionEvent
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(print, "interval", minutes=5, id="check", name="check")
    daemon_watch.replace_scheduler_warnings(scheduler, lambda job_id: "08:30")
    due = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    with caplog.at_level(logging.INFO, logger="digest.daemon"):
        scheduler._dispatch_event(JobExecutionEvent(EVENT_JOB_MISSED, "check", "default", due))
        scheduler._dispatch_event(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "check", "default", [due]))
    lines = [r.getMessage() for r in caplog.records if r.name == "digest.daemon"]
    assert lines == [
        "check: skipped, it could not start in time (due at 2026-12-02T08:00:00+00:00) "
        "(the machine was asleep or busy); next at 08:30",
        "check: not started, the previous job is still running (a long send or check); next at 08:30",
    ]
    # APScheduler's own lines about the same events are silenced.
    assert logging.getLogger("apscheduler.scheduler").getEffectiveLevel() == logging.ERROR
    for name in ("apscheduler.scheduler", "apscheduler.executors"):
        logging.getLogger(name).setLevel(logging.NOTSET)  # leave logging as other tests expect it
