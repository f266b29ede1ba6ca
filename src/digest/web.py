"""The one-click unsubscribe endpoint (RFC 8058): digest's only public surface.

Routes, and nothing else (anything else is a 404):

* ``GET /unsubscribe?token=T`` shows the masked address and a button. It never
  unsubscribes: mail scanners and link previewers follow every link.
* ``POST /unsubscribe?token=T`` unsubscribes at once and answers 200 with a
  short page: no redirect, no cookie, no confirmation step. The body is
  ``List-Unsubscribe=One-Click`` (form-urlencoded or multipart), as mail
  providers and the button send it. An EMPTY body is accepted too: only a
  deliberate POST reaches this, scanners do not POST, and refusing it would
  leave subscribed someone who asked to leave. A body that says something
  else is refused.
* ``GET /healthz`` answers ``ok`` when the database can be read (for monitoring).
* ``HEAD`` is answered like ``GET``, without the body.

``T`` is ``tokens.link_token``: the subscriber's random token plus an HMAC
with DIGEST_SECRET. A malformed token, a bad signature and an unknown
subscriber all get the same neutral 400 response, byte for byte, so the
endpoint cannot be used to learn who is subscribed. The path may also carry
the path of DIGEST_PUBLIC_URL (``/news/unsubscribe``), so it works whether or
not the reverse proxy strips that prefix.

Why the standard library's ``ThreadingHTTPServer``: three tiny routes do not
justify a framework and a WSGI server to keep patched, and it adds no
dependency. Its weak points are covered here: each socket has a timeout
(a slow client cannot hold a thread); a body over ``MAX_BODY_BYTES`` is
refused (413) on its Content-Length and never parsed; request lines and
headers are capped by http.server itself; at most ``MAX_CONNECTIONS``
requests are handled at once (more are closed at once). TLS and HTTP/2 belong to the reverse proxy in front of it
(``DIGEST_HTTP_LISTEN`` should be a loopback address).

Each request opens its own SQLite connection (WAL mode, busy timeout), and an
unsubscribe is one short UPDATE, so it never waits long on a running send;
the sender re-reads statuses per batch and skips the address from then on.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import html
import logging
import socket
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from digest import store, subscribers, tokens
from digest.config import Settings
from digest.errors import ConfigError, DigestError, InvalidRequest
from digest.models import Subscriber
from digest.signals import stop_on_signals

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096  # a one-click body is 26 bytes; multipart adds a few hundred
MAX_CONNECTIONS = 64
SOCKET_TIMEOUT = 10.0
ONE_CLICK = ("List-Unsubscribe", "One-Click")

_STYLE = (
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#fff;"
    "max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "h1{font-size:1.4rem}button{font:inherit;padding:.6rem 1.2rem;border:2px solid #1a1a1a;border-radius:4px;"
    "background:#1a1a1a;color:#fff;cursor:pointer}button:focus{outline:3px solid #2b6cb0;outline-offset:2px}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),  # the token is in the URL
    ("X-Frame-Options", "DENY"),
    ("X-Robots-Tag", "noindex, nofollow"),
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'",
    ),
)


def _page(title: str, *paragraphs: str, form: bool = False) -> bytes:
    """A complete, self-contained page; ``paragraphs`` are already-escaped HTML."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if form:
        # No action attribute: the form posts to this very URL, token included.
        body += (
            '<form method="post">'
            f'<input type="hidden" name="{ONE_CLICK[0]}" value="{ONE_CLICK[1]}">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>\n"
    )
    return document.encode("utf-8")


NEUTRAL_PAGE = _page(
    "Link not valid",
    "This unsubscribe link is not valid. Please use the link from a recent email, "
    "or reply to that email and ask to be removed.",
)
NOT_FOUND_PAGE = _page("Not found", "There is nothing here.")
TOO_LARGE_PAGE = _page("Request too large", "The request body is too large.")
UNAVAILABLE_PAGE = _page("Try again later", "The service is busy. Please try again in a minute.")


