"""Build the RFC 5322 message: prepared once per digest, personalised per subscriber.

``prepare_message`` does everything that is the same for every recipient: the
headers that do not change, the MIME skeleton, and the quoted-printable
encoding of the text and HTML bodies. Each body is cut at its placeholders
(``render.UNSUBSCRIBE_PLACEHOLDER``, ``render.RECIPIENT_PLACEHOLDER``) and the
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
from dataclasses import dataclass, field
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
_POLICY_UTF8 = policy.SMTPUTF8
MAX_NAME_CHARS = 100


class Signer(Protocol):
    def __call__(self, message: bytes) -> bytes:
        """Return the header line(s) to prepend, e.g. a DKIM-Signature."""
        ...


def header(name: str, value: str | Address) -> bytes:
    """One header, folded and RFC 2047-encoded as needed, CRLF-terminated."""
    if isinstance(value, str):
        value = " ".join(value.replace("\r", " ").replace("\n", " ").split())
    folded: str = _POLICY.header_factory(name, value).fold(policy=_POLICY)
    if not (isinstance(value, Address) and not value.addr_spec.isascii()):
        return folded.encode("ascii")
    # Only an internationalised address (a non-ASCII local part) gets here:
    # such mail needs SMTPUTF8 anyway, which the transport asks for.
    folded_utf8: str = _POLICY_UTF8.header_factory(name, value).fold(policy=_POLICY_UTF8)
    return folded_utf8.encode("utf-8")


def _qp(text: str) -> bytes:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(normalised.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


_PLACEHOLDERS = re.compile(f"({re.escape(UNSUBSCRIBE_PLACEHOLDER)}|{re.escape(RECIPIENT_PLACEHOLDER)})")
_SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True)
class EncodedBody:
    """A body part, quoted-printable-encoded once, with holes for personal values.

    ``pieces`` alternate: encoded bytes, a placeholder name, encoded bytes, ...
    """

    pieces: tuple[bytes | str, ...]

    @classmethod
    def encode(cls, text: str) -> EncodedBody:
        normalised = text.replace("\r\n", "\n").replace("\r", "\n")
        parts = _PLACEHOLDERS.split(normalised)
        return cls(tuple(_qp(part) if n % 2 == 0 else part for n, part in enumerate(parts)))

    def fill(self, values: dict[str, bytes]) -> bytes:
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out += (_SOFT_BREAK, values[piece], _SOFT_BREAK)
            else:
                out.append(piece)
        return b"".join(out)


# A display name made only of these needs no quoting or encoding (RFC 5322 atoms).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")


def to_header(email: str, name: str | None) -> bytes:
    """The To header for one recipient; the email package only for unusual names."""
    display = (clean_name(name) or "")[:MAX_NAME_CHARS]
    if email.isascii() and _PLAIN_NAME.fullmatch(display) and len(display) + len(email) < 70:
        return f"To: {display} <{email}>\r\n".encode() if display else f"To: {email}\r\n".encode()
    local, _, domain = email.rpartition("@")
    # A display name is one unbreakable quoted string when folded: it is
    # capped (above) so the To line stays far below the 998-octet limit.
    return header("To", Address(display_name=display, username=local, domain=domain))


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
    bodies: tuple[EncodedBody, EncodedBody] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The expensive part, once per digest: encode text and HTML around the holes.
        object.__setattr__(self, "bodies", (EncodedBody.encode(self.text), EncodedBody.encode(self.html)))

    def unsubscribe_url(self, token: str) -> str:
        link = tokens.link_token(self.secret, token)
        base = self.public_url or "https://unsubscribe.invalid"
        return f"{base}/unsubscribe?token={link}"

    def message_id(self, recipient: Recipient) -> str:
        # Deterministic per (digest, subscriber): a copy re-sent after a crash
        # carries the same Message-ID, which lets receivers drop the duplicate.
        tag = hashlib.sha256(f"{self.digest_key}\0{recipient.email}".encode()).hexdigest()[:20]
        return f"<digest.{tag}@{self.sender.domain}>"

    def personal_values(self, recipient: Recipient) -> dict[str, str]:
        """What each placeholder stands for in ``recipient``'s copy (plain text: HTML escapes it)."""
        return {UNSUBSCRIBE_PLACEHOLDER: self.unsubscribe_url(recipient.token), RECIPIENT_PLACEHOLDER: recipient.email}

    def personal_bodies(self, recipient: Recipient) -> tuple[str, str]:
        """``recipient``'s text and HTML bodies, decoded (for previews; sending uses ``personalise``)."""
        text, html_body = self.text, self.html
        for placeholder, value in self.personal_values(recipient).items():
            text = text.replace(placeholder, value)
            html_body = html_body.replace(placeholder, html.escape(value))
        return text, html_body

    def personalise(self, recipient: Recipient, now: datetime) -> OutgoingMessage:
        values = self.personal_values(recipient)
        url = values[UNSUBSCRIBE_PLACEHOLDER]
        text_values = {name: _qp(value) for name, value in values.items()}
        html_values = {name: _qp(html.escape(value)) for name, value in values.items()}
        message_id = self.message_id(recipient)
        unsubscribe = [f"<{url}>"]
        if self.mailto:
            unsubscribe.append(f"<mailto:{self.mailto}?subject=unsubscribe>")
        headers = (
            self.sender_headers
            + to_header(recipient.email, recipient.name)
            + b"Date: " + format_datetime(now).encode("ascii") + b"\r\n"
            + b"Message-ID: " + message_id.encode("ascii") + b"\r\n"
            + b"List-Unsubscribe: " + ",\r\n ".join(unsubscribe).encode("ascii") + b"\r\n"
            + (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" if self.public_url else b"")
            + self.static_headers
        )  # fmt: skip
        boundary = b"--" + self.boundary.encode("ascii")
        part_head = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        text_body, html_body = self.bodies
        data = b"".join((
            headers, b"\r\n",
            boundary, b"\r\n", part_head % b"plain", text_body.fill(text_values), b"\r\n",
            boundary, b"\r\n", part_head % b"html", html_body.fill(html_values), b"\r\n",
            boundary, b"--\r\n",
        ))  # fmt: skip
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
    wanted = [b"from", b"from", b"to", b"subject", b"subject", b"date", b"message-id", b"mime-version",
              b"content-type", b"list-id", b"list-unsubscribe", b"list-unsubscribe-post", b"reply-to",
              b"auto-submitted"]  # fmt: skip

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
