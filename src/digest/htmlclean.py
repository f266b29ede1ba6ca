"""Make an entry's HTML fit for email (excerpts.py cuts excerpts).

Runs after feedparser's own sanitising (which already drops script, style,
iframe, object and on* attributes) and removes what no email should carry:
forms and their controls, dangerous URLs, embedded media (replaced by a link
to the post), a leading heading that repeats the title. Images and links are
made absolute. Everything works on lxml trees; the caller serialises.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import html as lxml_html
from lxml.html import HtmlElement

from digest import urls

_DROP_WITH_CONTENT = {
    "script",
    "style",
    "form",
    "button",
    "select",
    "textarea",
    "base",
    "meta",
    "link",
    "noscript",
    "template",
    "object",
    "embed",
    "applet",
}
_DROP_TAG_ONLY = {"input", "label", "fieldset", "legend", "optgroup", "option", "datalist", "output"}
_MEDIA = {"iframe", "video", "audio", "picture", "source", "track"}
_URL_ATTRS = ("href", "src", "poster", "cite", "background")
_SAFE_SCHEMES = {"http", "https", "mailto", ""}
COLUMN_WIDTH = 552  # 600 px layout minus the content padding
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


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
    _drop_unwanted_elements(root, link)
    base = link or base_url or ""
    for element in root.iter():
        if isinstance(element.tag, str):
            _clean_attributes(element, base)
    for anchor in list(root.iter("a")):
        if not anchor.get("href"):
            anchor.drop_tag()  # a link whose target was unsafe: keep its words, not a dead link
    for img in list(root.iter("img")):
        if not img.get("src") or urls.scheme(img.get("src", "")) not in ("http", "https"):
            _drop(img, keep_content=False)  # data: or relative without a base: nothing a client can load
        elif is_tracking_pixel(img):
            _drop(img, keep_content=False)  # the digest never reports its readers to anyone
        else:
            _fit_image(img)
    _drop_repeated_heading(root, title)


def clean_for_text(root: HtmlElement, *, link: str | None) -> None:
    """The part of clean_entry_html that changes the text: for a post read only for its words (a links line)."""
    _drop_unwanted_elements(root, link)


def _drop_unwanted_elements(root: HtmlElement, link: str | None) -> None:
    """Comments, forms and their controls go; embedded media become a link to the post."""
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


def _clean_attributes(element: HtmlElement, base: str) -> None:
    """No event handlers or form targets; every URL absolute against ``base`` and of a safe scheme."""
    for name in list(element.attrib):
        if name.lower().startswith("on"):
            del element.attrib[name]
    for name in ("srcset", "sizes", "formaction", "action", "ping"):
        element.attrib.pop(name, None)  # relative candidates we do not resolve; no forms
    for name in _URL_ATTRS:
        value = element.get(name)
        if value is None:
            continue
        # feedparser leaves a javascript: link as href="": an empty link goes nowhere.
        absolute = urls.join(base, value.strip()) if base and value.strip() else value.strip()
        if not absolute or urls.scheme(absolute) not in _SAFE_SCHEMES:
            del element.attrib[name]
        else:
            element.set(name, absolute)


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


_TRACKERS = (
    "feeds.feedburner.com/~r/",
    "feedburner.com/~ff/",
    "feedproxy.google.com/~r/",
    "pixel.wp.com/",
    "stats.wordpress.com/",
    "medium.com/_/stat",
    "/_/stat?event=",
    "pixel.quantserve.com/",
    "www.google-analytics.com/",
    "ssl.google-analytics.com/",
    "statcounter.com/",
    "/tracking/pixel",
    "substackcdn.com/open",
    "substack.com/o/",
    "list-manage.com/track/open",
    "doubleclick.net/",
    "feedblitz.com/",
    "mf.feeds.reuters.com/",
    "assets.feedblitz.com/",
    "a.fsdn.com/",
)


def _pixels(value: str | None) -> int | None:
    value = (value or "").strip().lower().removesuffix("px")
    return int(value) if value.isdigit() else None


def is_tracking_pixel(img: HtmlElement) -> bool:
    """A 1x1 (or 0-sized) image, or one from a known counting service."""
    src = img.get("src", "").lower()
    if any(marker in src for marker in _TRACKERS):
        return True
    style = img.get("style", "").replace(" ", "").lower()
    width, height = _pixels(img.get("width")), _pixels(img.get("height"))
    for prop in style.split(";"):
        name, _, value = prop.partition(":")
        if name == "width":
            width = _pixels(value)
        elif name == "height":
            height = _pixels(value)
        elif name == "display" and value == "none":
            return True
    return (width is not None and width <= 1) or (height is not None and height <= 1)


def _fit_image(img: HtmlElement) -> None:
    """An explicit pixel width no wider than the column (Outlook for Windows ignores max-width)."""
    width, height = _pixels(img.get("width")), _pixels(img.get("height"))
    if width is None or width > COLUMN_WIDTH:
        if width and height:
            img.set("height", str(round(height * COLUMN_WIDTH / width)))
        else:
            img.attrib.pop("height", None)  # unknown ratio: let the client scale it
        img.set("width", str(COLUMN_WIDTH))
    else:
        img.set("width", str(width))
        if height is not None:
            img.set("height", str(height))
        else:
            img.attrib.pop("height", None)
    kept = [p for p in img.get("style", "").split(";") if p.split(":")[0].strip().lower() not in ("width", "height")]
    style = ";".join(p.strip() for p in kept if p.strip())
    extra = "max-width:100%;height:auto;border:0"
    img.set("style", f"{style};{extra}" if style else extra)
    if img.get("alt") is None:
        img.set("alt", "")


def _normalise_words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.casefold()).split())


def _repeats_title(heading: str, title: str) -> bool:
    heading_words, title_words = _normalise_words(heading), _normalise_words(title)
    if not heading_words or not title_words:
        return False
    return heading_words.startswith(title_words) or title_words.startswith(heading_words)


def _drop_repeated_heading(root: HtmlElement, title: str) -> None:
    """Drop a heading that opens the post and repeats its title (the email shows the title).

    An ``<h1>`` before any text is the post's own title line (Jekyll/Markdown
    ``# Title``), even when worded differently from the feed title, as in the
    shared feed; an ``<h2>`` goes only when it repeats the title.
    """
    container = content_container(root)
    if (container.text or "").strip():
        return
    for child in container:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "h1" or (child.tag == "h2" and _repeats_title(child.text_content(), title)):
            if child.tail and child.tail.strip():
                previous = child.getprevious()
                if previous is not None:
                    previous.tail = (previous.tail or "") + child.tail
                else:
                    container.text = (container.text or "") + child.tail
            child.drop_tree()  # lxml keeps the tail text
        return


def content_container(root: HtmlElement) -> HtmlElement:
    """The element whose children are the post's blocks: ``root``, or a lone wrapper div inside it."""
    container = root
    while True:
        children = [c for c in container if isinstance(c.tag, str)]
        if (
            len(children) == 1
            and children[0].tag in ("div", "section", "article", "main")
            and not (container.text or "").strip()
            and not (children[0].tail or "").strip()
            and "dg-code-block" not in (children[0].get("class") or "")
            and not children[0].get("class", "").startswith(("language-", "highlight"))
        ):
            container = children[0]
        else:
            return container