def _one_click_body(content_type: str, body: bytes) -> bool:
    """Whether ``body`` asks for one-click unsubscribe (an empty body counts: see module docstring)."""
    if not body.strip():
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return False
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == ONE_CLICK[0]:
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes) and payload.strip() == ONE_CLICK[1].encode("ascii"):
                    return True
        return False
    # application/x-www-form-urlencoded, and the same text under any other type.
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return False
    return ONE_CLICK[1] in fields.get(ONE_CLICK[0], [])


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Bounds every read and write: a slow or silent client cannot hold a thread.
        self.connection.settimeout(self.server.app.timeout)

    def version_string(self) -> str:
        return "digest"

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.server.app.clock() if timestamp is None else timestamp, usegmt=True)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Never the query string: it holds the token.
        path = urlsplit(self.path).path if hasattr(self, "path") else "-"
        log.debug("%s %s %s %s", self.client_address[0], getattr(self, "command", "-"), path, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, header too long, unknown
        # method) get plain pages with the same headers as ours, not its default.
        page = NOT_FOUND_PAGE if code == 404 else _page(f"Error {code}", html.escape(message or "Bad request."))
        self.close_connection = True
        self._respond(code, page)

    def _respond(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        self.send_response(status)
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> tuple[str, str]:
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/unsubscribe" or path == self.server.app.prefix + "/unsubscribe":
            return "unsubscribe", parts.query
        if path == "/healthz":
            return "healthz", parts.query
        return "", parts.query

    def do_GET(self) -> None:
        route, query = self._route()
        if route == "healthz":
            healthy = self.server.app.healthy()
            self._respond(
                200 if healthy else 503, b"ok\n" if healthy else b"database unavailable\n", "text/plain; charset=utf-8"
            )
        elif route == "unsubscribe":
            self._unsubscribe(query, write=False)
        else:
            self._respond(404, NOT_FOUND_PAGE)

    def do_HEAD(self) -> None:
        # Monitors often probe with HEAD; the same answers as GET, without bodies.
        self.do_GET()

    def do_POST(self) -> None:
        route, query = self._route()
        if route != "unsubscribe":
            self._respond(404, NOT_FOUND_PAGE)
            return
        if self.headers.get("Transfer-Encoding"):
            # Chunked bodies are not read; every real client sends a length.
            self.close_connection = True
            self._respond(411, _page("Length required", "Send the body with a Content-Length."))
            self._discard(64 * 1024)
            return
        length_text = self.headers.get("Content-Length", "0").strip()
        if not length_text.isdigit():
            self._respond(400, NEUTRAL_PAGE)
            return
        length = int(length_text)
        if length > self.server.app.max_body:
            self.close_connection = True  # the unread body must not be taken for a request
            self._respond(413, TOO_LARGE_PAGE)
            self._discard(length)
            return
        body = self.rfile.read(length) if length else b""
        if len(body) != length or not _one_click_body(self.headers.get("Content-Type", ""), body):
            self._respond(400, NEUTRAL_PAGE)
            return
        self._unsubscribe(query, write=True)

    def _discard(self, length: int) -> None:
        """Read and drop a little of a refused body, briefly, before closing.

        Closing a socket with unread data makes the kernel send a reset,
        which can destroy the 413 answer before the client reads it.
        """
        remaining = min(length, 64 * 1024)
        try:
            self.connection.shutdown(socket.SHUT_WR)  # the client sees the whole answer and EOF now
            self.connection.settimeout(1.0)
            while remaining > 0 and (chunk := self.rfile.read1(min(remaining, 16 * 1024))):
                remaining -= len(chunk)
        except OSError:
            pass

    def _unsubscribe(self, query: str, *, write: bool) -> None:
        app = self.server.app
        try:
            subscriber = app.resolve(query, write=write)
        except InvalidRequest:
            self._respond(400, NEUTRAL_PAGE)
            return
        except DigestError as exc:
            log.warning("unsubscribe: database unavailable: %s", exc)
            self._respond(503, UNAVAILABLE_PAGE)
            return
        masked = html.escape(subscribers.mask_email(subscriber.email))
        if write:
            page = _page("You are unsubscribed", f"{masked} will receive no more emails from {app.list_name}.")
            self._respond(200, page)
        elif subscriber.status == "unsubscribed":
            self._respond(200, _page("Already unsubscribed", f"{masked} receives no emails from {app.list_name}."))
        else:
            self._respond(
                200,
                _page("Unsubscribe?", f"Stop sending {app.list_name} to {masked}?", form=True),
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: UnsubscribeServer) -> None:
        self.app = app
        self.slots = threading.BoundedSemaphore(app.max_connections)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            log.warning("unsubscribe endpoint: too many connections; closing one from %s", client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped and timed-out connections are routine on a public endpoint.
        log.debug("unsubscribe endpoint: connection from %s failed", client_address[0], exc_info=True)


class UnsubscribeServer:
    """The endpoint on DIGEST_HTTP_LISTEN, served from a background thread.

    ``start()`` binds (port 0 picks a free port) and returns the bound
    (host, port); ``stop()`` shuts it down. The daemon runs it beside the
    scheduler; ``digest serve`` runs it alone.
    """

    def __init__(
        self,
        settings: Settings,
        db_path: Path | None = None,
        *,
        listen: tuple[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = SOCKET_TIMEOUT,
        max_body: int = MAX_BODY_BYTES,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not settings.secret:
            raise ConfigError(
                "DIGEST_SECRET: not set", hint="the endpoint checks the signature of every unsubscribe link"
            )
        address = listen or settings.http_listen
        if address is None:
            raise ConfigError("DIGEST_HTTP_LISTEN: not set", hint="e.g. DIGEST_HTTP_LISTEN=127.0.0.1:8080")
        self.address = address
        self.secret = settings.secret
        self.db_path = db_path or settings.db_path
        self.clock = clock
        self.timeout = timeout
        self.max_body = max_body
        self.max_connections = max_connections
        self.prefix = urlsplit(settings.public_url).path.rstrip("/") if settings.public_url else ""
        display_name = ""
        if settings.sender:
            display_name = settings.sender_address.display_name
        self.list_name = html.escape(display_name or "this newsletter")
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[str, int]:
        host, port = self.address
        try:
            self._httpd = _Server((host, port), self)
        except socket.gaierror as exc:
            raise ConfigError(f"DIGEST_HTTP_LISTEN: cannot resolve {host!r}: {exc.strerror}") from None
        except OSError as exc:
            raise DigestError(
                f"DIGEST_HTTP_LISTEN: cannot listen on {host}:{port}: {exc.strerror}",
                hint="is another process using that port?",
            ) from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="unsubscribe-http", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = self._httpd.server_address[:2]
        log.info("unsubscribe endpoint listening on %s:%d", bound_host, bound_port)
        return str(bound_host), int(bound_port)

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=SOCKET_TIMEOUT)
        self._httpd = self._thread = None

    def __enter__(self) -> UnsubscribeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the handler asks of the application -------------------------

    def resolve(self, query: str, *, write: bool) -> Subscriber:
        """The subscriber a link's query names (unsubscribed first when ``write``); InvalidRequest otherwise."""
        try:
            values = parse_qs(query, max_num_fields=10).get("token", [])
        except ValueError:
            raise InvalidRequest from None
        token = tokens.verify_link_token(self.secret, values[0]) if len(values) == 1 else None
        if token is None:
            raise InvalidRequest
        db = store.open_db(self.db_path)
        try:
            if write:
                subscriber = store.unsubscribe_token(db, token)
                if subscriber is not None:
                    log.info("subscriber %d unsubscribed through one-click", subscriber.id)
            else:
                subscriber = store.get_by_token(db, token)
        finally:
            db.close()
        if subscriber is None:
            raise InvalidRequest
        return subscriber

    def healthy(self) -> bool:
        try:
            db = store.open_db(self.db_path)
            try:
                store.count_subscribers(db)
            finally:
                db.close()
        except DigestError as exc:
            log.warning("healthz: %s", exc)
            return False
        return True


def serve_until_signalled(server: UnsubscribeServer, on_ready: Callable[[str, int], None]) -> str:
    """Run ``server`` in the foreground until SIGINT or SIGTERM; return the signal's name."""
    with stop_on_signals() as stop:
        host, port = server.start()
        try:
            on_ready(host, port)
            while not stop.event.wait(3600):
                pass
        finally:
            server.stop()
    return stop.name
