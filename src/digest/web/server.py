"""The web app served by waitress on DIGEST_HTTP_LISTEN, inside ``digest run`` and ``digest serve``.

Why waitress: pure Python (no C extension to build), maintained, WSGI standard,
and its design suits a small public endpoint: one asyncore loop reads every
request completely before a worker thread sees it, so a slow client costs a
socket, never a thread. On top of its own limits:

* ``channel_timeout``: a connection silent this long is closed;
* a request deadline (:data:`REQUEST_DEADLINE`): a client that keeps dripping
  bytes but does not finish its request in that time is closed (slow loris);
* ``connection_limit``: beyond it, new connections wait in the listen backlog
  (they are not reset) until a slot frees;
* bodies over the app's MAX_CONTENT_LENGTH get a 413 from the app, and waitress
  refuses anything bigger still before buffering it.

``WebServer.start()`` binds (port 0 picks a free port) and serves from a
background thread; ``stop()`` closes every connection and joins the threads.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import flask
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from digest import signals
from digest.config import Settings
from digest.errors import ConfigError, DigestError
from digest.web.app import MAX_BODY_BYTES, create_app

log = logging.getLogger(__name__)

CHANNEL_TIMEOUT = 10  # seconds a connection may stay silent
REQUEST_DEADLINE = 20.0  # seconds from a request's first byte to its last
CONNECTION_LIMIT = 256  # open connections; the rest wait in the backlog
THREADS = 8  # requests are short SQLite reads and one-row writes; a few threads keep up with loopback floods


class _OncePerMinute(logging.Filter):
    """Lets one record through a minute: waitress warns "Task queue depth is N" for
    every request that waits for a thread, a log line per request under a flood
    (bench/web.py: 1,999 lines for 2,000 requests); one a minute says as much."""

    def __init__(self) -> None:
        super().__init__()
        self.last = -60.0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.last < 60.0:
            return False
        self.last = now
        return True


_QUEUE_WARNINGS = _OncePerMinute()


class _Channel(HTTPChannel):  # type: ignore[misc]
    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.monotonic()
        return bool(super().received(data))


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    request_deadline = REQUEST_DEADLINE

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = time.monotonic() - self.request_deadline
        for channel in list(self.active_channels.values()):
            if channel.request is not None and not channel.requests and channel.request_started < cutoff:
                log.debug("web: closing a connection whose request took over %.0f s", self.request_deadline)
                channel.will_close = True


class WebServer:
    """The app on DIGEST_HTTP_LISTEN (or ``listen``), served from a background thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        listen: tuple[str, int] | None = None,
        app: flask.Flask | None = None,
        timeout: int = CHANNEL_TIMEOUT,
        request_deadline: float = REQUEST_DEADLINE,
        connection_limit: int = CONNECTION_LIMIT,
        threads: int = THREADS,
    ) -> None:
        address = listen or settings.http_listen
        self.app = app or create_app(settings)  # ConfigError without DIGEST_SECRET
        queue_log = logging.getLogger("waitress.queue")
        if _QUEUE_WARNINGS not in queue_log.filters:
            queue_log.addFilter(_QUEUE_WARNINGS)
        if address is None:
            raise ConfigError("DIGEST_HTTP_LISTEN: not set", hint="e.g. DIGEST_HTTP_LISTEN=127.0.0.1:8080")
        self.address = address
        self.options: dict[str, Any] = {
            "threads": threads,
            "channel_timeout": timeout,
            "cleanup_interval": 1,
            "connection_limit": connection_limit,
            "max_request_body_size": MAX_BODY_BYTES * 16,
            "max_request_header_size": 16 * 1024,
            "ident": "digest",
            "clear_untrusted_proxy_headers": False,  # ProxyFix decides, from DIGEST_TRUSTED_PROXIES
            "expose_tracebacks": False,
        }
        self.request_deadline = request_deadline
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.effective_port) if self._server is not None else 0

    def start(self) -> tuple[str, int]:
        host, port = self.address
        try:
            adjustments = Adjustments(host=host, port=port, **self.options)
        except socket.gaierror as exc:
            raise ConfigError(f"DIGEST_HTTP_LISTEN: cannot resolve {host!r}: {exc.strerror}") from None
        sockinfo = adjustments.listen[0]
        sock = _bound_socket(sockinfo, host, port)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adjustments.threads)
        server = _Server(self.app, map={}, _sock=sock, dispatcher=dispatcher, adj=adjustments,
                         sockinfo=sockinfo, bind_socket=False)  # fmt: skip
        server.request_deadline = self.request_deadline
        self._server = server
        self._thread = threading.Thread(target=server.run, name="web-http", daemon=True)
        self._thread.start()
        bound = (str(server.effective_host), int(server.effective_port))
        log.info("web app listening on %s:%d", *bound)
        return bound

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        # Closed from the loop's own thread: the loop ends when its map is empty.
        try:
            server.trigger.pull_trigger(lambda: _close_all(server))
        except OSError:
            # The trigger's pipe is gone (seen rarely under load: EBADF), so the loop
            # cannot be woken; it fails on that descriptor and ends. Close from here.
            if thread is not None:
                thread.join(timeout=1.0)
            _close_all(server)
        if thread is not None:
            thread.join(timeout=CHANNEL_TIMEOUT)
        server.task_dispatcher.shutdown()
        self._server = self._thread = None

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bound_socket(sockinfo: tuple[Any, ...], host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port leaks nothing (DigestError, one line)."""
    family, socktype, proto, sockaddr = sockinfo
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise DigestError(
            f"DIGEST_HTTP_LISTEN: cannot listen on {host}:{port}: {exc.strerror}",
            hint="is another process using that port?",
        ) from None
    return sock


def _close_all(server: _Server) -> None:
    for dispatcher in list(server._map.values()):
        with contextlib.suppress(OSError):
            dispatcher.close()
    server._map.clear()


def serve_until_signalled(server: WebServer, on_ready: Callable[[str, int], None]) -> str:
    """Run ``server`` in the foreground until SIGINT or SIGTERM; return the signal's name."""
    with signals.stop_on_signals() as stop:
        host, port = server.start()
        try:
            on_ready(host, port)
            while not stop.event.wait(3600):
                pass
        finally:
            server.stop()
    return stop.signal.name if stop.signal is not None else ""
