"""What the tests share: real servers on 127.0.0.1 and small helpers.

* an SMTP server (aiosmtpd) that records what it receives: ``start_smtp``,
  ``running_smtp``;
* one HTTP feed server, ``FeedHost``, whose paths answer like a real web
  server (validators and 304, gzip, stalls);
* the CLI through click's runner, ``run_cli``, and the one way tests add
  subscribers, ``add_subscribers``; ``app_target``, the web app's path for a
  mailed link;
* ``answering``, a raw TCP server that sends fixed bytes (a broken or
  hostile server);
* the one polling helper, ``wait_until``, for conditions another thread or
  process makes true (its deadline bounds a failure; it is not a timing
  assertion);
* a small Atom file of given posts, ``write_atom_feed``, and the entries of a
  feed file as the store hands them to rendering, ``stored_entries_from``.

Fixtures built on these live in ``conftest.py``. Everything listens on
127.0.0.1 with a port the OS picks; nothing leaves the machine.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.config import Settings, load_settings

# The user's real feed lives in ../shared/ beside the checkout (never copied
# into the repository); DIGEST_SHARED_DIR names another place (.ci/run sets it
# for a clone made elsewhere, from the checkout's own ../shared/).
SHARED_FEED = (
    Path(os.environ.get("DIGEST_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")
    / "feeds"
    / "jekyll-rouge-atom.xml"
)
# Developers without it skip the tests on the real feed; under CI=true a
# missing feed fails those tests instead of hiding them.
requires_shared_feed = pytest.mark.skipif(
    not SHARED_FEED.exists() and not os.environ.get("CI"), reason="the shared Jekyll feed is not beside the checkout"
)
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE_FEED = Path(__file__).resolve().parents[1] / "examples" / "feed.xml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP ---------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    def part(self, subtype: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}":
                return str(part.get_content())
        raise AssertionError(f"no text/{subtype} part")


@dataclass
class RecordingHandler:
    """Accepts every message and keeps it. Subclass to inject faults."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        return "250 OK"

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for message in self.received for rcpt in message.rcpt_tos]


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    controller: Controller

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def start_smtp(handler: RecordingHandler | None = None, **kwargs: Any) -> SmtpServer:
    handler = handler or RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return SmtpServer("127.0.0.1", port, handler, controller)


@contextmanager
def running_smtp(handler: RecordingHandler | None = None, **kwargs: Any) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 for the ``with`` block, stopped even when the test fails."""
    server = start_smtp(handler, **kwargs)
    try:
        yield server
    finally:
        server.controller.stop()


# --- HTTP feeds with validators, delays and gzip ----------------------------------


@dataclass
class FeedResource:
    """One path of a ``FeedHost``: a feed body with the behaviour a real server has.

    ``etag``/``last_modified``: sent, and a matching If-None-Match (or, without
    an ETag, If-Modified-Since) gets 304. ``gzip``: compressed when the client
    accepts it. ``stall``: "headers" waits before answering, "body" sends half
    the body then waits, "trickle" sends a byte at a time without end; every
    wait ends when the host closes.
    """

    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    stall: str | None = None


class FeedHost:
    """A real HTTP server on 127.0.0.1 for feed tests; counts requests per path."""

    def __init__(self) -> None:
        self.resources: dict[str, FeedResource] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.released = threading.Event()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                host.requests.append((self.path, dict(self.headers.items())))
                resource = host.resources.get(self.path)
                if resource is None:
                    self._answer(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if resource.stall == "headers":
                    host.released.wait(30)
                    return
                headers = {"Content-Type": resource.content_type, **resource.headers}
                if resource.etag:
                    headers["ETag"] = resource.etag
                if resource.last_modified:
                    headers["Last-Modified"] = resource.last_modified
                if resource.status == 200 and self._not_modified(resource):
                    self._answer(304, b"", {k: v for k, v in headers.items() if k != "Content-Type"})
                    return
                body = resource.body
                if resource.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                if resource.stall in ("body", "trickle"):
                    self._stall(resource, body, headers)
                    return
                self._answer(resource.status, body, headers)

            def _not_modified(self, resource: FeedResource) -> bool:
                if resource.etag:
                    return self.headers.get("If-None-Match") == resource.etag
                return bool(resource.last_modified) and self.headers.get("If-Modified-Since") == resource.last_modified

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stall(self, resource: FeedResource, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(resource.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body) * 1000))
                self.end_headers()
                try:
                    if resource.stall == "body":
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        host.released.wait(30)
                        return
                    while not host.released.wait(0.05):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def count(self, path: str) -> int:
        return sum(1 for requested, _ in self.requests if requested == path)

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def answering(reply: bytes, *, speaks_first: bool = False) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers every connection with ``reply`` and closes it; yields its port.

    It reads the client's request first unless it ``speaks_first`` (a greeting, as IMAP and SMTP servers do).
    """
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if not speaks_first:
                    conn.recv(65536)
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


