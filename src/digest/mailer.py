"""Deliver prepared messages over SMTP: pooled connections, retries, rate limit.

A transport is one connection (smtp.py's ``SmtpTransport``: plain, STARTTLS
or implicit TLS, optional AUTH, opened lazily and kept for the next
message). ``deliver`` runs SMTP_CONNECTIONS of them in worker threads; each takes its next recipient
(streamed from SQLite) and records each outcome through ``on_result`` under
one lock, so the database is only ever used by one thread at a time.

A worker records its previous outcome while the server reads the next
message's MAIL FROM (``meanwhile``, so the commit costs no round trip of its
own), and always before that next message can be accepted: at most one
accepted message per connection is ever not yet committed, which bounds what
a kill -9 can duplicate to the messages in flight, one per connection
(design invariant 2). It also takes and personalises its next recipient
while the server reads this message's data (``ahead``), so that work too
overlaps a wait instead of adding to every message's turn; a recipient taken
that way and not sent (a stop, a fatal error) is simply not recorded, and
goes out on the next run.

Replies are classified:

* 2xx: sent.
* 4xx, 421 and dropped connections: retried with backoff (reconnecting when
  the connection is gone) up to ``attempts``; then ``deferred`` (the caller
  retries it on a later run).
* A full mailbox (552, 5.2.2): ``deferred`` at once, retried on a later run.
* 5xx for the recipient or the message: ``failed`` for that recipient only,
  with the server's reply; ``refused`` (the subscriber bounces) when the
  reply is about the address (to RCPT, or a 5.1.x/5.2.x status to DATA).
* Authentication, TLS, a refused sender, or no connection at all before
  anything was accepted: the run stops with one SendError; recipients not
  yet sent stay undelivered for the next run.
* A connection that cannot be (re)opened while others work is given up and
  its recipient handed to another (a provider allowing fewer connections);
  when the last one fails, the run stops the same way.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from digest.errors import ConnectFailure, SendError
from digest.message import OutgoingMessage, PreparedMessage
from digest.models import Subscriber
from digest.ratelimit import RateLimiter
from digest.smtp import describe, mailbox_full, reply_text, sender_refused_hint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    recipient: Subscriber
    status: str  # sent | failed (permanent, a 5xx) | deferred (temporary failures exhausted the attempts)
    attempts: int
    message_id: str | None
    error: str | None = None
    refused: bool = False  # a 5xx that names the address itself (the subscriber bounces)


class Transport(Protocol):
    """One connection to the mail server, as ``deliver`` drives it (smtp.py's ``SmtpTransport`` is one).

    ``send`` and ``connect`` raise smtplib's exceptions for what the server
    replies (``deliver`` classifies them), ``ConnectFailure`` when a
    connection cannot be made and might be later, ``SendError`` when the run
    must stop. Tests pass their own: a fake, or one on an aiosmtpd server.
    """

    @property
    def where(self) -> str: ...  # "SMTP host:port", for messages

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None: ...

    def send(
        self,
        sender: str,
        message: OutgoingMessage,
        meanwhile: Callable[[], None] | None = None,
        ahead: Callable[[], None] | None = None,
    ) -> None:
        """Send one message; run ``meanwhile`` (when given) exactly once during the call, before the
        server can accept the message, even when the send fails. ``ahead`` (when given) may run at
        most once, while the server reads the message's data; a transport may ignore it."""

    def reset(self) -> None: ...  # forget the connection after an error; the next send reconnects

    def close(self) -> None: ...


TransportFactory = Callable[[], Transport]  # a new, unopened connection each call


@dataclass(frozen=True)
class DeliveryOptions:
    """How a run delivers; built from Settings in one place (``wiring.delivery_options``), no defaults of its own."""

    attempts: int
    connections: int
    rate: float  # messages per second over all connections; 0 for no limit
    backoff: float = 1.0  # seconds before the 2nd attempt; doubles each time (not a setting; tests pass 0)


@dataclass
class _RunState:
    connected: int = 0  # connections any worker opened in this run
    abort: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fatal: BaseException | None = None

    def count_connected(self) -> None:
        with self.lock:
            self.connected += 1

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            self.fatal = self.fatal or exc
        self.abort.set()


def deliver(
    prepared: PreparedMessage,
    recipients: Iterable[Subscriber],
    *,
    transport_factory: TransportFactory,
    options: DeliveryOptions,
    on_result: Callable[[DeliveryResult], None],
    stop: threading.Event | None = None,
) -> None:
    """Send ``prepared`` to each recipient; report every outcome through ``on_result``.

    Each worker thread owns one connection and loops: take the next recipient,
    send, record the outcome. Taking and recording happen under one lock, so
    the recipients iterator and ``on_result`` (the database) are never used by
    two threads at once, and no worker takes a new recipient before its last
    outcome is recorded: at most ``connections`` messages are ever accepted
    and not yet recorded. Workers need no hand-offs through the calling
    thread, which keeps the cost per message close to a plain smtplib loop.

    When ``stop`` is set, no worker takes a new recipient; messages already
    being sent are finished and recorded, then it returns. Raises SendError
    when the run must stop (see the module docstring), after recording the
    outcomes that came in before.
    """
    stop = stop or threading.Event()
    state = _RunState()
    limiter = RateLimiter(options.rate)
    sender = prepared.sender.addr_spec
    pending = iter(recipients)
    orphans: list[Subscriber] = []  # left by a worker that lost its connection for good
    shared = threading.Lock()  # guards ``pending``, ``orphans``, ``working`` and ``on_result``
    connections = max(1, options.connections)
    working = [connections]

    def next_recipient() -> Subscriber | None:
        with shared:
            if stop.is_set() or state.abort.is_set():
                return None
            return orphans.pop() if orphans else next(pending, None)

    def retire(recipients: list[Subscriber], exc: ConnectFailure) -> bool:
        """Give up this connection while others still work (a provider that allows
        fewer connections, one that drops some); its recipients go to another."""
        with shared:
            if working[0] <= 1:
                return False
            working[0] -= 1
            orphans.extend(recipients)
        # Worth a warning only if the server works at all: otherwise the
        # last connection's error says it all.
        log.log(
            logging.WARNING if state.connected else logging.DEBUG, "%s; going on with %d connection(s)", exc, working[0]
        )
        return True

    def personalised(recipient: Subscriber | None) -> tuple[Subscriber, OutgoingMessage] | None:
        return None if recipient is None else (recipient, prepared.personalise(recipient, datetime.now(UTC)))

    def worker() -> None:
        transport: Transport | None = None
        unrecorded: list[DeliveryResult] = []  # the last outcome, recorded during the next send
        ahead: list[tuple[Subscriber, OutgoingMessage]] = []  # the next copy, made during this send
        trouble: list[BaseException] = []  # what making it raised, raised once this outcome is known

        def record() -> None:
            if unrecorded:
                with shared:
                    on_result(unrecorded[0])  # kept until recorded: a failure here is retried once more
                unrecorded.clear()

        def make_next() -> None:
            if ahead or trouble:
                return
            try:
                if (upcoming := personalised(next_recipient())) is not None:
                    ahead.append(upcoming)
            except BaseException as exc:  # never inside the SMTP exchange: the reply is still due
                trouble.append(exc)

        def take() -> tuple[Subscriber, OutgoingMessage] | None:
            if trouble:
                raise trouble.pop()
            if not ahead:
                return personalised(next_recipient())
            if stop.is_set() or state.abort.is_set():
                return None  # taken, never sent, never recorded: it goes out on the next run
            return ahead.pop()

        try:
            transport = transport_factory()
            while (turn := take()) is not None:
                recipient, message = turn
                try:
                    result = _send_one(
                        transport, sender, recipient, message, options, limiter, state, stop, record, make_next
                    )
                except ConnectFailure as exc:
                    if trouble:  # taking the next recipient failed first: that stops the run, not this
                        raise trouble.pop() from exc
                    if retire([recipient, *(upcoming for upcoming, _ in ahead)], exc):
                        return
                    raise  # the last connection: the server is gone, stop the run
                finally:
                    record()  # done during the send unless it never reached MAIL FROM
                if result is not None:
                    unrecorded.append(result)
            with shared:
                working[0] -= 1
        except BaseException as exc:  # handed to the calling thread, which raises it
            state.fail(exc)
        finally:
            try:
                record()
            except BaseException as exc:
                state.fail(exc)
            if transport is not None:
                transport.close()

    threads = [threading.Thread(target=worker, name=f"smtp-{n}", daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        # Ctrl-C: no new messages; those being sent finish and are recorded.
        state.abort.set()
        for thread in threads:
            thread.join()
        raise
    fatal = state.fatal
    if fatal is not None:
        if isinstance(fatal, SendError):
            raise fatal
        if isinstance(fatal, ConnectFailure):
            raise SendError(str(fatal), hint="nothing is lost: the rest of the digest goes out on the next run")
        raise fatal


def _send_one(
    transport: Transport,
    sender: str,
    recipient: Subscriber,
    message: OutgoingMessage,
    options: DeliveryOptions,
    limiter: RateLimiter,
    state: _RunState,
    stop: threading.Event,
    meanwhile: Callable[[], None] | None = None,
    ahead: Callable[[], None] | None = None,
) -> DeliveryResult | None:
    """One recipient, with retries. None when ``stop`` interrupts a wait (still undelivered).

    ``meanwhile`` goes to the first send, ``ahead`` to every one (see SmtpTransport.send)."""
    error = "not attempted"
    attempts = max(1, options.attempts)
    for attempt in range(1, attempts + 1):
        limiter.wait(stop)
        try:
            if not transport.connected:
                transport.connect()
                state.count_connected()
            work, meanwhile = meanwhile, None
            transport.send(sender, message, work, ahead)
            return DeliveryResult(recipient, "sent", attempt, message.message_id)
        except (smtplib.SMTPException, OSError, ConnectFailure) as exc:
            failure = _failed_attempt(exc, transport, sender, recipient, state, last=attempt == attempts)
        error = failure.error
        if failure.status is not None:
            return DeliveryResult(recipient, failure.status, attempt, None, error, refused=failure.refused)
        if attempt < attempts:
            delay = options.backoff * (2 ** (attempt - 1))
            log.debug("retrying %s in %.1fs after: %s", recipient.email, delay, error)
            if stop.wait(delay):
                return None
    return DeliveryResult(recipient, "deferred", attempts, None, error)


@dataclass(frozen=True)
class _Failure:
    """How one failed attempt ends: with a ``status`` (failed, deferred) the recipient is done; without, retried."""

    error: str
    status: str | None = None
    refused: bool = False  # the reply is about the address: the subscriber bounces


def _failed_attempt(
    exc: Exception, transport: Transport, sender: str, recipient: Subscriber, state: _RunState, *, last: bool
) -> _Failure:
    """Classify what one attempt raised; raise SendError or ConnectFailure when the run must stop."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _refused_recipient(exc, transport, recipient)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _refused_sender(exc, transport, sender)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _refused_data(exc, transport)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # Only SMTPUTF8 gets here: this server cannot take a non-ASCII
        # address. The address is not at fault, so it is not bounced.
        return _Failure(f"{transport.where} does not support SMTPUTF8, needed for this non-ASCII address", "failed")
    if isinstance(exc, ConnectFailure):
        # No connection has worked in this run yet: the server is simply
        # not there (wrong host or port), say so at once instead of retrying.
        transport.reset()
        if state.connected == 0 or last:
            raise exc  # the server, not this recipient: stop the run
        return _Failure(str(exc))
    # Dropped connection, timeout, protocol confusion: reconnect and retry.
    error = f"{transport.where}: {describe(exc)}"
    transport.reset()
    if last:
        raise ConnectFailure(error) from None
    return _Failure(error)


def _refused_recipient(exc: smtplib.SMTPRecipientsRefused, transport: Transport, recipient: Subscriber) -> _Failure:
    code, reply = exc.recipients.get(recipient.email, next(iter(exc.recipients.values()), (0, b"")))
    error = f"{code} {reply_text(reply)}"
    if code == 421:
        transport.reset()  # smtplib closed the socket
    elif mailbox_full(code, reply):
        return _Failure(error, "deferred")
    elif 500 <= code < 600:
        return _Failure(error, "failed", refused=True)
    return _Failure(error)


def _refused_sender(exc: smtplib.SMTPSenderRefused, transport: Transport, sender: str) -> _Failure:
    error = describe(exc)
    if 500 <= exc.smtp_code < 600:
        hint = sender_refused_hint(exc.smtp_code, reply_text(exc.smtp_error))
        raise SendError(f"SMTP server refused the sender {sender}: {error}", hint=hint) from None
    transport.reset()
    return _Failure(error)


def _refused_data(exc: smtplib.SMTPResponseException, transport: Transport) -> _Failure:
    """A 4xx or 5xx to DATA: smtplib has sent RSET, the session stays usable."""
    error = describe(exc)
    if exc.smtp_code == 421:
        transport.reset()
    elif mailbox_full(exc.smtp_code, exc.smtp_error):
        return _Failure(error, "deferred")
    elif 500 <= exc.smtp_code < 600:
        # After DATA a 5xx is usually about the message (spam, size),
        # not the address: only a mailbox status (5.1.x, 5.2.x) bounces.
        return _Failure(error, "failed", refused=reply_text(exc.smtp_error).startswith(("5.1.", "5.2.")))
    return _Failure(error)
