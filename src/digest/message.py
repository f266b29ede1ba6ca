"""Build the RFC 5322 message: prepared once per digest, personalised per subscriber.

``prepare_message`` does everything that is the same for every recipient: the
headers that do not change, the MIME skeleton, and the quoted-printable
encoding of the text and HTML bodies. Each body is cut at its placeholders
(placeholders.py: random per digest, so feed text never matches one) and the
pieces are encoded once. ``PreparedMessage.personalise`` then only encodes the
recipient's values and joins bytes, with a soft line break (``=`` CRLF) on
each side of every value: a decoder removes those, so a placeholder can never
be split or mangled by the encoding (email-facts.md), and the cost per
recipient does not grow with the size of the digest. Output uses CRLF, body
lines stay within 76 octets and header lines far below 998.
"""

from __future__ import annotations

import binascii
import hashlib
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from digest import headers, tokens, verp
from digest.models import Subscriber
from digest.placeholders import LEGACY, Placeholders

MAX_NAME_CHARS = headers.MAX_NAME


class Signer(Protocol):
    def __call__(self, message: bytes) -> bytes:
        """Return the header line(s) to prepend, e.g. a DKIM-Signature."""
        ...


def header(name: str, value: str | Address) -> bytes:
    """One header from untrusted text or an Address, cleaned and encoded by headers.py."""
    if isinstance(value, Address):
        return headers.address(name, value.display_name, value.addr_spec)
    return headers.unstructured(name, value)


