"""One SMTP connection: plain, STARTTLS or implicit TLS, optional AUTH.

``SmtpTransport`` opens lazily and is kept for the next message; mailer.py
runs several of them and classifies what the server replies. Failures to
connect are a ``SendError`` when a retry cannot help (authentication, TLS,
no STARTTLS, no AUTH) and a ``ConnectFailure`` when it might.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from digest.errors import ConnectFailure, SendError, shown
from digest.message import OutgoingMessage


class _Session:
    """What digest adds to an smtplib session (mixed into SMTP and SMTP_SSL).

    * ``meanwhile``: work run once, right after MAIL FROM is on the wire,
      while the server reads it (the previous message's delivery record), so
      that work costs no round trip of its own.
    * ``ahead``: work run once, right after the message's data is on the
      wire, while the server reads it (the next recipient's copy). It must
      not raise (the reply is still unread); if it does, the session is
      closed as for ``meanwhile``.
    * MAIL FROM and RCPT TO take the addresses as they are: digest has
      validated and normalised them already (plain dot-atom local parts),
      so they go out in angle brackets without smtplib's address parser,
      which costs more than the rest of the command for unusual names.
    * DATA dot-stuffs the message (RFC 5321 4.5.2: a line that starts with
      a period gets one more) with ``bytes.replace``, and only when a line
      needs it, instead of a regular expression over the whole message: the
      message is sent as it is built, with CRLF line ends.
    """

    meanwhile: Callable[[], None] | None = None
    ahead: Callable[[], None] | None = None

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if any(option.lower() == "smtputf8" for option in options):
            if not self.has_extn("smtputf8"):  # type: ignore[attr-defined]
                raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
            self.command_encoding = "utf-8"
        self.putcmd("mail", f"from:<{sender}>" + "".join(" " + option for option in options))
        return self.getreply()  # type: ignore[attr-defined,no-any-return]

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        self.putcmd("rcpt", f"to:<{recip}>" + "".join(" " + option for option in options))
        return self.getreply()  # type: ignore[attr-defined,no-any-return]

    command_encoding: str

    def putcmd(self, cmd: str, args: str = "") -> None:
        super().putcmd(cmd, args)  # type: ignore[misc]
        if cmd == "mail" and self.meanwhile is not None:
            work, self.meanwhile = self.meanwhile, None
            self._while_the_server_reads(work)

    def _while_the_server_reads(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException:
            # A reply is still unread: this session is out of step for good,
            # so it is closed, never reused.
            self.close()  # type: ignore[attr-defined]
            raise

    def data(self, msg: Any) -> tuple[int, bytes]:
        if not isinstance(msg, bytes):
            return super().data(msg)  # type: ignore[misc,no-any-return]
        code, reply = self.docmd("data")  # type: ignore[attr-defined]
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        stuffed = msg.replace(b"\n.", b"\n..") if b"\n." in msg else msg
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        ending = b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n"
        self.send(stuffed + ending)  # type: ignore[attr-defined]
        if self.ahead is not None:
            work, self.ahead = self.ahead, None
            self._while_the_server_reads(work)
        return self.getreply()  # type: ignore[attr-defined,no-any-return]


class _Smtp(_Session, smtplib.SMTP):
    pass


class _SmtpSsl(_Session, smtplib.SMTP_SSL):
    pass


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to connect: the SMTP_* settings a connection needs, and nothing else.

    Built from Settings in one place (``wiring.smtp_options``); no defaults of its own.
    """

    host: str
    port: int
    security: str  # none | starttls | ssl (SMTP_SECURITY)
    username: str | None
    password: str | None = field(repr=False)  # never in a repr, so never in a log line
    timeout: float
    verify_cert: bool


class SmtpTransport:
    """One SMTP connection, opened lazily and reopened after a drop or a 421 (a mailer.Transport)."""

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options
        self._smtp: _Smtp | _SmtpSsl | None = None

    @property
    def where(self) -> str:
        return f"SMTP {self.options.host}:{self.options.port}"

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.options.verify_cert:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def connect(self) -> None:
        """Open, secure and authenticate. SendError for problems a retry cannot fix,
        ConnectFailure for those it might (refused, timed out, dropped, 421)."""
        s = self.options
        try:
            smtp = self._open()
        except SendError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"{self.where}: authentication failed: {describe(exc)}",
                hint="check SMTP_USERNAME and SMTP_PASSWORD",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            hint = "the server offers no AUTH here; check SMTP_SECURITY" if s.username else "check SMTP_SECURITY"
            raise SendError(f"{self.where}: {exc}", hint=hint) from None
        except ssl.SSLCertVerificationError as exc:
            raise SendError(
                f"{self.where}: TLS certificate not trusted: {exc.verify_message or exc.reason}",
                hint="the server must present a certificate valid for SMTP_HOST",
            ) from None
        except ssl.SSLError as exc:
            hint = "check SMTP_SECURITY and SMTP_PORT (587 is usually starttls, 465 ssl)"
            raise SendError(f"{self.where}: TLS failed: {exc.reason or exc}", hint=hint) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectFailure(f"{self.where}: cannot connect: {describe(exc)}") from None
        self._smtp = smtp

    def _open(self) -> _Smtp | _SmtpSsl:
        """The session, ready to send; on any failure the socket is closed and the error raised as is."""
        s = self.options
        smtp: _Smtp | _SmtpSsl | None = None
        try:
            if s.security == "ssl":
                smtp = _SmtpSsl(s.host, s.port, timeout=s.timeout, context=self._context())
            else:
                smtp = _Smtp(s.host, s.port, timeout=s.timeout)
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SendError(f"{self.where} does not offer STARTTLS", hint=starttls_hint(s.port))
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if s.username and not smtp.has_extn("auth"):
                raise SendError(
                    f"{self.where} offers no AUTH, but SMTP_USERNAME is set",
                    hint="many servers offer AUTH only after TLS (SMTP_SECURITY=starttls or ssl); "
                    "for a relay that needs no login, unset SMTP_USERNAME",
                )
            if s.username:
                smtp.login(s.username, s.password or "")
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    @property
    def connected(self) -> bool:
        return self._smtp is not None

    def send(
        self,
        sender: str,
        message: OutgoingMessage,
        meanwhile: Callable[[], None] | None = None,
        ahead: Callable[[], None] | None = None,
    ) -> None:
        """Send one message. ``meanwhile`` runs exactly once during the call and before the
        server can accept the message (while it reads MAIL FROM), even when the send fails.
        ``ahead`` runs at most once, while the server reads the message's data."""
        try:
            if self._smtp is None:
                self.connect()
            smtp = self._smtp
            assert smtp is not None
            smtp.meanwhile, meanwhile = meanwhile, None
            smtp.ahead = ahead
            options = ["SMTPUTF8"] if not message.recipient.isascii() else []
            smtp.sendmail(message.envelope_from or sender, [message.recipient], message.data, mail_options=options)
        finally:
            if self._smtp is not None:
                self._smtp.ahead = None  # not run (the send failed before its data): the caller does it
            if self._smtp is not None and self._smtp.meanwhile is not None:
                meanwhile, self._smtp.meanwhile = self._smtp.meanwhile, None
            if self._smtp is not None and self._smtp.sock is None:
                self._smtp = None  # closed under us (a failing ``meanwhile``): the next send reconnects
            if meanwhile is not None:
                meanwhile()

    def reset(self) -> None:
        """Forget the connection (after an error); the next send reconnects."""
        smtp, self._smtp = self._smtp, None
        _close_quietly(smtp)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def starttls_hint(port: int) -> str:
    """What to try when the server offers no STARTTLS on ``port``."""
    if port in (25, 1025):
        return "a local relay often has no TLS: set SMTP_SECURITY=none"
    return "set SMTP_SECURITY=ssl for port 465, or check SMTP_PORT"


def sender_refused_hint(code: int, reply: str) -> str:
    """The hint for a 5xx to MAIL FROM, by what the server asked for."""
    if code == 530 and "starttls" in reply.lower():
        return "the server wants TLS first: set SMTP_SECURITY=starttls"
    if code == 530:
        return "the server wants AUTH: set SMTP_USERNAME and SMTP_PASSWORD"
    return "check DIGEST_FROM against what your provider allows"


def _close_quietly(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()


def reply_text(value: bytes | str) -> str:
    """A server reply on one line, its unprintable characters escaped (it is printed and stored)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return shown(" ".join(text.split()), 500)


def describe(exc: BaseException) -> str:
    """An SMTP error (its code and reply) or any other exception, on one line."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {reply_text(exc.smtp_error)}"
    return shown(" ".join(str(exc).split()), 500) or type(exc).__name__


def mailbox_full(code: int, reply: bytes | str) -> bool:
    """A full mailbox (552, or enhanced status 5.2.2/4.2.2) is soft: the reader may empty it.

    Retrying at once does not help, so it is deferred to a later run (see
    store.RETRY_SPACING) instead of failing the address for good.
    """
    text = reply_text(reply)
    if text.startswith(("5.2.2", "4.2.2")):
        return True
    # A bare 552 is "exceeded storage allocation"; with an enhanced status
    # other than 5.2.x (5.3.4: message too big) it is about the message.
    return code == 552 and (text.startswith("5.2.") or not re.match(r"[45]\.\d+\.\d+", text))
