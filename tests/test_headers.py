"""headers.py: the one function untrusted text passes through to become header text."""

from __future__ import annotations

import email
import email.policy
import sys
import unicodedata

import pytest

from digest import headers
from digest.message import to_header

EVIL_WORD = "=?utf-8?q?Notes=0D=0ABcc:_x@evil.example?="


def test_the_forbidden_class_is_every_control_format_and_separator_character() -> None:
    allowed = {"\u200c", "\u200d"}  # ZWNJ and ZWJ: needed by several scripts and emoji
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        should_go = category in ("Cc", "Cf", "Cs", "Zl", "Zp") and char not in allowed
        matched = bool(headers._FORBIDDEN.fullmatch(char))
        # Newer Unicode versions than this Python's may assign format characters to unassigned points.
        assert matched == should_go or (matched and category == "Cn"), (hex(code), category)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EVIL_WORD, "Notes Bcc: x@evil.example"),
        ("=?utf-8?b?QQ0KQmNjOiB4QGV2aWwuZXhhbXBsZQ==?=", "A Bcc: x@evil.example"),
        ("Raw\r\nBcc: x@evil.example", "Raw Bcc: x@evil.example"),
        ("nul\x00here\x7fdel\x85nel", "nul here del nel"),
        ("\u202eevil\u202c \u2066iso\u2069 \ufeffbom \u200bzw", "evil iso bom zw"),
        ("line\u2028para\u2029end", "line para end"),
        ("  lots \t of   space ", "lots of space"),
        ("=?bogus-charset?q?x?= =?utf-8?q?broken", "=?bogus-charset?q?x?= =?utf-8?q?broken"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between encoded words is not text
        ("Zoë \u200dfamily", "Zoë \u200dfamily"),
    ],
)
def test_clean_decodes_once_and_strips_everything_a_header_must_not_carry(text: str, expected: str) -> None:
    assert headers.clean(text) == expected


def test_clean_caps_the_length() -> None:
    assert headers.clean("x" * 5000) == "x" * headers.MAX_NAME
    subject = headers.clean("word " * 100, headers.MAX_SUBJECT, "\u2026")
    assert len(subject) <= headers.MAX_SUBJECT and subject.endswith("\u2026")


@pytest.mark.parametrize(
    ("address", "name", "line"),
    [
        ("ada@example.com", "Ada Lovelace", b"To: Ada Lovelace <ada@example.com>\r\n"),
        ("ada@example.com", None, b"To: ada@example.com\r\n"),
        ("ada@example.com", "\x00\r\n", b"To: ada@example.com\r\n"),
        ("anne@example.com", "Anne, Jr.", b'To: "Anne, Jr." <anne@example.com>\r\n'),
        ("q@example.com", 'Say "hi" \\o/', b'To: "Say \\"hi\\" \\\\o/" <q@example.com>\r\n'),
        ("zw@example.com", "张伟", b"To: =?utf-8?b?5byg5Lyf?= <zw@example.com>\r\n"),
        ("x@example.com", EVIL_WORD, b'To: "Notes Bcc: x@evil.example" <x@example.com>\r\n'),
        # Double-encoded: what decodes to an encoded word is itself encoded, never left readable as one.
        ("y@example.com", "=?utf-8?q?=3D=3Futf-8=3Fq=3Fa=3D0Ab=3F=3D?=",
         b"To: =?utf-8?b?PT91dGYtOD9xP2E9MEFiPz0=?= <y@example.com>\r\n"),
        ("ada@b\u00fccher.example", "Ada", b"To: Ada <ada@xn--bcher-kva.example>\r\n"),
    ],
)  # fmt: skip
def test_to_header_exact_bytes(address: str, name: str | None, line: bytes) -> None:
    assert to_header(address, name) == line


def test_a_header_reparsed_by_the_email_package_gives_the_cleaned_text_back() -> None:
    names = ["Ada García", "Anne, Jr.", "张伟", EVIL_WORD, "\u202egnp.exe\u202c", "ü" * 300]
    for name in names:
        raw = to_header("ada@example.com", name) + b"\r\nbody\r\n"
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        (to,) = parsed["To"].addresses
        assert to.addr_spec == "ada@example.com"
        assert to.display_name.replace(" ", "") == headers.clean(name).replace(" ", "")
        assert parsed["Bcc"] is None


def test_a_long_subject_is_folded_and_decodes_to_the_cleaned_text() -> None:
    subject = "Ünïcode " * 30 + EVIL_WORD
    raw = headers.unstructured("Subject", subject)
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 78 for line in lines) and lines[-1] == b""
    assert all(line.startswith(b" ") for line in lines[1:-1])
    parsed = email.message_from_bytes(raw + b"\r\nbody\r\n", policy=email.policy.default)
    assert parsed["Subject"] == headers.clean(subject, headers.MAX_SUBJECT, "\u2026")
    assert parsed["Bcc"] is None


def test_an_address_that_would_end_the_header_is_refused() -> None:
    for bad in ("a@b.example>, <c@d.example", "a\r\n@b.example", "a b@c.example", "nobody"):
        with pytest.raises(ValueError, match="header"):
            headers.addr_spec(bad)
