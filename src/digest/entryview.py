"""One stored entry made ready for the templates: cleaned, cut, restyled, turned into text.

Part of render.py, once per entry and form (full, excerpt, title, links): the one
sanitiser (sanitize.py), the email clean-up (htmlclean.py), the excerpt
(excerpts.py), the code blocks (codeblocks.py), the text part (textify.py)
and the card's language and direction (textdir.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml.html import HtmlElement
from markupsafe import Markup, escape

from digest import codeblocks, excerpts, htmlclean, sanitize, textdir, textify
from digest.config import Settings
from digest.models import StoredEntry


@dataclass
class EntryView:
    """What the templates see of one entry."""

    title: str
    link: str | None
    date: str | None
    author: str | None
    tags: tuple[str, ...]
    body: Markup
    text: str
    form: str  # full | excerpt | title | links (body and text: the first sentence only)
    feed_title: str
    feed_url: str | None
    enclosures: list[dict[str, Any]] = field(default_factory=list)
    feed_subtitle: str | None = None
    feed_language: str | None = None
    lang: str | None = None  # the entry's language, for lang=""
    dir: str | None = None  # "rtl" for Arabic, Hebrew, Persian or Urdu script entries


# A links line needs only the post's first sentence: it reads this much of a
# long post first (the whole post only when no sentence ends in it).
LINKS_SOURCE_CHARS = 4_000


def _cleaned(entry: StoredEntry, source: str, *, text_only: bool = False) -> HtmlElement:
    root = htmlclean.parse_fragment(sanitize.sanitise_entry_html(source, link=entry.link) if source else "")
    if text_only:
        htmlclean.clean_for_text(root, link=entry.link)
    else:
        htmlclean.clean_entry_html(root, title=entry.title, link=entry.link, base_url=entry.feed_site_url)
    return root


def _links_view(entry: StoredEntry, settings: Settings, source: str) -> EntryView:
    cut = len(source) > LINKS_SOURCE_CHARS
    root = _cleaned(entry, source[:LINKS_SOURCE_CHARS] if cut else source, text_only=True)  # nh3 closes a cut
    sentence = excerpts.first_sentence(root, whole=not cut)
    if not sentence and cut:
        root = _cleaned(entry, source, text_only=True)
        sentence = excerpts.first_sentence(root)
    declared = textdir.declared_language(root) or entry.language
    lang_dir = textdir.language_and_direction(f"{entry.title} {sentence}", declared, entry.feed_language)
    return _view(entry, settings, "links", escape(sentence), sentence, lang_dir)


def entry_view(entry: StoredEntry, settings: Settings, form: str) -> EntryView:
    source = entry.content_html or entry.summary_html
    if form == "links":
        return _links_view(entry, settings, source or "")
    root = _cleaned(entry, source if form != "title" else "")
    actual = form
    if form == "excerpt":
        if entry.summary_html and not entry.content_html:
            actual = "full" if excerpts.word_count(root) <= settings.excerpt_words else "excerpt"
        if excerpts.excerpt(root, settings.excerpt_words) is False and actual == "excerpt":
            actual = "full"
    htmlclean.drop_impostor_classes(root)
    codeblocks.style_code_blocks(root, settings.code_style)
    htmlclean.drop_foreign_classes(root)
    htmlclean.shift_headings(root)
    text = textify.html_to_text(root)
    declared = textdir.declared_language(root) or entry.language
    lang, rtl = textdir.language_and_direction(f"{entry.title} {text}", declared, entry.feed_language)
    if rtl:
        for pre in root.iter("pre"):
            pre.set("dir", "ltr")  # code reads left to right inside a right-to-left post
    body = Markup(htmlclean.serialise_children(root))  # noqa: S704 - cleaned above
    return _view(entry, settings, actual, body, text, (lang, rtl))


def bare_view(entry: StoredEntry, settings: Settings) -> EntryView:
    """The entry as its title and link alone: what goes out when its post could not be prepared."""
    return _view(entry, settings, "links", Markup(""), "", (None, None))


def _view(
    entry: StoredEntry,
    settings: Settings,
    form: str,
    body: Markup,
    text: str,
    lang_dir: tuple[str | None, str | None],
) -> EntryView:
    return EntryView(
        title=entry.title or "(untitled)",
        link=entry.link,
        date=format_date(entry.published, settings),
        author=entry.author,
        tags=entry.tags,
        body=body,
        text=text,
        form=form,
        feed_title=entry.feed_title,
        feed_url=entry.feed_site_url,
        feed_subtitle=entry.feed_subtitle,
        feed_language=entry.feed_language,
        enclosures=[{"url": e.url, "type": e.type, "length": e.length} for e in entry.enclosures],
        lang=lang_dir[0],
        dir=lang_dir[1],
    )


def format_date(moment: datetime | None, settings: Settings) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(settings.zone)
    return f"{local.day} {local:%B %Y}"