# The template's classes and those the digest puts inside a post (code
# blocks) all start with this prefix. A feed's own classes are dropped once
# code blocks are restyled, and any ``dg-`` class a feed brings is dropped
# before, so a feed's class="button" or class="dg-card" never picks up the
# template's style or passes for one of its post cards.
OWN_CLASS_PREFIX = "dg-"


def drop_foreign_classes(root: HtmlElement) -> None:
    """Remove every class the feed brought (run after code blocks are restyled)."""
    _keep_classes(root, lambda name: name.startswith(OWN_CLASS_PREFIX))


def drop_impostor_classes(root: HtmlElement) -> None:
    """Remove the feed's classes that use the digest's own prefix (run before code blocks are restyled)."""
    _keep_classes(root, lambda name: not name.startswith(OWN_CLASS_PREFIX))


def _keep_classes(root: HtmlElement, keep: Callable[[str], bool]) -> None:
    for element in root.iter():
        if not isinstance(element.tag, str) or element.get("class") is None:
            continue
        kept = [name for name in (element.get("class") or "").split() if keep(name)]
        if kept:
            element.set("class", " ".join(kept))
        else:
            del element.attrib["class"]


def shift_headings(root: HtmlElement) -> None:
    """Headings inside a post start at <h3>: the masthead is the <h1>, post titles are <h2>."""
    for heading in list(root.iter(*HEADINGS)):
        level = int(str(heading.tag)[1])
        heading.tag = f"h{min(6, max(3, level + 1))}"
