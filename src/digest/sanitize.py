"""The one sanitiser: raw feed HTML in, HTML safe for an email out.

feedparser is asked for the raw HTML (its own sanitiser drops iframes before
anything can turn them into links), so this module is the only gate. First
embedded media (iframe, video, audio, embed, object) become link cards that
name what they lead to ("Watch on YouTube", "Open the PDF"); then nh3 (the
Ammonia sanitiser) keeps only the allowlisted tags, attributes, URL schemes
and inline style properties, so scripts, event handlers, ``javascript:`` and
``data:`` URLs cannot pass. htmlclean.py does the email clean-up after it.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

import nh3
from lxml import html as lxml_html
from lxml.html import HtmlElement

from digest import urls

_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "section",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "u",
    "ul",
    "var",
    "article",
    "aside",
    "header",
    "footer",
    "main",
    "picture",
    "bdi",
    "bdo",
    "wbr",
}
_ATTRIBUTES = {
    "*": {"class", "id", "title", "lang", "dir", "style"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"},
    "ol": {"start", "type", "reversed"},
    "li": {"value"},
    "blockquote": {"cite"},
    "time": {"datetime"},
    "pre": {"data-lang"},
    "code": {"data-lang"},
}
_DROP_WITH_CONTENT = {
    "script",
    "style",
    "form",
    "button",
    "select",
    "textarea",
    "noscript",
    "template",
    "applet",
    "math",
    "svg",
    "title",
    "head",
}
# Inline styles that carry meaning (a highlighter's colours, alignment); no
# positioning, no url(), nothing that can cover the rest of the email.
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-weight",
    "font-style",
    "text-decoration",
    "text-align",
    "vertical-align",
    "width",
    "height",
}
_EMBEDS = ("iframe", "video", "audio", "embed", "object")


def sanitise_entry_html(fragment: str, *, link: str | None) -> str:
    """Embeds turned into link cards, then everything outside the allowlist removed."""
    if not fragment or not fragment.strip():
        return ""
    return nh3.clean(
        embeds_to_links(fragment, link=link),
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        strip_comments=True,
        link_rel=None,
        filter_style_properties=_STYLE_PROPERTIES,
    )


def embeds_to_links(fragment: str, *, link: str | None) -> str:
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    found = [el for el in root.iter(*_EMBEDS) if not any(a.tag in _EMBEDS for a in el.iterancestors())]
    if not found:
        return fragment
    for element in found:
        parent = element.getparent()
        if parent is None:
            continue
        url, label = _embed_target(element, link)
        if url:
            card = f'<p><a href="{html.escape(url)}">▶ {html.escape(label)}</a></p>'
        else:
            card = "<p>(This post includes media that email cannot show; see it on the site.)</p>"
        replacement = lxml_html.fragment_fromstring(card)
        replacement.tail = element.tail
        parent.replace(element, replacement)
    from digest.htmlclean import serialise_children

    return serialise_children(root)


def _embed_target(element: HtmlElement, link: str | None) -> tuple[str | None, str]:
    """Where an embed leads and the words that say so."""
    source = _embed_source(element)
    url = (urls.join(link or "", source) or "") if source else ""
    parts = urls.split(url)
    if parts is None or parts.scheme not in ("http", "https"):
        return link, _generic_label(element.tag)
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    known = _known_player(host, parts.path, parts.query)
    if known is not None:
        return known
    if parts.path.lower().endswith(".pdf") or (element.get("type") or "").lower() == "application/pdf":
        return url, "Open the PDF"
    if host.endswith(("spotify.com", "soundcloud.com")):
        return (link or url), "Listen on the site"
    if element.tag == "iframe" and link:
        return link, "See the embedded content on the site"
    return url, _generic_label(element.tag)


def _embed_source(element: HtmlElement) -> str:
    """The embed's own src/data, else that of its first <source> or <embed>."""
    for candidate in (element, *element.iter("source", "embed")):
        source = (candidate.get("src") or (candidate.get("data") if candidate is element else "") or "").strip()
        if source:
            return source
    return ""


def _known_player(host: str, path: str, query: str) -> tuple[str, str] | None:
    """The watch page of a YouTube or Vimeo player URL."""
    if host in ("youtube.com", "youtube-nocookie.com", "youtu.be"):
        video = path.rstrip("/").rsplit("/", 1)[-1]
        if path.startswith("/watch"):
            video = parse_qs(query).get("v", [video])[0]
        return f"https://www.youtube.com/watch?v={video}", "Watch on YouTube"
    if host == "player.vimeo.com":
        return f"https://vimeo.com/{path.rstrip('/').rsplit('/', 1)[-1]}", "Watch on Vimeo"
    return None


def _generic_label(tag: str) -> str:
    return {"video": "Watch the video", "audio": "Listen to the audio"}.get(tag, "Open the embedded content")
