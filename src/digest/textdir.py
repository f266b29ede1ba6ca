"""An entry's language and writing direction, for the ``lang`` and ``dir`` of its card.

The language comes from the entry's own markup (``lang``/``xml:lang`` on its
outer element, kept by the sanitiser), else the feed item's (``xml:lang``,
``dc:language``), else the feed's (RSS ``<language>``, Atom ``xml:lang``);
the direction is right-to-left when the language is written so, or, when
nothing is declared, when most of the text's letters are Arabic, Hebrew,
Persian or Urdu script. Each entry is judged on its own, so a mixed feed
gets each card right.
"""

from __future__ import annotations

import re

from lxml.html import HtmlElement

_RTL_LANGUAGES = {"ar", "he", "iw", "fa", "ur", "yi", "ps", "sd", "ckb", "dv", "ug", "ji"}
_RTL_LETTER = re.compile(r"[\u0590-\u05ff\u0600-\u06ff\u0700-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_LETTER = re.compile(r"[^\W\d_]")
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


def language_tag(value: object) -> str | None:
    """A feed's language value (``en-us``, ``he``) as a tag for ``lang=""``, or None if it is not one."""
    text = str(value or "").strip().replace("_", "-")
    return text if text and _LANG.match(text) else None


def declared_language(root: HtmlElement) -> str | None:
    """The language the entry's outermost element declares, if any."""
    element: HtmlElement | None = root
    while element is not None:
        for name in ("lang", "{http://www.w3.org/XML/1998/namespace}lang", "xml:lang"):
            value = (element.get(name) or "").strip()
            if value and _LANG.match(value):
                return value
        children = [c for c in element if isinstance(c.tag, str)]
        element = children[0] if len(children) == 1 and not (element.text or "").strip() else None
    return None


def direction(text: str, language: str | None = None) -> str | None:
    """``"rtl"`` for a right-to-left entry, else None (left-to-right, the document's default)."""
    if language:
        return "rtl" if language.split("-")[0].lower() in _RTL_LANGUAGES else None
    share = _rtl_share(text)
    return "rtl" if share is not None and share > 0.5 else None


def _rtl_share(text: str) -> float | None:
    """The share of the text's letters in right-to-left scripts; None without letters."""
    letters = len(_LETTER.findall(text[:4000]))
    return len(_RTL_LETTER.findall(text[:4000])) / letters if letters else None


def language_and_direction(text: str, declared: str | None, feed_language: str | None) -> tuple[str | None, str | None]:
    """The ``lang`` and ``dir`` of one entry's card.

    The entry's own declaration (in its markup or the feed item) decides. The
    feed's language is only a default: an entry whose letters are clearly in
    the other direction's script (a mixed feed that declares one language)
    keeps the direction of its text and no ``lang`` that would mislabel it.
    """
    if declared:
        return declared, direction(text, declared)
    if not feed_language:
        return None, direction(text)
    feed_direction = direction(text, feed_language)
    share = _rtl_share(text)
    if share is not None and ((feed_direction == "rtl" and share < 0.1) or (feed_direction is None and share > 0.5)):
        return None, direction(text)
    return feed_language, feed_direction
