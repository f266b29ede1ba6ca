"""The one place where untrusted text becomes header text.

Feed titles, entry titles, subscriber names and the display names in the
configuration are untrusted. Every header value built from them goes through
:func:`clean`: RFC 2047 encoded words are decoded (once), every control or
format character a header must not carry is removed (C0, C1, DEL, U+2028,
U+2029, bidi controls, zero-width and other format characters), whitespace
runs become one space and the result is capped. The project then encodes the
value itself (:func:`unstructured`, :func:`phrase`): ASCII text that could be
read as an encoded word, or that is not plain, is quoted or encoded, so no
receiver (and not the standard library's email package, which is never given
these strings) can find an encoded word in it that decodes to CR/LF.

Everything here is plain string work with precompiled patterns and the C
base64 codec: a recipient's To line costs a few microseconds whatever script
the name is written in.
"""

from __future__ import annotations

import binascii
import functools
import quopri
import re

# Characters a header value must not carry, whatever they decode from:
# C0 and C1 controls, DEL, surrogates, line and paragraph separators, and the
# Unicode format characters (category Cf: bidi embeddings, overrides and
# isolates, zero-width spaces, the BOM, interlinear annotation, tags...).
# U+200C and U+200D (zero-width non-joiner and joiner) stay: several scripts
# and emoji sequences need them, and they reorder or hide nothing.
# tests/test_headers.py checks this class against unicodedata.
_FORBIDDEN = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "]+"
)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
# A display name made only of these (RFC 5322 atext and spaces) needs no quoting.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_PRINTABLE_ASCII = re.compile(r"[ -~]*")

# Caps, in characters, after cleaning. A subject longer than about 150
# characters is cut by every client's list view and most phones show less
# than 80 (see the README's Security section); the other values are names.
MAX_SUBJECT = 150
MAX_NAME = 100

_LINE = 76  # fold before this (RFC 5322 recommends 78)
_CHUNK = 39  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 52 + "?=" = 64 characters


def _decode_word(match: re.Match[str]) -> str | None:
    charset, kind, payload = match.group(1), match.group(2).lower(), match.group(3)
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    try:
        if kind == "b":
            raw = binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        else:
            raw = quopri.decodestring(payload.replace("_", " ").encode("ascii"), header=False)
        return raw.decode(charset, errors="replace")
    except (binascii.Error, LookupError, UnicodeError, ValueError):
        return None


def decode_words(text: str) -> str:
    """``text`` with its RFC 2047 encoded words decoded (once); anything malformed stays as it is."""
    if "=?" not in text:
        return text
    out: list[str] = []
    end = 0
    previous_decoded = False
    for match in _ENCODED_WORD.finditer(text):
        gap = text[end : match.start()]
        decoded = _decode_word(match)
        # Whitespace between two encoded words is not text (RFC 2047 section 6.2).
        if not (decoded is not None and previous_decoded and gap.isspace()):
            out.append(gap)
        out.append(match.group(0) if decoded is None else decoded)
        previous_decoded = decoded is not None
        end = match.end()
    out.append(text[end:])
    return "".join(out)


def clean(text: str | None, limit: int = MAX_NAME, ellipsis: str = "") -> str:
    """Untrusted ``text`` as one safe line of at most ``limit`` characters (may be empty).

    A longer value is cut, and ends with ``ellipsis`` when one is given.
    """
    if not text:
        return ""
    if text.isascii() and "=?" not in text and _PRINTABLE_ASCII.fullmatch(text):
        value = " ".join(text.split())  # the common case: nothing to decode or strip
    else:
        value = decode_words(text)
        value = " ".join(_FORBIDDEN.sub(" ", value).split())
    if len(value) > limit:
        value = value[: limit - len(ellipsis)].rstrip() + ellipsis
    return value


def _b_words(text: str) -> list[str]:
    """``text`` as RFC 2047 "B" encoded words of at most 72 characters, split between characters."""
    data = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + _CHUNK, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # never inside a character
            end -= 1
        words.append("=?utf-8?b?" + binascii.b2a_base64(data[start:end], newline=False).decode("ascii") + "?=")
        start = end
    return words


def _needs_encoding(value: str) -> bool:
    return not value.isascii() or "=?" in value


def _fold(name: str, words: list[str], separator: str) -> bytes:
    """``Name: w1 w2 ...`` folded at ``separator`` boundaries before _LINE characters, CRLF-terminated."""
    out = [f"{name}:"]
    length = len(out[0])
    for n, word in enumerate(words):
        sep = " " if n == 0 else separator
        if n and length + len(sep) + len(word) > _LINE:
            out.append("\r\n ")
            length = 1
            sep = "" if separator == " " else separator.strip()
        out.append(sep + word)
        length += len(sep) + len(word)
    out.append("\r\n")
    return "".join(out).encode("ascii")


def unstructured(name: str, text: str | None, limit: int = MAX_SUBJECT) -> bytes:
    """A header such as Subject from untrusted ``text``: cleaned, encoded when needed, folded."""
    value = clean(text, limit, "\u2026")
    if _needs_encoding(value):
        return _fold(name, _b_words(value), " ")
    return _fold(name, value.split(" ") if value else [], " ")


def phrase(text: str | None, limit: int = MAX_NAME) -> str:
    """A display name from untrusted ``text``, ready to put before ``<addr>`` (may be empty)."""
    value = clean(text, limit)
    if _needs_encoding(value):
        return " ".join(_b_words(value))
    if _ATOMS.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """``domain`` in its ASCII (IDNA) form; ValueError when it has no such form."""
    if domain.isascii():
        return domain.lower()
    import idna

    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except idna.IDNAError as exc:
        raise ValueError(f"not a valid domain name: {domain!r} ({exc})") from None


# What an addr-spec may contain here: it was validated at load or import, and
# this is the last line of defence against a value that would end the header.
_ADDR_UNSAFE = re.compile(r"[\x00-\x20\x7f<>()\[\]\\,;:\"\u0080-\u009f\u2028\u2029]")


def addr_spec(email: str) -> str:
    """``email`` with its domain in ASCII form; ValueError when it cannot go into a header."""
    local, at, domain = email.rpartition("@")
    if not at or not local or _ADDR_UNSAFE.search(email):
        raise ValueError(f"not an address that can go into a header: {email!r}")
    return f"{local}@{ascii_domain(domain)}"


def named(name: str, display: str | None, bracketed: str) -> bytes:
    """``Name: phrase <bracketed>`` with an untrusted phrase, folded between encoded words."""
    words = phrase(display)
    line = f"{name}: {words} <{bracketed}>" if words else f"{name}: <{bracketed}>"
    if len(line) > _LINE and words.startswith("=?"):
        line = f"{name}: " + "\r\n ".join(words.split(" ")) + f"\r\n <{bracketed}>"
    return (line + "\r\n").encode("utf-8")


def address(name: str, display: str | None, email: str) -> bytes:
    """An address header (From, To, Reply-To) with an untrusted display name, CRLF-terminated.

    A non-ASCII local part is written as UTF-8 (RFC 6532): such mail needs
    SMTPUTF8 anyway, which the transport asks for.
    """
    spec = addr_spec(email)
    if not clean(display):
        return f"{name}: {spec}\r\n".encode()
    return named(name, display, spec)
