"""An entry's language and writing direction, for the ``lang`` and ``dir`` of its card.

The language comes from the entry's own markup (``lang``/``xml:lang`` on its
outer element, kept by the sanitiser); the direction is right-to-left when
the language is written so, or, when nothing is declared, when most of the
text's letters are Arabic, Hebrew, Persian or Urdu script. Each entry is
judged on its own, so a mixed feed gets each card right.
"""

from __future__ import annotations

import re

from lxml.html import HtmlElement

_RTL_LANGUAGES = {"ar", "he", "iw", "fa", "ur", "yi", "ps", "sd", "ckb", "dv", "ug", "ji"}
_RTL_LETTER = re.compile(r"[\u0590-\u05ff\u0600-\u06ff\u0700-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_LETTER = re.compile(r"[^\W\d_]")
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


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
    letters = len(_LETTER.findall(text[:4000]))
    rtl = len(_RTL_LETTER.findall(text[:4000]))
    return "rtl" if letters and rtl * 2 > letters else None
