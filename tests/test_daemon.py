"""`digest run` as a real subprocess: a local HTTP feed, aiosmtpd, a seconds-level schedule.

The tests synchronise on the daemon's log lines and poll with generous
deadlines that only bound a failure; nothing asserts how long anything took.
Every daemon is killed in a finally block so a failing test cannot hang.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    FeedHost,
    FeedResource,
    RecordingHandler,
    SmtpServer,
    add_subscribers,
    free_port,
    run_cli,
    start_smtp,
    wait_until,
)

pytestmark = pytest.mark.slow

DEADLINE = 30.0  # seconds; only bounds a failure
SMTP_PASSWORD = "smtp-pw-Zq8xK2vNotInLogs"
SECRET = "digest-secret-W7pLm3NotInLogs"
SUBSCRIBERS = ["ada@example.com", "grace@example.net", "linus@example.org"]


# --- a feed we can publish to -----------------------------------------------------------


def atom(titles: list[str]) -> bytes:
    """An Atom feed with one entry per title, newest first (the last title is the oldest)."""
    entries = []
    for number, title in enumerate(titles):
        day = 20 - number
        slug = re.sub(r"\W+", "-", title.lower()).strip("-")
        entries.append(f"""<entry><title>{title}</title>
  <link href="https://blog.example.org/{slug}/" rel="alternate"/><id>https://blog.example.org/{slug}</id>
  <published>2026-11-{day:02d}T09:00:00+00:00</published><updated>2026-11-{day:02d}T09:00:00+00:00</updated>
  <content type="html">&lt;p&gt;About {title}.&lt;/p&gt;</content></entry>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Test Blog</title>
