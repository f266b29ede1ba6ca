"""One stored entry made ready for the templates: cleaned, cut, restyled, turned into text.

Part of render.py, once per entry and form (full, excerpt, title): the one
sanitiser (sanitize.py), the email clean-up (htmlclean.py), the excerpt
(excerpts.py), the code blocks (codeblocks.py), the text part (textify.py)
and the card's language and direction (textdir.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup

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
    form: str  # full | excerpt | title
    feed_title: str
    feed_url: str | None
    enclosures: list[dict[str, Any]] = field(default_factory=list)
    feed_subtitle: str | None = None
    feed_language: str | None = None
    lang: str | None = None  # the entry's language, for lang=""
    dir: str | None = None  # "rtl" for Arabic, Hebrew, Persian or Urdu script entries


def entry_view(entry: StoredEntry, settings: Settings, form: str) -> EntryView:
    source = entry.content_html or entry.summary_html
    safe = sanitize.sanitise_entry_html(source, link=entry.link) if form != "title" else ""
    root = htmlclean.parse_fragment(safe)
    htmlclean.clean_entry_html(root, title=entry.title, link=entry.link, base_url=entry.feed_site_url)
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
    body = htmlclean.serialise_children(root)
    return EntryView(
        title=entry.title or "(untitled)",
        link=entry.link,
        date=format_date(entry.published, settings),
        author=entry.author,
        tags=entry.tags,
        body=Markup(body),  # noqa: S704 - cleaned above
        text=text,
        form=actual,
        feed_title=entry.feed_title,
        feed_url=entry.feed_site_url,
        feed_subtitle=entry.feed_subtitle,
        feed_language=entry.feed_language,
        enclosures=[{"url": e.url, "type": e.type, "length": e.length} for e in entry.enclosures],
        lang=lang,
        dir=rtl,
    )


def format_date(moment: datetime | None, settings: Settings) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(settings.zone)
    return f"{local.day} {local:%B %Y}"
