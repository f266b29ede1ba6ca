"""The two mails of the sign-up: the confirmation request and the welcome.

The confirmation carries nothing the visitor typed: not the name, not a
message, only their address in To (it must) and one link. Spammers who put
their text into a sign-up form's name field so that the confirmation mail
delivers it to their victims get nothing out of this form.

Bodies come from templates (``confirm.txt.j2``/``confirm.html.j2`` bundled,
overridable in DIGEST_TEMPLATE_DIR like the digest's); the welcome mail only
exists when the owner writes ``welcome.html.j2`` and ``welcome.txt.j2`` in
DIGEST_TEMPLATE_DIR.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from email.utils import format_datetime

import jinja2

from digest import headers
from digest.config import Settings
from digest.message import OutgoingMessage, header, quoted_printable


def _environment(settings: Settings) -> jinja2.Environment:
    from digest.render import template_environment

    return template_environment(settings)


def welcome_available(settings: Settings) -> bool:
    if not settings.welcome or settings.template_dir is None:
        return False
    return all((settings.template_dir / f"welcome.{kind}.j2").is_file() for kind in ("html", "txt"))


def _message(
    settings: Settings,
    to: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    extra: bytes = b"",
) -> OutgoingMessage:
    sender = settings.sender_address
    boundary = f"=_signup_{secrets.token_hex(12)}"
    message_id = f"<signup.{secrets.token_hex(12)}@{sender.domain}>"
    head = b"".join(
        [
            header("From", sender),
            headers.address("To", None, to),
            header("Subject", subject),
            f"Date: {format_datetime(now)}\r\n".encode("ascii"),
            f"Message-ID: {message_id}\r\n".encode("ascii"),
            b"Auto-Submitted: auto-generated\r\n",
            extra,
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode("ascii"),
        ]
    )
    parts = []
    for subtype, body in (("plain", text), ("html", html)):
        parts.append(
            f"--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
            + quoted_printable(body)
            + b"\r\n"
        )
    data = head + b"\r\n" + b"".join(parts) + f"--{boundary}--\r\n".encode("ascii")
    return OutgoingMessage(to, message_id, data)


def confirmation(settings: Settings, to: str, link: str, valid_days: float, now: datetime) -> OutgoingMessage:
    sender = settings.sender_address
    newsletter = sender.display_name or sender.domain
    env = _environment(settings)
    context = {"newsletter": newsletter, "confirm_url": link, "valid_days": max(1, round(valid_days))}
    text = env.get_template("confirm.txt.j2").render(context)
    html = env.get_template("confirm.html.j2").render(context)
    return _message(settings, to, f"Confirm your subscription to {newsletter}", text, html, now)


def welcome(
    settings: Settings, to: str, unsubscribe_url: str, now: datetime, subscriber_page_url: str = ""
) -> OutgoingMessage:
    sender = settings.sender_address
    newsletter = sender.display_name or sender.domain
    env = _environment(settings)
    context = {"newsletter": newsletter, "unsubscribe_url": unsubscribe_url, "subscriber_page_url": subscriber_page_url}
    text = env.get_template("welcome.txt.j2").render(context)
    html = env.get_template("welcome.html.j2").render(context)
    extra = f"List-Unsubscribe: <{unsubscribe_url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    return _message(settings, to, f"Welcome to {newsletter}", text, html, now, extra.encode("ascii"))


def send(settings: Settings, message: OutgoingMessage) -> None:
    """Send one message over a connection of its own (SendError/ConnectFailure on failure).

    The connection comes from the composition root (wiring.py), like every send's.
    """
    from digest.wiring import wire

    transport = wire(settings).transport()
    try:
        transport.send(settings.sender_address.addr_spec, message)
    finally:
        transport.close()
