"""The daemon's jobs called directly (no scheduler, no sleeping), against a real
SQLite file, a real feed file and aiosmtpd; time decisions use an injected clock."""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest import store
from digest.daemon import build_scheduler
from digest.daemon_jobs import Daemon, send_trigger
from digest.daemon_watch import LAST_SEND_OUTCOME, LAST_SEND_RUN
from digest.lock import sender_lock
from digest.schedule import next_fire_time
from digest.wiring import wire
from helpers import EXAMPLE_FEED, SmtpServer, add_subscribers, run_cli, settings_from

SUBSCRIBERS = ["ada@example.com", "grace@example.net", "linus@example.org"]
NEW_TITLE = "A post published while the daemon waited"


def feed_with_new_entry(source: Path, target: Path) -> None:
    """The example feed plus one newer entry at the top."""
    entry = f"""<entry>
    <title>{NEW_TITLE}</title>
    <link href="https://fieldnotes.example.org/2026/11/20/new/" rel="alternate" type="text/html"/>
    <id>https://fieldnotes.example.org/2026/11/20/new</id>
    <published>2026-11-20T09:00:00+00:00</published>
    <updated>2026-11-20T09:00:00+00:00</updated>
    <content type="html">&lt;p&gt;Fresh.&lt;/p&gt;</content>
  </entry>
  <entry>"""
    target.write_text(source.read_text(encoding="utf-8").replace("<entry>", entry, 1), encoding="utf-8")


@pytest.fixture
def feed_file(tmp_path: Path) -> Path:
    path = tmp_path / "feed.xml"
    shutil.copy(EXAMPLE_FEED, path)
    return path


@pytest.fixture
def daemon_env(smtp_env: dict[str, str], feed_file: Path) -> dict[str, str]:
    environ = {**smtp_env, "DIGEST_FEED_URL": str(feed_file), "DIGEST_SCHEDULE": "30 4 * * *"}
    add_subscribers(environ, *SUBSCRIBERS)
    return environ


def make_daemon(environ: dict[str, str], clock: datetime | None = None) -> Daemon:
    settings = settings_from(environ)
    db = store.open_db(settings.db_path)
    return Daemon(wire(settings), db, clock=(lambda: clock) if clock else lambda: datetime.now(UTC))


def backdate_digests(environ: dict[str, str], when: datetime) -> None:
    db = store.open_db(settings_from(environ).db_path)
    try:
        db.execute("UPDATE digests SET created = ?, started_at = ?, finished_at = ?", [store.to_text(when)] * 3)
    finally:
        db.close()


def test_scheduled_send_with_nothing_new_sends_nothing_and_says_so(
    daemon_env: dict[str, str], smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = make_daemon(daemon_env)
    try:
        daemon.send_job()
        assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)

        caplog.clear()
        with caplog.at_level(logging.INFO):
            daemon.send_job()

        assert len(smtp_server.received) == len(SUBSCRIBERS)
        assert "send (scheduled): nothing new to send; no digest sent" in caplog.messages
        assert store.get_state(daemon.db, LAST_SEND_OUTCOME) == "nothing new"
        assert store.get_state(daemon.db, LAST_SEND_RUN) is not None
    finally:
        daemon.db.close()


def test_start_up_sends_once_when_slots_were_missed(
    daemon_env: dict[str, str], smtp_server: SmtpServer, feed_file: Path
) -> None:
    assert run_cli(["send"], daemon_env).exit_code == 0
    backdate_digests(daemon_env, datetime.now(UTC) - timedelta(days=3))  # three daily slots missed since
    feed_with_new_entry(EXAMPLE_FEED, feed_file)
    before = len(smtp_server.received)
    status = run_cli(["status"], daemon_env).output
    assert "Next send: as soon as the daemon starts (a scheduled send was missed)" in status

    daemon = make_daemon(daemon_env)
    try:
        daemon.startup_job()
    finally:
        daemon.db.close()
    again = make_daemon(daemon_env)  # a restart right after: the catch-up is recorded
    try:
        again.startup_job()
        digests = again.db.execute("SELECT COUNT(*) FROM digests").fetchone()[0]
    finally:
        again.db.close()

    caught_up = smtp_server.received[before:]
    assert Counter(r.rcpt_tos[0] for r in caught_up) == Counter(SUBSCRIBERS)
    assert all(NEW_TITLE in r.part("html") for r in caught_up)
    assert digests == 2


def test_start_up_does_not_send_when_the_last_send_followed_the_last_slot(
    daemon_env: dict[str, str], smtp_server: SmtpServer, feed_file: Path
) -> None:
    assert run_cli(["send"], daemon_env).exit_code == 0
    slot = next_fire_time(send_trigger(settings_from(daemon_env)), datetime.now(UTC))
    assert slot is not None
    backdate_digests(daemon_env, slot - timedelta(days=1) + timedelta(minutes=5))  # after yesterday's slot
    feed_with_new_entry(EXAMPLE_FEED, feed_file)
    before = len(smtp_server.received)

    daemon = make_daemon(daemon_env, clock=slot - timedelta(seconds=1))  # just before today's slot
    try:
        daemon.startup_job()
        pending = store.pending_count(daemon.db)
    finally:
        daemon.db.close()

    assert len(smtp_server.received) == before
    assert pending == 1  # the start-up check recorded it; it waits for the slot


