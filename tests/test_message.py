"""The message itself: headers, MIME structure, encoding limits, DKIM.

Built with ``message.prepare_message`` and parsed back with the standard
library's email parser, the way a receiving client would.
"""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from digest import tokens
from digest.message import MAX_NAME_CHARS, PreparedMessage, dkim_signer, prepare_message
from digest.models import Subscriber
from digest.render import RECIPIENT_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER

SENDER = Address("Field Notes", "news", "fieldnotes.example.org")
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
TOKEN = "A" * 32


def prepared(
    html: str = "<p>Hello</p>", text: str = "Hello", subject: str = "Weekly notes", **kwargs: object
) -> PreparedMessage:
    options: dict[str, object] = {
        "subject": subject,
        "html": html,
        "text": text,
        "sender": SENDER,
        "digest_key": "digest-1",
        "list_name": "Field Notes",
        "public_url": "https://fieldnotes.example.org/digest",
        "secret": "s3cret-s3cret",
        **kwargs,
    }
    return prepare_message(**options)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def part(message: EmailMessage, subtype: str) -> str:
    for item in message.walk():
        if item.get_content_type() == f"text/{subtype}":
            return str(item.get_content())
    raise AssertionError(subtype)


def assert_wire_safe(data: bytes) -> None:
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in data.replace(b"\r\n", b""), "bare CR"
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_every_required_header_is_there_and_right() -> None:
    message = prepared(reply_to=Address("Editor", "editor", "fieldnotes.example.org"),
                       mailto="unsubscribe@fieldnotes.example.org")  # fmt: skip
    out = message.personalise(Subscriber(0, "ada@example.com", "Ada Lovelace", "active", TOKEN), NOW)
    parsed = parse(out.data)

    assert parsed["From"] == "Field Notes <news@fieldnotes.example.org>"
    assert parsed["To"] == "Ada Lovelace <ada@example.com>"
    assert parsed["Reply-To"] == "Editor <editor@fieldnotes.example.org>"
    assert parsed["Subject"] == "Weekly notes"
    assert parsed["Date"] == "Sat, 21 Nov 2026 08:00:00 +0000"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["List-Id"] == "Field Notes <digest.fieldnotes.example.org>"
    assert re.fullmatch(r"<digest\.[0-9a-f]{20}@fieldnotes\.example\.org>", parsed["Message-ID"])
    assert parsed["Message-ID"] == out.message_id
    link = tokens.link_token("s3cret-s3cret", TOKEN)
    assert parsed["List-Unsubscribe"] == (
        f"<https://fieldnotes.example.org/digest/unsubscribe?token={link}>, "
        "<mailto:unsubscribe@fieldnotes.example.org?subject=unsubscribe>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for item in parts:
        assert item.get_content_charset() == "utf-8"
        assert item["Content-Transfer-Encoding"] == "quoted-printable"
    assert_wire_safe(out.data)


def test_message_id_is_stable_per_digest_and_subscriber_and_unique_across_them() -> None:
    one = prepared().personalise(Subscriber(0, "ada@example.com", None, "active", TOKEN), NOW).message_id
    again = prepared().personalise(Subscriber(0, "ada@example.com", None, "active", TOKEN), NOW).message_id
    other_person = prepared().personalise(Subscriber(0, "bob@example.com", None, "active", TOKEN), NOW).message_id
    other_digest = prepared(digest_key="digest-2").personalise(
        Subscriber(0, "ada@example.com", None, "active", TOKEN), NOW
    )
    assert one == again
    assert len({one, other_person, other_digest.message_id}) == 3


@pytest.mark.parametrize(
    "name",
    [
        "Evil\r\nBcc: victim@example.net",
        'Ada "The Countess" Lovelace',
        "Zoë Ünïcode-Brontë",
        "Smith, John <john@evil.example>",
        "x" * 3000,
        "\u2028line\u2029separators\x00",
    ],
)
def test_a_hostile_or_odd_name_never_breaks_the_to_header(name: str) -> None:
    out = prepared().personalise(Subscriber(0, "ada@example.com", name, "active", TOKEN), NOW)
    parsed = parse(out.data)

    assert_wire_safe(out.data)
    assert parsed["Bcc"] is None
    to = parsed["To"].addresses
    assert len(to) == 1 and to[0].addr_spec == "ada@example.com"
    assert "\n" not in to[0].display_name and "\r" not in to[0].display_name
    assert len(to[0].display_name) <= MAX_NAME_CHARS


def test_a_subject_with_newlines_and_non_ascii_is_one_encoded_line() -> None:
    subject = "Ünïcode café notes\r\nBcc: victim@example.net — " + "wörd " * 40
    out = prepared(subject=subject).personalise(Subscriber(0, "ada@example.com", None, "active", TOKEN), NOW)
    parsed = parse(out.data)

    assert parsed["Bcc"] is None
    # One line, capped at headers.MAX_SUBJECT characters with an ellipsis.
    assert parsed["Subject"] == " ".join(subject.split())[:149].rstrip() + "\u2026"
    raw_subject = out.data.split(b"\r\nSubject: ", 1)[1].split(b"\r\n")
    assert raw_subject[0].startswith(b"=?utf-8?")  # RFC 2047 encoded words, ASCII on the wire
    assert_wire_safe(out.data)


def test_placeholders_on_long_lines_survive_quoted_printable_at_every_offset() -> None:
    # A placeholder may sit anywhere relative to the 76-column soft breaks:
    # try every offset around them, in one unbroken 20 kB line.
    pieces = [f"{'é' * offset}<a href=\"{UNSUBSCRIBE_PLACEHOLDER}\">x</a>{RECIPIENT_PLACEHOLDER}"
              for offset in range(0, 160)]  # fmt: skip
    html = "<p>" + "".join(pieces) + "</p>"
    text = " ".join(pieces)
    out = prepared(html=html, text=text).personalise(Subscriber(0, "ada+news@example.com", "Ada", "active", TOKEN), NOW)
    parsed = parse(out.data)

    url = f"https://fieldnotes.example.org/digest/unsubscribe?token={tokens.link_token('s3cret-s3cret', TOKEN)}"
    assert part(parsed, "html").count(f'<a href="{url}">x</a>ada+news@example.com') == 160
    assert part(parsed, "plain").count(f'<a href="{url}">x</a>ada+news@example.com') == 160
    assert UNSUBSCRIBE_PLACEHOLDER.encode() not in out.data and RECIPIENT_PLACEHOLDER.encode() not in out.data
    body = out.data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert_wire_safe(out.data)


def test_html_special_characters_in_an_address_are_escaped_in_html_only() -> None:
    html = f"<p>Sent to {RECIPIENT_PLACEHOLDER}</p>"
    out = prepared(html=html, text=f"Sent to {RECIPIENT_PLACEHOLDER}").personalise(
        Subscriber(0, "o'brien&co@example.com", None, "active", TOKEN), NOW
    )
    parsed = parse(out.data)
    assert "o&#x27;brien&amp;co@example.com" in part(parsed, "html")
    assert "Sent to o'brien&co@example.com" in part(parsed, "plain")


def test_an_internationalised_address_is_written_as_utf8_not_encoded_words() -> None:
    out = prepared().personalise(Subscriber(0, "jörg@example.com", "Jörg", "active", TOKEN), NOW)
    to_line = out.data.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]
    assert "jörg@example.com".encode() in to_line
    assert_wire_safe(out.data)


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "private.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    return key, record


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers(dkim_key: tuple[Path, bytes]) -> None:
    key, record = dkim_key
    signer = dkim_signer("mail", "fieldnotes.example.org", key)
    long_html = "<p>" + ("code <b>x</b> " * 2000) + f"{UNSUBSCRIBE_PLACEHOLDER}</p>"
    message = prepared(html=long_html, subject="Ünïcode", signer=signer,
                       mailto="unsubscribe@fieldnotes.example.org")  # fmt: skip
    out = message.personalise(Subscriber(0, "ada@example.com", "Ada", "active", TOKEN), NOW)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.fieldnotes.example.org."
        return record

    assert out.data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(out.data, dnsfunc=dns)
    signature = parse(out.data)["DKIM-Signature"]
    signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", signature).group(1).split(":")}  # type: ignore[union-attr]
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    assert_wire_safe(out.data)
    # Any change in transit breaks it: the signature is over the final bytes.
    tampered = out.data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_is_relaxed_and_over_signs_from_and_subject(dkim_key: tuple[Path, bytes]) -> None:
    key, record = dkim_key
    signer = dkim_signer("mail", "fieldnotes.example.org", key)
    out = prepared(html=f"<p>{UNSUBSCRIBE_PLACEHOLDER}</p>", subject="Weekly", signer=signer).personalise(
        Subscriber(0, "ada@example.com", "Ada", "active", TOKEN), NOW
    )

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record

    signature = parse(out.data)["DKIM-Signature"]
    assert re.search(r"c=relaxed/relaxed", signature)
    names = [h.strip().lower() for h in re.search(r"h=([^;]+)", signature).group(1).split(":")]  # type: ignore[union-attr]
    assert names.count("from") == 2 and names.count("subject") == 2
    assert "auto-submitted" in names
    assert dkim.verify(out.data, dnsfunc=dns)
    # Relaxed: a relay re-spacing a header does not break it.
    respaced = out.data.replace(b"Subject: Weekly", b"Subject:  Weekly")
    assert dkim.verify(respaced, dnsfunc=dns)
    # Over-signed: a second Subject added in transit does.
    head, _, body = out.data.partition(b"\r\n\r\n")
    assert not dkim.verify(head + b"\r\nSubject: Free money\r\n\r\n" + body, dnsfunc=dns)