def quoted_printable(text: str) -> bytes:
    """``text`` as UTF-8 quoted-printable with CRLF line ends (body lines within 76 octets)."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(normalised.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


_SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True)
class EncodedBody:
    """A body part, quoted-printable-encoded once, with holes for personal values.

    ``pieces`` alternate: encoded bytes, a placeholder name, encoded bytes, ...
    """

    pieces: tuple[bytes | str, ...]

    @classmethod
    def encode(cls, text: str, placeholders: Placeholders) -> EncodedBody:
        normalised = text.replace("\r\n", "\n").replace("\r", "\n")
        holes = re.compile("(" + "|".join(re.escape(mark) for mark in placeholders.personal) + ")")
        parts = holes.split(normalised)
        return cls(tuple(quoted_printable(part) if n % 2 == 0 else part for n, part in enumerate(parts)))

    def fill(self, values: Mapping[str, bytes]) -> bytes:
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out += (_SOFT_BREAK, values[piece], _SOFT_BREAK)
            else:
                out.append(piece)
        return b"".join(out)


def to_header(email: str, name: str | None) -> bytes:
    """The To header for one recipient (headers.address: cheap, whatever the script)."""
    return headers.address("To", name, email)


@dataclass(frozen=True)
class OutgoingMessage:
    recipient: str
    message_id: str
    data: bytes
    envelope_from: str | None = None  # a VERP MAIL FROM (DIGEST_BOUNCE_ADDRESS), else the From address


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
    placeholders: Placeholders = LEGACY
    bounce_address: str | None = None  # DIGEST_BOUNCE_ADDRESS: VERP envelope sender per recipient
    digest_id: int = 0
    bodies: tuple[EncodedBody, EncodedBody] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The expensive part, once per digest: encode text and HTML around the holes.
        bodies = (EncodedBody.encode(self.text, self.placeholders), EncodedBody.encode(self.html, self.placeholders))
        object.__setattr__(self, "bodies", bodies)

    def unsubscribe_url(self, token: str) -> str:
        return tokens.unsubscribe_url(self.public_url, self.secret, token)

    def message_id(self, recipient: Subscriber) -> str:
        # Deterministic per (digest, subscriber): a copy re-sent after a crash
        # carries the same Message-ID, which lets receivers drop the duplicate.
        tag = hashlib.sha256(f"{self.digest_key}\0{recipient.email}".encode()).hexdigest()[:20]
        return f"<digest.{tag}@{self.sender.domain}>"

    def personal_values(self, recipient: Subscriber) -> dict[str, str]:
        """What each placeholder stands for in ``recipient``'s copy (plain text: HTML escapes it)."""
        marks = self.placeholders
        return {
            marks.unsubscribe: self.unsubscribe_url(recipient.token),
            marks.recipient: recipient.email,
            marks.subscriber_page: tokens.subscriber_page_url(self.public_url, self.secret, recipient.token),
        }

    def personal_bodies(self, recipient: Subscriber) -> tuple[str, str]:
        """``recipient``'s text and HTML bodies, decoded (for previews; sending uses ``personalise``)."""
        text, html_body = self.text, self.html
        for placeholder, value in self.personal_values(recipient).items():
            text = text.replace(placeholder, value)
            html_body = html_body.replace(placeholder, html.escape(value))
        return text, html_body

    def personalise(self, recipient: Subscriber, now: datetime) -> OutgoingMessage:
        values = self.personal_values(recipient)
        url = values[self.placeholders.unsubscribe]
        text_values = {name: quoted_printable(value) for name, value in values.items()}
        html_values = {name: quoted_printable(html.escape(value)) for name, value in values.items()}
        message_id = self.message_id(recipient)
        bounce_token = verp.make_token(self.secret, self.digest_id, recipient.id) if self.bounce_address else None
        unsubscribe = [f"<{url}>"]
        if self.mailto:
            unsubscribe.append(f"<mailto:{quote(headers.addr_spec(self.mailto), safe='@')}?subject=unsubscribe>")
        head = (
            self.sender_headers
            + to_header(recipient.email, recipient.name)
            + b"Date: "
            + format_datetime(now).encode("ascii")
            + b"\r\n"
            + b"Message-ID: "
            + message_id.encode("ascii")
            + b"\r\n"
            + b"List-Unsubscribe: "
            + ",\r\n ".join(unsubscribe).encode("ascii")
            + b"\r\n"
            + (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" if self.public_url else b"")
            + self.static_headers
            + (f"{verp.HEADER}: {bounce_token}\r\n".encode("ascii") if bounce_token else b"")
        )
        boundary = b"--" + self.boundary.encode("ascii")
        part_head = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        text_body, html_body = self.bodies
        data = b"".join(
            (
                head,
                b"\r\n",
                boundary,
                b"\r\n",
                part_head % b"plain",
                text_body.fill(text_values),
                b"\r\n",
                boundary,
                b"\r\n",
                part_head % b"html",
                html_body.fill(html_values),
                b"\r\n",
                boundary,
                b"--\r\n",
            )
        )
        if self.signer is not None:
            data = self.signer(data) + data
        envelope = (
            verp.envelope_sender(self.bounce_address, bounce_token) if self.bounce_address and bounce_token else None
        )
        # The envelope gets the ASCII (IDNA) domain too: only a non-ASCII local part needs SMTPUTF8.
        return OutgoingMessage(
            recipient=headers.addr_spec(recipient.email), message_id=message_id, data=data, envelope_from=envelope
        )


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
    placeholders: Placeholders | None = None,
    bounce_address: str | None = None,
    digest_id: int = 0,
) -> PreparedMessage:
    """``placeholders``: those the digest was rendered with (the fixed legacy ones when None)."""
    boundary = "=_digest_" + secrets.token_hex(12)
    # Header text: the domain in ASCII (IDNA) form, everywhere it appears.
    sender = Address(sender.display_name, sender.username, headers.ascii_domain(sender.domain))
    list_label = f"digest.{sender.domain}"
    static = (
        header("Subject", subject)
        + headers.named("List-Id", list_name or "digest", list_label)
        + b"MIME-Version: 1.0\r\n"
        + b"Auto-Submitted: auto-generated\r\n"
        + b'Content-Type: multipart/alternative; boundary="'
        + boundary.encode("ascii")
        + b'"\r\n'
    )
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
        placeholders=placeholders or LEGACY,
        bounce_address=bounce_address,
        digest_id=digest_id,
    )


def dkim_signer(selector: str, domain: str, key_file: Path) -> Signer:
    """A Signer that adds a DKIM-Signature over the final bytes (dkimpy).

    Raises OSError when the key file cannot be read, ValueError when dkimpy
    is missing or the key is unusable: found before the first message, not
    in the middle of a send.
    """
    try:
        import dkim
    except ImportError:
        raise ValueError("DKIM signing needs dkimpy: pip install 'digest[dkim]'") from None

    key = key_file.read_bytes()
    # From and Subject are listed twice: the second, absent instance over-signs them, so a
    # From or Subject header added in transit breaks the signature instead of riding on it.
    wanted = [
        b"from",
        b"from",
        b"to",
        b"subject",
        b"subject",
        b"date",
        b"message-id",
        b"mime-version",
        b"content-type",
        b"list-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"reply-to",
        b"auto-submitted",
    ]

    def sign(message: bytes) -> bytes:
        signature: bytes = dkim.sign(
            message,
            selector.encode(),
            domain.encode(),
            key,
            include_headers=wanted,
            canonicalize=(b"relaxed", b"relaxed"),  # survives relays that refold or re-space headers
        )
        return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    try:
        sign(b"From: check@" + domain.encode() + b"\r\nSubject: key check\r\n\r\nok\r\n")
    except dkim.DKIMException as exc:
        raise ValueError(f"not a usable private key: {exc}") from None
    return sign
