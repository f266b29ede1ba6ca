"""Deliver prepared messages over SMTP: pooled connections, retries, rate limit.

``SmtpTransport`` is one connection (plain, STARTTLS or implicit TLS, optional
AUTH); ``deliver`` runs SMTP_CONNECTIONS of them in worker threads fed from
a bounded queue, so subscribers stream through without being loaded whole.
Each outcome goes back to the caller's ``on_result`` on the calling thread,
which commits it before anything else happens (the resume checkpoint).

Replies are classified: 4xx and dropped connections are retried with backoff
up to ``attempts``; a 5xx for a recipient is a permanent failure for that
recipient only; an authentication failure, or a connection that cannot be
(re)made within ``attempts``, aborts the run with a SendError and leaves the
rest of the digest for the next run.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from digest.config import Settings
from digest.errors import SendError
from digest.message import OutgoingMessage, PreparedMessage, Recipient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    recipient: Recipient
    status: str  # sent | failed
    attempts: int
    message_id: str | None
    error: str | None = None
    permanent: bool = False  # a 5xx: the address itself was refused


class SmtpTransport:
    """One SMTP connection, opened lazily and reopened after a drop or a 421."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.smtp_verify_cert:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def connect(self) -> None:
        s = self.settings
        try:
            if s.smtp_security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                                      context=self._context())  # fmt: skip
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            smtp.ehlo()
            if s.smtp_security == "starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"SMTP {s.smtp_host}:{s.smtp_port}: authentication failed: {exc.smtp_code} {_reply(exc.smtp_error)}",
                hint="check SMTP_USERNAME and SMTP_PASSWORD",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"SMTP {s.smtp_host}:{s.smtp_port}: {exc}", hint="check SMTP_SECURITY") from None
        except ssl.SSLError as exc:
            raise SendError(f"SMTP {s.smtp_host}:{s.smtp_port}: TLS failed: {exc.reason or exc}",
                            hint="check SMTP_SECURITY and SMTP_PORT") from None  # fmt: skip
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionError(f"SMTP {s.smtp_host}:{s.smtp_port}: cannot connect: {_describe(exc)}") from None
        self._smtp = smtp

    def send(self, sender: str, message: OutgoingMessage) -> None:
        if self._smtp is None:
            self.connect()
        assert self._smtp is not None
        self._smtp.sendmail(sender, [message.recipient], message.data)

    def reset(self) -> None:
        """Forget the connection (after an error); the next send reconnects."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def _reply(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_reply(exc.smtp_error)}"
    return str(exc) or type(exc).__name__


class RateLimiter:
    """At most ``rate`` messages per second across all workers (0: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


TransportFactory = Callable[[], SmtpTransport]


@dataclass
class DeliveryOptions:
    attempts: int = 4
    backoff: float = 1.0  # seconds before the 2nd attempt; doubles each time
    connections: int = 2
    rate: float = 0.0


@dataclass
class _Shared:
    accepted: int = 0
    fatal: BaseException | None = None


def deliver(
    prepared: PreparedMessage,
    recipients: Iterable[Recipient],
    *,
    transport_factory: TransportFactory,
    options: DeliveryOptions,
    on_result: Callable[[DeliveryResult], None],
    stop: threading.Event | None = None,
) -> None:
    """Send ``prepared`` to each recipient; report every outcome through ``on_result``.

    Raises SendError when the run must stop (authentication, or no connection
    could be made before anything was accepted, or connections keep failing).
    Recipients not yet handed out when it stops get no result: they are
    simply still undelivered for the next run.
    """
    stop = stop or threading.Event()
    jobs: queue.Queue[Recipient | None] = queue.Queue(maxsize=options.connections * 4)
    results: queue.Queue[DeliveryResult] = queue.Queue()
    shared = _Shared()
    abort = threading.Event()
    limiter = RateLimiter(options.rate)
    sender = prepared.sender.addr_spec

    def worker() -> None:
        transport = transport_factory()
        try:
            while True:
                recipient = jobs.get()
                if recipient is None or abort.is_set():
                    return
                try:
                    results.put(_send_one(transport, sender, prepared, recipient, options, limiter, shared, stop))
                except BaseException as exc:
                    shared.fatal = shared.fatal or exc
                    abort.set()
                    return
        finally:
            transport.close()

    threads = [threading.Thread(target=worker, name=f"smtp-{n}", daemon=True) for n in range(options.connections)]
    for thread in threads:
        thread.start()

    def drain() -> None:
        while True:
            try:
                result = results.get_nowait()
            except queue.Empty:
                return
            on_result(result)

    try:
        for recipient in recipients:
            while True:
                drain()
                if abort.is_set() or stop.is_set():
                    break
                try:
                    jobs.put(recipient, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if abort.is_set() or stop.is_set():
                break
    finally:
        # Tell every worker to finish; they complete the message in flight.
        for _ in threads:
            while any(t.is_alive() for t in threads):
                try:
                    jobs.put(None, timeout=0.1)
                    break
                except queue.Full:
                    drain()
        while any(t.is_alive() for t in threads):
            drain()
            time.sleep(0.01)
        drain()
    if shared.fatal is not None:
        if isinstance(shared.fatal, SendError):
            raise shared.fatal
        if isinstance(shared.fatal, ConnectionError):
            raise SendError(str(shared.fatal), hint="the digest stays pending; run `digest send` again") from None
        raise shared.fatal


def _send_one(
    transport: SmtpTransport,
    sender: str,
    prepared: PreparedMessage,
    recipient: Recipient,
    options: DeliveryOptions,
    limiter: RateLimiter,
    shared: _Shared,
    stop: threading.Event,
) -> DeliveryResult:
    message = prepared.personalise(recipient, datetime.now(UTC))
    error = "not attempted"
    for attempt in range(1, options.attempts + 1):
        limiter.wait()
        try:
            transport.send(sender, message)
            shared.accepted += 1
            return DeliveryResult(recipient, "sent", attempt, message.message_id)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient.email, (0, b""))
            error = f"{code} {_reply(reply)}"
            if 500 <= code < 600:
                return DeliveryResult(recipient, "failed", attempt, None, error, permanent=True)
        except smtplib.SMTPResponseException as exc:
            error = _describe(exc)
            if exc.smtp_code == 421 or isinstance(exc, smtplib.SMTPSenderRefused):
                transport.reset()
            if 500 <= exc.smtp_code < 600 and exc.smtp_code != 421:
                if isinstance(exc, smtplib.SMTPSenderRefused):
                    raise SendError(f"SMTP server refused the sender {sender}: {error}",
                                    hint="check DIGEST_FROM against what your provider allows") from None  # fmt: skip
                return DeliveryResult(recipient, "failed", attempt, None, error, permanent=True)
            # A 4xx after DATA leaves the session usable; reset anyway to be safe.
            transport.reset()
        except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            error = _describe(exc)
            transport.reset()
            if attempt == options.attempts:
                # The server is unreachable, not this recipient: stop the run
                # rather than mark every remaining subscriber failed.
                raise ConnectionError(error) from None
        except smtplib.SMTPException as exc:
            error = _describe(exc)
            transport.reset()
        if attempt < options.attempts and not stop.is_set():
            delay = options.backoff * (2 ** (attempt - 1))
            log.debug("retrying %s in %.1fs after: %s", recipient.email, delay, error)
            stop.wait(delay)
    return DeliveryResult(recipient, "failed", options.attempts, None, error)


def options_from(settings: Settings) -> DeliveryOptions:
    return DeliveryOptions(
        attempts=settings.send_attempts,
        connections=settings.smtp_connections,
        rate=settings.smtp_rate,
    )