<link href="https://blog.example.org/" rel="alternate"/><id>https://blog.example.org/feed.xml</id>
<updated>2026-11-20T09:00:00+00:00</updated><author><name>Tester</name></author>
{"".join(entries)}</feed>""".encode()


FIRST_POSTS = ["Third post", "Second post", "First post"]


def publish(feed_host: FeedHost, titles: list[str]) -> None:
    feed_host.resources["/feed.xml"] = FeedResource(atom(titles), content_type="application/atom+xml")


# --- the daemon process ---------------------------------------------------------------------


class Daemon:
    """One `python -m digest run` subprocess with its stderr in a file."""

    def __init__(self, environ: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_"))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digest", *args, "run"],
            env={**full_env, **environ},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log))

    def wait_for_log(self, pattern: str, times: int = 1) -> None:
        self.wait_until(lambda: self.count(pattern) >= times, f"{times}x {pattern!r} in the daemon log")

    def wait_until(self, condition: Callable[[], object], what: str) -> None:
        """Poll for ``condition``, failing at once (with the log) if the daemon exits first."""

        def exited() -> str | None:
            code = self.process.poll()
            return None if code is None else f"daemon exited ({code})"

        wait_until(condition, what, timeout=DEADLINE, interval=0.05, gave_up=exited, details=lambda: self.log)

    def stop(self, signum: int | None = signal.SIGTERM) -> int:
        """Signal (unless ``signum`` is None: already signalled), wait for the exit; returns the exit code."""
        if signum is not None and self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=DEADLINE)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)
        self._log.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(environ: dict[str, str], *args: str) -> Daemon:
        daemon = Daemon(environ, tmp_path / f"daemon-{len(started)}.log", *args)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.kill()


@pytest.fixture
def daemon_env(smtp_env: dict[str, str], feed_host: FeedHost) -> dict[str, str]:
    publish(feed_host, FIRST_POSTS)
    return {
        **smtp_env,
        "DIGEST_FEED_URL": feed_host.url("/feed.xml"),
        "DIGEST_SCHEDULE": "every 2s",
        "DIGEST_CHECK_INTERVAL": "1s",
        "DIGEST_SECRET": SECRET,
        "SMTP_PASSWORD": SMTP_PASSWORD,  # unused without SMTP_USERNAME; must still never be logged
        "SMTP_TIMEOUT": "20s",
    }


NOTHING_NEW = r"send \(scheduled\): nothing new to send"


def copies(server: SmtpServer, title: str | None = None) -> Counter[str]:
    """How many messages each address received (containing ``title`` when given)."""
    return Counter(
        rcpt for r in list(server.received) if title is None or title in r.part("html") for rcpt in r.rcpt_tos
    )


# --- the tests ------------------------------------------------------------------------------------


def test_new_entry_arrives_once_and_no_new_entry_sends_nothing(
    daemon_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost, daemons: Callable[..., Daemon]
) -> None:
    add_subscribers(daemon_env, *SUBSCRIBERS)
    daemon = daemons({**daemon_env, "DIGEST_LOG_LEVEL": "DEBUG"})

    # The first scheduled send: the first-run digest (every post, there are only three).
    daemon.wait_until(lambda: copies(smtp_server) == Counter(SUBSCRIBERS), "the first digest")
    daemon.wait_for_log(NOTHING_NEW)  # a later slot passed with nothing new...
    assert copies(smtp_server) == Counter(SUBSCRIBERS)  # ...and sent nothing

    publish(feed_host, ["Fourth post", *FIRST_POSTS])
    daemon.wait_until(lambda: copies(smtp_server, "Fourth post") == Counter(SUBSCRIBERS), "the new post")
    seen = daemon.count(NOTHING_NEW)
    daemon.wait_for_log(NOTHING_NEW, times=seen + 1)

    assert daemon.stop() == 0
    assert copies(smtp_server) == Counter({address: 2 for address in SUBSCRIBERS})
    assert copies(smtp_server, "Fourth post") == Counter(SUBSCRIBERS)
    for received in smtp_server.received:
        if "Fourth post" in received.part("html"):
            assert "Third post" not in received.part("html")  # an entry is in exactly one digest
    log = daemon.log
    assert "digest run stopped" in log
    assert SMTP_PASSWORD not in log and SECRET not in log
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line) for line in log.splitlines()), log


class GatedHandler(RecordingHandler):
    """Accepts ``open_for`` messages at once; later ones wait until ``gate`` is set."""

    def __init__(self, open_for: int) -> None:
        super().__init__()
        self.open_for = open_for
        self.arrived = 0
        self.gate = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.arrived += 1
            held = self.arrived > self.open_for
        while held and not self.gate.is_set():
            await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


def test_sigterm_mid_send_then_restart_delivers_each_subscriber_exactly_once(
    daemon_env: dict[str, str], feed_host: FeedHost, daemons: Callable[..., Daemon]
) -> None:
    handler = GatedHandler(open_for=10)
    smtp = start_smtp(handler)
    try:
        environ = {**daemon_env, "SMTP_PORT": str(smtp.port), "SMTP_CONNECTIONS": "2"}
        many = [f"reader{n:02d}@example.com" for n in range(40)]
        add_subscribers(environ, *many)
        first = daemons(environ)
        first.wait_until(lambda: handler.arrived > 10, "a send held mid-way")

        first.process.send_signal(signal.SIGTERM)
        first.wait_for_log(r"SIGTERM: stopping")
        handler.gate.set()  # the messages in flight may now finish
        assert first.stop(signum=None) == 0
        interrupted = copies(smtp)
        assert len(interrupted) < len(many)  # it really stopped mid-send
        assert re.search(r"digest 1 stopped with \d+ subscriber\(s\) still owed it", first.log), first.log

        second = daemons(environ)
        second.wait_until(lambda: set(copies(smtp)) == set(many), "the rest of the digest")
        second.wait_for_log(NOTHING_NEW)
        assert second.stop() == 0
    finally:
        handler.gate.set()  # never leave a session waiting, even when the test failed early
        smtp.controller.stop()

    assert copies(smtp) == Counter(many)  # nobody twice: the stop finished and recorded the in-flight ones
    # The second daemon finishes digest 1 from its start-up job: as a resume, or (when a
    # scheduled slot passed meanwhile, as on a loaded machine) as the catch-up send.
    assert re.search(r"start-up: (resuming unfinished digest 1|a scheduled send was missed)", second.log), second.log


def test_second_daemon_and_manual_send_are_refused_while_the_first_keeps_working(
    daemon_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost, daemons: Callable[..., Daemon]
) -> None:
    add_subscribers(daemon_env, *SUBSCRIBERS)
    first = daemons(daemon_env)
    first.wait_for_log(r"next send at")

    second = daemons(daemon_env)
    assert second.process.wait(timeout=DEADLINE) == 1
    (line,) = second.log.strip().splitlines()
    assert re.match(rf"Error: .*digest\.db is in use by digest run \(pid {first.process.pid} on ", line), line
    manual = run_cli(["send"], daemon_env)
    assert manual.exit_code == 1
    assert f"in use by digest run (pid {first.process.pid} " in manual.output
    # What does not send still works beside the daemon.
    assert run_cli(["subscribers", "add", "late@example.com"], daemon_env).exit_code == 0
    assert run_cli(["send", "--dry-run"], daemon_env).exit_code == 0
    assert "Daemon: running: digest run" in run_cli(["status"], daemon_env).output

    publish(feed_host, ["Fourth post", *FIRST_POSTS])
    everyone = Counter([*SUBSCRIBERS, "late@example.com"])
    first.wait_until(lambda: copies(smtp_server, "Fourth post") == everyone, "the first daemon's send")
    assert first.stop() == 0


def test_missed_schedule_is_caught_up_once_at_start(
    daemon_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost, daemons: Callable[..., Daemon]
) -> None:
    add_subscribers(daemon_env, *SUBSCRIBERS)
    assert run_cli(["send"], daemon_env).exit_code == 0  # digest 1, sent "days ago" below
    long_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    with sqlite3.connect(daemon_env["DIGEST_DB"]) as conn:
        conn.execute("UPDATE digests SET created = ?, started_at = ?, finished_at = ?", [long_ago] * 3)
    conn.close()
    publish(feed_host, ["Fourth post", *FIRST_POSTS])
    slot = datetime.now(UTC) - timedelta(hours=1)  # daily, so three slots were missed; the next is ~23 h away
    environ = {**daemon_env, "DIGEST_SCHEDULE": f"{slot.minute} {slot.hour} * * *", "DIGEST_CHECK_INTERVAL": "1h"}

    daemon = daemons(environ)
    daemon.wait_for_log(r"start-up: a scheduled send was missed since")
    daemon.wait_for_log(r"send: next at")  # the catch-up send is over
    assert daemon.stop() == 0

    assert copies(smtp_server, "Fourth post") == Counter(SUBSCRIBERS)
    assert copies(smtp_server) == Counter({address: 2 for address in SUBSCRIBERS})


def test_serves_the_unsubscribe_endpoint_when_configured(
    daemon_env: dict[str, str], daemons: Callable[..., Daemon]
) -> None:
    port = free_port()
    daemon = daemons({**daemon_env, "DIGEST_HTTP_LISTEN": f"127.0.0.1:{port}", "DIGEST_SCHEDULE": "0 8 * * mon"})
    daemon.wait_for_log(r"next send at")

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    daemon.wait_until(healthy, "the unsubscribe endpoint")
    assert daemon.stop(signal.SIGINT) == 0


def test_bad_configuration_exits_2_with_one_line(daemon_env: dict[str, str]) -> None:
    for key, value, expected in [
        ("DIGEST_SCHEDULE", "every fortnight", "Error: DIGEST_SCHEDULE: "),
        ("DIGEST_SECRET", "", "Error: DIGEST_SECRET: not set"),
        ("DIGEST_CHECK_INTERVAL", "-5m", "Error: DIGEST_CHECK_INTERVAL: "),
    ]:
        result = run_cli(["run"], {**daemon_env, key: value})
        assert result.exit_code == 2, (key, result.output)
        (line,) = result.output.strip().splitlines()
        assert line.startswith(expected), line


def test_sighup_rereads_the_configuration_and_keeps_the_old_one_when_the_new_is_bad(
    daemon_env: dict[str, str], daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    env_file = tmp_path / "digest.env"
    env_file.write_text("DIGEST_SCHEDULE=every 2s\n", encoding="utf-8")
    environ = {k: v for k, v in daemon_env.items() if k != "DIGEST_SCHEDULE"}  # the file's value counts
    daemon = daemons(environ, "--env", str(env_file))
    daemon.wait_for_log(r"digest run started.*sends on 'every 2s'")

    env_file.write_text("DIGEST_SCHEDULE=every fortnight-ish\n", encoding="utf-8")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_log(r"SIGHUP: new configuration refused, keeping the running one: DIGEST_SCHEDULE: ")
    assert daemon.process.poll() is None  # still running, on the old configuration

    env_file.write_text("DIGEST_SCHEDULE=every 3s\n", encoding="utf-8")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_log(r"SIGHUP: configuration reloaded; .*sends on 'every 3s'")

    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log
    assert daemon.count("new configuration refused") == 1