def test_brand_new_database_start_up_only_checks(daemon_env: dict[str, str], smtp_server: SmtpServer) -> None:
    daemon = make_daemon(daemon_env)
    try:
        daemon.startup_job()
        pending = store.pending_count(daemon.db)
    finally:
        daemon.db.close()
    assert smtp_server.received == []
    assert pending == 3  # the first-run policy picked the newest three; they wait for the first slot


def test_failing_feed_is_logged_once_per_state_change(
    daemon_env: dict[str, str], feed_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saved = feed_file.read_bytes()
    feed_file.unlink()
    daemon = make_daemon(daemon_env)
    try:
        with caplog.at_level(logging.INFO, logger="digest"):
            for _ in range(3):
                daemon.check_job()
            feed_file.write_bytes(saved)
            for _ in range(2):
                daemon.check_job()
            feed_file.unlink()
            daemon.check_job()
    finally:
        daemon.db.close()

    about_feed = [r for r in caplog.records if str(feed_file) in r.getMessage()]
    failing = [r for r in about_feed if ": failing: " in r.getMessage()]  # the tmp path says "failing" too
    recovered = [r for r in about_feed if r.getMessage().endswith(": recovered")]
    assert len(failing) == 2 and all(r.levelno == logging.WARNING for r in failing)
    assert len(recovered) == 1


def test_failed_send_is_logged_with_the_digest_and_retried_after_a_check(
    daemon_env: dict[str, str], smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = {**daemon_env, "SMTP_PORT": "9", "DIGEST_SEND_ATTEMPTS": "1"}
    down = make_daemon(unreachable)
    try:
        with caplog.at_level(logging.INFO, logger="digest"):
            down.send_job()  # must not raise: the daemon keeps running
    finally:
        down.db.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(re.search(r"send \(scheduled\): .*digest 1 stays unfinished", m) for m in errors), errors
    assert smtp_server.received == []

    up = make_daemon(daemon_env)
    try:
        up.check_job()
        status = up.db.execute("SELECT status FROM digests WHERE id = 1").fetchone()[0]
    finally:
        up.db.close()
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    assert status == "sent"


def test_jobs_do_nothing_once_stop_is_set(daemon_env: dict[str, str], smtp_server: SmtpServer) -> None:
    daemon = make_daemon(daemon_env)
    try:
        daemon.stop.set()
        daemon.startup_job()
        daemon.send_job()
        daemon.check_job()
        feeds = daemon.db.execute("SELECT COUNT(*) FROM feeds").fetchone()[0]
    finally:
        daemon.db.close()
    assert smtp_server.received == [] and feeds == 0


def test_status_shows_the_next_check_and_send_and_the_last_scheduled_send(
    daemon_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    daemon = make_daemon(daemon_env)
    try:
        daemon.send_job()
    finally:
        daemon.db.close()
    settings = settings_from(daemon_env)
    slot = next_fire_time(send_trigger(settings), datetime.now(UTC))
    assert slot is not None

    result = run_cli(["status"], daemon_env)

    assert result.exit_code == 0, result.output
    assert "Daemon: not running" in result.output
    assert f"Next send: {slot:%Y-%m-%d %H:%M:%S} UTC" in result.output
    assert "Next check: when the daemon starts (last " in result.output
    assert "Last scheduled send: " in result.output and "digest 1 3 sent, 0 failed" in result.output

    with sender_lock(settings.db_path, "run"):
        running = run_cli(["status"], daemon_env)
    assert re.search(r"Daemon: running: digest run \(pid \d+ ", running.output), running.output
    assert f"Next send: {slot:%Y-%m-%d %H:%M:%S} UTC\n" in running.output
    assert re.search(r"Next check: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC|due now) \(last ", running.output)


def test_jobs_coalesce_run_one_at_a_time_and_a_late_send_still_happens(daemon_env: dict[str, str]) -> None:
    daemon = make_daemon({**daemon_env, "DIGEST_CHECK_INTERVAL": "10m"})
    try:
        scheduler = build_scheduler(daemon)
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        daemon.db.close()
    assert set(jobs) == {"startup", "check", "send", "tick"}
    assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
    assert jobs["send"].misfire_grace_time is None  # however late, once
    assert jobs["check"].misfire_grace_time == 600  # a check later than the next one is dropped
    assert jobs["send"].trigger is daemon.trigger


def test_unexpected_error_in_a_job_is_logged_with_the_digest_and_does_not_escape(
    daemon_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenTransport:
        """A mailer.Transport with a bug in send (a fake: no subclassing, no server)."""

        where = "SMTP broken:25"
        connected = True

        def connect(self) -> None:
            pass

        def send(self, sender: str, message: Any, meanwhile: Any = None, ahead: Any = None) -> None:
            raise RuntimeError("a bug in the transport")

        def reset(self) -> None:
            pass

        def close(self) -> None:
            pass

    settings = settings_from(daemon_env)
    daemon = Daemon(wire(settings, transport=BrokenTransport), store.open_db(settings.db_path))
    try:
        with caplog.at_level(logging.INFO, logger="digest"):
            daemon.send_job()
            daemon.check_job()  # the retry fails the same way: logged once more at most, at debug
    finally:
        daemon.db.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2, [r.getMessage() for r in errors]  # the send, then the first retry
    assert "unexpected error; digest 1 stays unfinished" in errors[0].getMessage()
    assert errors[0].exc_info is not None  # a bug keeps its traceback in the log
