"""Build the RFC 5322 message: prepared once per digest, personalised per subscriber.

``prepare_message`` does everything that is the same for every recipient
(headers, MIME skeleton, placeholder positions). ``PreparedMessage.personalise``
then only substitutes the recipient's address and unsubscribe URL into the
text and HTML strings, quoted-printable-encodes them with binascii (C speed),
and joins bytes. Substituting before encoding means a placeholder can never be
split by a soft line break (email-facts.md). Output uses CRLF and no line
exceeds 76 octets in the bodies or 998 anywhere.
"""

from __future__ import annotations

import binascii
import hashlib
import html
import secrets
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

from digest import tokens
from digest.render import RECIPIENT_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER
from digest.subscribers import clean_name

_POLICY = policy.SMTP


class Signer(Protocol):
    def __call__(self, message: bytes) -> bytes:
        """Return the header line(s) to prepend, e.g. a DKIM-Signature."""
        ...


def header(name: str, value: str | Address) -> bytes:
    """One header, folded and RFC 2047-encoded as needed, CRLF-terminated."""
    if isinstance(value, str):
        value = " ".join(value.replace("\r", " ").replace("\n", " ").split())
    folded: str = _POLICY.header_factory(name, value).fold(policy=_POLICY)
    return folded.encode("ascii")


def _qp(text: str) -> bytes:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(normalised.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    token: str  # the subscriber's random token (signed into the link here)
    id: int = 0


@dataclass(frozen=True)
class OutgoingMessage:
    recipient: str
    message_id: str
    data: bytes


@dataclass(frozen=True)
class PreparedMessage:
    sender: Address
    digest_key: str  # stable per digest: makes Message-IDs deterministic
    sender_headers: bytes  # From, Reply-To
    static_headers: bytes  # Subject, List-Id, MIME
    html: str
    text: str
    boundary: str
    public_url: str | None
    secret: str
    mailto: str | None
    signer: Signer | None = None

    def unsubscribe_url(self, token: str) -> str:
        link = tokens.link_token(self.secret, token)
        base = self.public_url or "https://unsubscribe.invalid"
        return f"{base}/unsubscribe?token={link}"

    def message_id(self, recipient: Recipient) -> str:
        # Deterministic per (digest, subscriber): a copy re-sent after a crash
        # carries the same Message-ID, which lets receivers drop the duplicate.
        tag = hashlib.sha256(f"{self.digest_key}\0{recipient.email}".encode()).hexdigest()[:20]
        return f"<digest.{tag}@{self.sender.domain}>"

    def personalise(self, recipient: Recipient, now: datetime) -> OutgoingMessage:
        url = self.unsubscribe_url(recipient.token)
        text = self.text.replace(UNSUBSCRIBE_PLACEHOLDER, url).replace(RECIPIENT_PLACEHOLDER, recipient.email)
        body_html = self.html.replace(UNSUBSCRIBE_PLACEHOLDER, html.escape(url)).replace(
            RECIPIENT_PLACEHOLDER, html.escape(recipient.email)
        )
        message_id = self.message_id(recipient)
        unsubscribe = [f"<{url}>"]
        if self.mailto:
            unsubscribe.append(f"<mailto:{self.mailto}?subject=unsubscribe>")
        local, _, domain = recipient.email.rpartition("@")
        to = Address(display_name=clean_name(recipient.name) or "", username=local, domain=domain)
        headers = (
            self.sender_headers
            + header("To", to)
            + header("Date", format_datetime(now))
            + header("Message-ID", message_id)
            + b"List-Unsubscribe: " + ",\r\n ".join(unsubscribe).encode("ascii") + b"\r\n"
            + (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" if self.public_url else b"")
            + self.static_headers
        )  # fmt: skip
        boundary = self.boundary.encode("ascii")
        part_head = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        body = (
            b"--" + boundary + b"\r\n" + part_head % b"plain" + _qp(text) + b"\r\n"
            + b"--" + boundary + b"\r\n" + part_head % b"html" + _qp(body_html) + b"\r\n"
            + b"--" + boundary + b"--\r\n"
        )  # fmt: skip
        data = headers + b"\r\n" + body
        if self.signer is not None:
            data = self.signer(data) + data
        return OutgoingMessage(recipient=recipient.email, message_id=message_id, data=data)


def prepare_message(
    *,
    subject: str,
    html: str,
    text: str,
    sender: Address,
    digest_key: str,
    list_name: str,
    public_url: str | None,
    secret: str,
    reply_to: Address | None = None,
    mailto: str | None = None,
    signer: Signer | None = None,
) -> PreparedMessage:
    boundary = "=_digest_" + secrets.token_hex(12)
    list_label = f"digest.{sender.domain}"
    static = (
        header("Subject", subject)
        + header("List-Id", f"{' '.join(list_name.split()) or 'digest'} <{list_label}>")
        + b"MIME-Version: 1.0\r\n"
        + b"Auto-Submitted: auto-generated\r\n"
        + b'Content-Type: multipart/alternative; boundary="' + boundary.encode("ascii") + b'"\r\n'
    )  # fmt: skip
    return PreparedMessage(
        sender=sender,
        digest_key=digest_key,
        sender_headers=header("From", sender) + (header("Reply-To", reply_to) if reply_to else b""),
        static_headers=static,
        html=html,
        text=text,
        boundary=boundary,
        public_url=public_url,
        secret=secret,
        mailto=mailto,
        signer=signer,
    )


def dkim_signer(selector: str, domain: str, key_file: Path) -> Signer:
    """A Signer that adds a DKIM-Signature over the final bytes (dkimpy)."""
    import dkim

    key = key_file.read_bytes()
    wanted = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
              b"list-id", b"list-unsubscribe", b"list-unsubscribe-post", b"reply-to"]  # fmt: skip

    def sign(message: bytes) -> bytes:
        signature: bytes = dkim.sign(message, selector.encode(), domain.encode(), key, include_headers=wanted)
        return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    return sign