# --- environment and CLI ------------------------------------------------------------


def settings_from(environ: dict[str, str]) -> Settings:
    return load_settings(None, environ)


def subscriber_rows(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every subscriber row by address, read straight from the SQLite file."""
    conn = sqlite3.connect(environ["DIGEST_DB"])
    conn.row_factory = sqlite3.Row
    try:
        return {r["email"]: dict(r) for r in conn.execute("SELECT * FROM subscribers")}
    finally:
        conn.close()


def run_cli(args: list[str], environ: dict[str, str], *, input: bytes | str | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, args, input=input, env=environ, catch_exceptions=False, prog_name="digest")


def add_subscribers(environ: dict[str, str], *addresses: str) -> None:
    for address in addresses:
        result = run_cli(["subscribers", "add", address], environ)
        assert result.exit_code == 0, result.output


def wait_until(
    condition: Callable[[], object],
    what: str,
    *,
    timeout: float = 30.0,
    interval: float = 0.02,
    gave_up: Callable[[], str | None] | None = None,
    details: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds.

    ``gave_up`` returns a reason to stop at once (a process that exited), and
    ``details`` the text to show on failure (a log).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        reason = gave_up() if gave_up is not None else None
        if reason is None and time.monotonic() > deadline:
            reason = "timed out"
        if reason is not None:
            extra = f"\n{details()}" if details is not None else ""
            pytest.fail(f"{reason} waiting for {what}{extra}")
        time.sleep(interval)


def app_target(url: str) -> str:
    """The path and query the web app answers for a link digest mailed.

    Mails link to DIGEST_PUBLIC_URL (``https://fieldnotes.example.org/digest``
    in the tests); the app itself serves that prefix at ``/``.
    """
    parts = urlsplit(url)
    return parts.path.removeprefix("/digest") + "?" + parts.query


# --- a real browser -------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@contextmanager
def chromium(*, block_remote: bool = False) -> Iterator[Any]:
    """Debian's headless Chromium through selenium; skips without it, except under CI=true.

    ``block_remote`` blocks every http(s) load (for pages opened from files).
    """
    missing = not (CHROMIUM.exists() and CHROMEDRIVER.exists())
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing = True
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs chromium, chromium-driver and selenium for the browser tests")
        pytest.skip("chromium/chromedriver/selenium not available")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", "--no-first-run"]
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        if block_remote:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
        yield driver
    finally:
        driver.quit()


# --- rendering ------------------------------------------------------------------------


def write_atom_feed(path: Path, name: str, title: str, posts: dict[str, str]) -> Path:
    """An Atom file of ``posts`` (title -> HTML content), newest first: one a day back from 2026-11-20.

    The feed's id is ``urn:NAME`` and each post's ``urn:NAME:N``; at most 19 posts.
    """
    entries = "".join(
        f"<entry><title>{post}</title><id>urn:{name}:{number}</id>"
        f'<link href="https://blog.example.org/{number}"/><updated>2026-11-{20 - number:02d}T08:00:00Z</updated>'
        f'<content type="html"><![CDATA[{body}]]></content></entry>'
        for number, (post, body) in enumerate(posts.items())
    )
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>{title}</title><id>urn:{name}</id><link href="https://blog.example.org/"/>'
        f"<updated>2026-11-20T08:00:00Z</updated>{entries}</feed>",
        encoding="utf-8",
    )
    return path


def stored_entries_from(feed_path: Path) -> list[Any]:
    """The entries of a feed file as the store would hand them to render (real feedparser path)."""
    from digest.feeds import parse_feed
    from digest.fetch import FetchResult

    return stored_entries_of(parse_feed(FetchResult(url=str(feed_path), status=200, body=feed_path.read_bytes())))


def stored_entries_of(parsed: Any) -> list[Any]:
    """A ParsedFeed's entries as the store would hand them to render."""
    from datetime import UTC, datetime

    from digest.models import StoredEntry

    seen = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    return [
        StoredEntry(
            id=number,
            feed_id=1,
            feed_title=parsed.title,
            feed_site_url=parsed.site_url,
            key=entry.key,
            title=entry.title,
            link=entry.link,
            author=entry.author,
            published=entry.published,
            first_seen=seen,
            summary_html=entry.summary_html,
            content_html=entry.content_html,
            tags=entry.tags,
            enclosures=entry.enclosures,
            language=entry.language,
            feed_subtitle=parsed.subtitle,
            feed_language=parsed.language,
        )
        for number, entry in enumerate(parsed.entries, start=1)
    ]
