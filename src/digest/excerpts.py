"""Excerpts: an entry cut between blocks at about DIGEST_EXCERPT_WORDS words.

Part of render.py's per-entry clean-up, after htmlclean.py. Chinese,
Japanese and Korean text counts by characters (``CJK_WORDS_PER_CHARACTER``),
text between ``<br>`` tags counts line by line (a ``<br>``-separated post is
first split into paragraphs), and an excerpt never ends on a heading, a
rule or a lone bold lead-in line. ``first_sentence`` is what the ``links``
form (render.py's last resort for the size budget) shows of a post.
"""

from __future__ import annotations

import math
import re

from lxml import html as lxml_html
from lxml.html import HtmlElement

from digest import htmlclean
from digest.htmlclean import HEADINGS

_BLOCKS = {
    "p",
    "pre",
    "ul",
    "ol",
    "blockquote",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "div",
    "figure",
    "hr",
    "dl",
    "section",
    "article",
    "aside",
    "header",
    "footer",
    "details",
}

# Chinese, Japanese and Korean are written without spaces: a character counts
# as this many words (two characters read about as long as one English word).
CJK_WORDS_PER_CHARACTER = 0.5
_CJK = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")


def text_words(text: str) -> int:
    """Words in ``text``, CJK characters weighted by CJK_WORDS_PER_CHARACTER."""
    characters = len(_CJK.findall(text))
    return len(_CJK.sub(" ", text).split()) + math.ceil(characters * CJK_WORDS_PER_CHARACTER)


def word_count(element: HtmlElement) -> int:
    return text_words(element.text_content())


def excerpt(root: HtmlElement, max_words: int) -> bool:
    """Keep leading blocks of ``root`` up to about ``max_words`` words.

    Cuts between blocks; text run together with ``<br>`` counts as blocks of
    its own lines. Always keeps the first block that has text, and never ends
    on a heading, a rule or a lone bold lead-in line. Returns True when
    something was cut.
    """
    container = htmlclean.content_container(root)
    if word_count(container) <= max_words:
        return False
    _paragraphs_from_breaks(container)
    for child in [c for c in container if isinstance(c.tag, str)]:
        if child.tag in ("p", "div") and child.find("br") is not None and word_count(child) > max_words // 2:
            _paragraphs_from_breaks(child)
            if child.tag == "p" or not (child.text or "").strip():
                child.drop_tag()  # its lines become the container's paragraphs
    total = 0
    kept_text = False
    children = [c for c in container if isinstance(c.tag, str)]
    for index, child in enumerate(children):
        words = word_count(child)
        if kept_text and total + words > max_words:
            for rest in children[index:]:
                rest.tail = None
                rest.drop_tree()
            # An excerpt that ends on a heading, a rule or a bold lead-in promises what it cuts.
            kept = children[:index]
            while len(kept) > 1 and _is_lead_in(kept[-1]):
                kept.pop().drop_tree()
            return True
        total += words
        kept_text = kept_text or words > 0
    return False


# A sentence ends at . ! ? or … (with closing quotes or brackets) before a blank, or at a CJK full stop.
_SENTENCE = re.compile(r"^.+?(?:[.!?\u2026][\"'\u201d\u2019)\]]*(?=\s)|[\u3002\uff01\uff1f])")
SENTENCE_CHARS = 160  # a longer first sentence is cut at a word and ends with "…"
_NOT_PROSE = {*HEADINGS, "pre", "table", "figure", "hr", "img"}


def first_sentence(root: HtmlElement, max_chars: int = SENTENCE_CHARS, *, whole: bool = True) -> str:
    """The first sentence of the first block of prose under ``root`` (not a heading, code or a table).

    ``whole=False`` says ``root`` is only the start of the post: then "" means
    no complete sentence was found in it (the caller reads the whole post).
    """
    container = htmlclean.content_container(root)
    _paragraphs_from_breaks(container)
    text = ""
    for child in (c for c in container if isinstance(c.tag, str)):
        if child.tag in _NOT_PROSE or next(child.iter("pre", "table"), None) is not None:
            continue
        text = " ".join(child.text_content().split())
        if text:
            break
    match = _SENTENCE.match(text)
    if not whole and match is None:
        return ""
    text = text or " ".join(container.text_content().split())
    match = match or _SENTENCE.match(text)
    sentence = match.group(0) if match else text
    if len(sentence) <= max_chars:
        return sentence
    cut = sentence[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars * 3 // 4:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "\u2026"


def _is_lead_in(block: HtmlElement) -> bool:
    if block.tag in (*HEADINGS, "hr"):
        return True
    text = block.text_content().strip()
    if not text:
        return block.tag != "img" and next(block.iter("img"), None) is None
    bold = "".join(b.text_content() for b in block.iter("b", "strong")).strip()
    return bold == text or (text.endswith(":") and text_words(text) <= 12)


def _paragraphs_from_breaks(container: HtmlElement) -> None:
    """Regroup ``container``'s loose text and inline elements into <p>s, one per <br>-separated line."""
    nodes = list(container)
    loose = (container.text or "").strip() or any(
        isinstance(n.tag, str) and (n.tag == "br" or n.tag not in _BLOCKS) and (n.tail or "").strip() for n in nodes
    )
    if not loose and not any(isinstance(n.tag, str) and n.tag == "br" for n in nodes):
        return
    lead = container.text or ""
    container.text = None
    for node in nodes:
        container.remove(node)
    out: list[HtmlElement] = []
    current: HtmlElement | None = None

    def add_text(text: str | None) -> None:
        nonlocal current
        if not text:
            return
        if current is None:
            if not text.strip():
                return
            current = lxml_html.Element("p")
            out.append(current)
        if len(current):
            current[-1].tail = (current[-1].tail or "") + text
        else:
            current.text = (current.text or "") + text

    add_text(lead)
    for node in nodes:
        tail, node.tail = node.tail, None
        if not isinstance(node.tag, str):
            pass
        elif node.tag == "br":
            current = None
        elif node.tag in _BLOCKS:
            current = None
            out.append(node)
        else:
            if current is None:
                current = lxml_html.Element("p")
                out.append(current)
            current.append(node)
        add_text(tail)
    for element in out:
        container.append(element)
