"""Text from feedparser made safe to hold and plain to show: the fields' text helpers of feeds.py.

A body goes through :func:`readable_body` before feedparser sees it, and
everything feedparser returns through :func:`scrub`: what comes out can be
stored, put in an lxml tree and encoded, whatever the feed held.
"""

from __future__ import annotations

import html
import re
from typing import Any

HTML_TYPES = ("text/html", "application/xhtml+xml")
_TAG = re.compile(r"<[^>]+>")
_FALLBACK_TITLE_WORDS = 10
# A character reference to no character (a lone surrogate, past U+10FFFF):
# feedparser's loose parser, used for any ill-formed feed, raises on one.
# Only references of 4+ hex or 5+ decimal digits can be one; each is checked.
_BIG_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{4,})|([0-9]{5,}));")
_REPLACEMENT_REF = b"&#xFFFD;"
# Characters no XML or HTML tree can hold (lxml refuses them in any text it is
# handed): C0 controls other than tab and newlines, which feedparser passes on
# from raw bytes and from references like &#1;, and code points that are no
# characters. DEL and the C1 controls go too: never text, and a terminal
# showing a title would obey one (\x9b opens an escape sequence).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NOT_CHARACTERS = re.compile("[\ud800-\udfff\ufffe\uffff]")


def readable_body(body: bytes) -> bytes:
    """``body`` with every reference to a code point that is no character made U+FFFD."""

    def checked(match: re.Match[bytes]) -> bytes:
        hex_digits, decimal = match.groups()
        value = int(hex_digits, 16) if hex_digits else int(decimal)
        return _REPLACEMENT_REF if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF else match.group()

    return _BIG_CHARREF.sub(checked, body) if b"&#" in body else body


def scrub(tree: Any) -> Any:
    """Every string of feedparser's result (dicts and lists, changed in place) without _CONTROLS."""
    if isinstance(tree, str):
        return _NOT_CHARACTERS.sub("\ufffd", _CONTROLS.sub("", tree)) if not tree.isprintable() else tree
    if isinstance(tree, dict):
        for key, value in dict.items(tree):  # dict's own: FeedParserDict maps some keys onto others
            dict.__setitem__(tree, key, scrub(value))
    elif isinstance(tree, list):
        tree[:] = [scrub(value) for value in tree]
    return tree


def text_to_html(text: str) -> str:
    """text/plain content is not sanitised by feedparser: escape it, keep paragraphs."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def text_of(value: Any, detail: Any, *, plain: bool = False) -> str:
    """A title as one line of text: markup removed only when the title is markup (or ``plain`` is asked)."""
    kind = (detail or {}).get("type", "text/html")
    return plain_text(value) if plain or kind in HTML_TYPES else " ".join(str(value or "").split())


def plain_text(value: Any) -> str:
    """Text of an HTML snippet: tags stripped, entities decoded, one line."""
    return " ".join(html.unescape(_TAG.sub(" ", str(value or ""))).split())


def fallback_title(fragment: str) -> str:
    words = plain_text(fragment).split()
    if not words:
        return "(untitled)"
    title = " ".join(words[:_FALLBACK_TITLE_WORDS])
    return title + "…" if len(words) > _FALLBACK_TITLE_WORDS else title
