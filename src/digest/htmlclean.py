"""Make an entry's HTML fit for email, and cut excerpts.

Runs after feedparser's own sanitising (which already drops script, style,
iframe, object and on* attributes) and removes what no email should carry:
forms and their controls, dangerous URLs, embedded media (replaced by a link
to the post), a leading heading that repeats the title. Images and links are
made absolute. Everything works on lxml trees; the caller serialises.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from lxml import html as lxml_html
from lxml.html import HtmlElement

_DROP_WITH_CONTENT = {"script", "style", "form", "button", "select", "textarea", "base", "meta", "link",
                      "noscript", "template", "object", "embed", "applet"}  # fmt: skip
_DROP_TAG_ONLY = {"input", "label", "fieldset", "legend", "optgroup", "option", "datalist", "output"}
_MEDIA = {"iframe", "video", "audio", "picture", "source", "track"}
_URL_ATTRS = ("href", "src", "poster", "cite", "background")
_SAFE_SCHEMES = {"http", "https", "mailto", ""}
_BLOCKS = {"p", "pre", "ul", "ol", "blockquote", "table", "h1", "h2", "h3", "h4", "h5", "h6", "div", "figure",
           "hr", "dl", "section", "article", "aside", "header", "footer", "details"}  # fmt: skip
COLUMN_WIDTH = 552  # 600 px layout minus the content padding


def parse_fragment(fragment: str) -> HtmlElement:
    """Parse an HTML fragment into a <div> wrapper element."""
    return lxml_html.fragment_fromstring(fragment or "", create_parent="div")


def serialise_children(root: HtmlElement) -> str:
    text = root.text or ""
    from html import escape

    return escape(text, quote=False) + "".join(
        lxml_html.tostring(child, encoding="unicode", with_tail=True) for child in root
    )


def clean_entry_html(root: HtmlElement, *, title: str, link: str | None, base_url: str | None) -> None:
    """Clean ``root`` in place (see module docstring)."""
    base = link or base_url or ""
    for element in list(root.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions
            _drop(element, keep_content=False)
            continue
        tag = element.tag.lower()
        if element is root:
            continue
        if tag in _DROP_WITH_CONTENT:
            _drop(element, keep_content=False)
        elif tag in _DROP_TAG_ONLY:
            _drop(element, keep_content=tag not in ("input",))
        elif tag in _MEDIA:
            _replace_media(element, link)
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name in list(element.attrib):
            if name.lower().startswith("on"):
                del element.attrib[name]
        for name in _URL_ATTRS:
            value = element.get(name)
            if value is None:
                continue
            absolute = urljoin(base, value.strip()) if base else value.strip()
            if urlsplit(absolute).scheme.lower() not in _SAFE_SCHEMES:
                del element.attrib[name]
            else:
                element.set(name, absolute)
        if element.tag == "img":
            _fit_image(element)
    _drop_repeated_heading(root, title)


def _drop(element: HtmlElement, *, keep_content: bool) -> None:
    parent = element.getparent()
    if parent is None:
        return
    if keep_content and isinstance(element.tag, str):
        element.drop_tag()
    else:
        element.drop_tree()


def _replace_media(element: HtmlElement, link: str | None) -> None:
    parent = element.getparent()
    if parent is None or element.tag in ("source", "track"):
        _drop(element, keep_content=False)
        return
    kind = {"iframe": "embedded content", "video": "a video", "audio": "audio"}.get(element.tag, "media")
    if link:
        replacement = lxml_html.fragment_fromstring(
            f'<p><a href="{link}">▶ This post includes {kind}: view it on the site</a></p>'
        )
    else:
        replacement = lxml_html.fragment_fromstring(f"<p>(This post includes {kind} that email cannot show.)</p>")
    replacement.tail = element.tail
    parent.replace(element, replacement)


def _fit_image(img: HtmlElement) -> None:
    width = img.get("width")
    if width and width.isdigit() and int(width) > COLUMN_WIDTH:
        height = img.get("height")
        if height and height.isdigit():
            img.set("height", str(round(int(height) * COLUMN_WIDTH / int(width))))
        img.set("width", str(COLUMN_WIDTH))
    style = img.get("style", "").rstrip("; ")
    extra = "max-width:100%;height:auto;border:0"
    img.set("style", f"{style};{extra}" if style else extra)
    if img.get("alt") is None:
        img.set("alt", "")


def _normalise_words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.casefold()).split())


def _drop_repeated_heading(root: HtmlElement, title: str) -> None:
    if (root.text or "").strip():
        return
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag in ("h1", "h2") and _normalise_words(child.text_content()) == _normalise_words(title):
            if child.tail and child.tail.strip():
                root.text = (root.text or "") + child.tail
            child.drop_tree()
        return


def word_count(element: HtmlElement) -> int:
    return len(element.text_content().split())


def excerpt(root: HtmlElement, max_words: int) -> bool:
    """Keep leading block children of ``root`` up to about ``max_words`` words.

    Cuts only between top-level blocks, never inside one. Always keeps the
    first block that has text. Returns True when something was cut.
    """
    total = 0
    kept_text = False
    children = [c for c in root if isinstance(c.tag, str)]
    for index, child in enumerate(children):
        words = word_count(child)
        if kept_text and total + words > max_words:
            for rest in children[index:]:
                rest.drop_tree()
            return True
        total += words
        kept_text = kept_text or words > 0
    return False
