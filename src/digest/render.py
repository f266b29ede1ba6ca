"""Turn stored entries into one Digest: subject, inlined HTML, text part.

Runs once per digest (never per subscriber): each entry is made ready by
entryview.py (cleaned, cut, its code redrawn, turned into text); the Jinja2
templates lay the entries out, premailer inlines the CSS, and layout.py
picks each entry's form (full, excerpt, title, links) so the HTML fits
DIGEST_MAX_HTML_BYTES. The result still holds the personal placeholders
below; message.py substitutes them per recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from digest import entryview, headers, layout, sandbox, textify
from digest.config import Settings
from digest.deferred import deferred
from digest.entryview import EntryView
from digest.errors import ConfigError, RenderError, TemplateLimitError, shown
from digest.layout import FORMS, RenderStats
from digest.models import Digest, StoredEntry
from digest.placeholders import LEGACY_RECIPIENT, LEGACY_UNSUBSCRIBE, Placeholders

log = logging.getLogger(__name__)

# Personal parts, substituted per recipient by message.py: random per digest
# (placeholders.py). These fixed strings are only those of old stored digests.
UNSUBSCRIBE_PLACEHOLDER = LEGACY_UNSUBSCRIBE
RECIPIENT_PLACEHOLDER = LEGACY_RECIPIENT

GMAIL_CLIP_BYTES = 102_000


@dataclass
class FeedGroup:
    title: str
    url: str | None
    entries: list[EntryView]  # all of the feed's entries, cards and links

    @property
    def cards(self) -> list[EntryView]:
        return [entry for entry in self.entries if entry.form != "links"]

    @property
    def links(self) -> list[EntryView]:
        """The entries shown as one line each (title and first sentence) at the end."""
        return [entry for entry in self.entries if entry.form == "links"]


def bundled_template_dir() -> Path:
    """The templates shipped in the wheel, or the checkout's when run from source."""
    packaged = Path(str(resources.files("digest"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def template_environment(settings: Settings) -> jinja2.Environment:
    search = [str(settings.template_dir)] if settings.template_dir else []
    if settings.template_dir and not settings.template_dir.is_dir():
        raise ConfigError(f"DIGEST_TEMPLATE_DIR: not a folder: {settings.template_dir}")
    search.append(str(bundled_template_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["wrap"] = textify.wrap_paragraph
    return env


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache, which only ever saves time: a folder that cannot be read
    or written (full, read-only, removed meanwhile) means compiling in memory."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError as exc:
            log.debug("template cache not read: %s", exc)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("template cache not written: %s", exc)


@cache
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs, so a run does not compile them again.

    Jinja's own per-user folder in the temporary directory (created 0700 and
    refused if another user owns it); each entry is checked against its
    template's source, so an edited template is compiled afresh. Without a
    usable folder, templates are compiled in memory as before.
    """
    try:
        return _TemplateCache(pattern="digest-%s.cache")
    except (OSError, RuntimeError) as exc:
        log.debug("no template cache: %s", exc)
        return None


@cache
def _premailer() -> Any:
    """premailer's Premailer class, imported on first use, with cssutils quietened.

    premailer imports requests at its top only to fetch external stylesheets,
    which it never does here (allow_network=False); requests and its own
    dependencies are about a third of premailer's import time, so it is
    deferred (deferred.py) until something uses it.
    """
    with deferred("requests"):
        import cssutils
        from premailer import Premailer

    # cssutils logs every property it does not know (mso-*, -webkit-*) at
    # WARNING; premailer would add a handler per instance. Silence it once.
    cssutils.log.setLevel(logging.CRITICAL)
    return Premailer


def inline_css(document: str) -> str:
    inliner = _premailer()(
        document,
        base_url=None,
        strip_important=False,  # keep !important in the dark-mode @media block
        allow_network=False,
        keep_style_tags=False,  # @media rules survive in a <style>; the rest is inlined
        remove_classes=False,  # dark-mode rules still need the classes
        disable_validation=True,
        cache_css_parsing=True,
    )
    try:
        return str(inliner.transform(pretty_print=False))
    except Exception as exc:  # premailer raises assorted lxml/cssutils errors
        raise RenderError(f"CSS inlining failed: {exc}") from exc


@dataclass(frozen=True)
class Issue:
    """What the masthead says of this issue as a whole."""

    date: str  # the day it is rendered, in DIGEST_TIMEZONE
    archive_url: str | None = None  # its page in the web archive: a "View in browser" link when set


def render_digest(
    entries: Sequence[StoredEntry],
    settings: Settings,
    placeholders: Placeholders | None = None,
    *,
    archive_url: str | None = None,
    issued: datetime | None = None,
    stats: RenderStats | None = None,
) -> Digest:
    """Render ``entries`` (any order) into a Digest within the HTML size budget.

    The personal parts are left as ``placeholders`` (new random ones by
    default). ``issued`` (default now) dates the masthead; ``archive_url``,
    when the digest has a public page, adds a "View in browser" link.
    ``stats``, when given, counts the whole-digest renders the size budget took.
    """
    if not entries:
        raise RenderError("nothing to render: no entries")
    placeholders = placeholders or Placeholders.new()
    ordered = sorted(entries, key=lambda e: (e.sort_time, e.id), reverse=True)
    env = template_environment(settings)
    issue = Issue(entryview.format_date(issued or datetime.now(UTC), settings) or "", archive_url)
    html, context = _Layout(ordered, settings, env, placeholders, issue, stats or RenderStats()).fit()
    text = _render(env, "digest.txt.j2", context)
    return Digest(
        subject=context["subject"],
        html=html,
        text=text,
        entry_ids=tuple(e.id for e in ordered),
        notes=tuple(context["notes"]),
        placeholder_nonce=placeholders.nonce,
    )


class _Layout:
    """The entries of one digest in any choice of forms: views, renders and sizes for layout.py's search."""

    def __init__(
        self,
        ordered: list[StoredEntry],
        settings: Settings,
        env: jinja2.Environment,
        placeholders: Placeholders,
        issue: Issue,
        stats: RenderStats,
    ) -> None:
        self.placeholders = placeholders
        self.issue = issue
        self.ordered = ordered
        self.settings = settings
        self.env = env
        self.stats = stats
        self.count = len(ordered)
        self.target = "full" if settings.mode == "full" else "excerpt"
        self._views: dict[tuple[int, str], EntryView] = {}
        self._bare: set[int] = set()  # entries that could not be prepared: title and link only
        self._inlined: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}

    def view(self, index: int, form: str) -> EntryView:
        key = (index, form)
        if key not in self._views:
            self._views[key] = self._prepared(index, form)
        return self._views[key]

    def _prepared(self, index: int, form: str) -> EntryView:
        """The entry's view in ``form``; a post digest cannot prepare goes out as its title and link."""
        entry = self.ordered[index]
        if index in self._bare:
            return entryview.bare_view(entry, self.settings)
        try:
            return entryview.entry_view(entry, self.settings, form)
        except Exception as exc:  # a bug meeting a post nobody foresaw: it must not hold back every digest
            self._bare.add(index)
            log.debug("entry %s could not be prepared as %s", entry.key, form, exc_info=True)
            log.warning(
                "post '%s' could not be prepared (%s: %s): the digest shows its title and link only; -vv logs where",
                shown(entry.title, 80),
                type(exc).__name__,
                shown(exc),
            )
            return entryview.bare_view(entry, self.settings)

    def context(self, forms: Sequence[str]) -> dict[str, Any]:
        views = [self.view(i, form) for i, form in enumerate(forms)]
        rank = FORMS.index(self.target)
        # By what is shown: a short post asked to be an excerpt is still whole.
        shortened = [view for view in views if FORMS.index(view.form) > rank]
        named = [view.title for view in shortened if view.form != "links"]
        listed = len(shortened) - len(named)
        notes = [_shortened_note(len(shortened), len(forms), named, listed=listed)] if shortened else []
        subject = render_subject(self.settings, views)
        return _context(self.settings, subject, views, notes, self.placeholders, self.issue)

    def body_bytes(self, index: int, form: str) -> int:
        return len(self.view(index, form).body.encode("utf-8"))

    def raw_size(self, forms: Sequence[str]) -> int:
        self.stats.template_renders += 1
        return len(_render(self.env, "digest.html.j2", self.context(forms)).encode("utf-8"))

    def inlined_size(self, forms: Sequence[str]) -> int:
        self.stats.template_renders += 1
        self.stats.inline_runs += 1
        context = self.context(forms)
        html = inline_css(_render(self.env, "digest.html.j2", context))
        self._inlined[tuple(forms)] = (html, context)
        return len(html.encode("utf-8"))

    def fit(self) -> tuple[str, dict[str, Any]]:
        budget = self.settings.max_html_bytes
        found = layout.BudgetSearch(self, budget).fit()
        if not found.fits:
            log.warning(
                "digest HTML is %d bytes, over DIGEST_MAX_HTML_BYTES=%d even with all %d posts as links with their "
                "first sentence: lower DIGEST_MAX_ENTRIES or raise DIGEST_MAX_HTML_BYTES",
                found.size,
                budget,
                self.count,
            )
        return self._inlined[tuple(found.forms)]


def _shortened_note(shortened: int, total: int, titles: Sequence[str] = (), *, listed: int = 0) -> str:
    """The note over the posts; ``titles`` name the shortened cards, ``listed`` is how many are links at the end."""
    posts = "posts was" if shortened == 1 else "posts were"
    if total == 1:
        return "This post was shortened to fit one email; the link leads to the full text."
    named = f" ({'; '.join(titles)})" if titles else ""
    if not listed:
        return f"{shortened} of {total} {posts} shortened to fit one email{named}; the links lead to the full text."
    at_end = (
        "the last one is listed at the end with its"
        if listed == 1
        else f"the last {listed} are listed at the end with their"
    )
    return (
        f"{shortened} of {total} {posts} shortened to fit one email{named}; {at_end} first sentence; "
        "the links lead to the full text."
    )


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found", hint="check DIGEST_TEMPLATE_DIR") from None
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise RenderError(f"template {name}{where}: {exc}") from None


def _context(
    settings: Settings,
    subject: str,
    views: list[EntryView],
    notes: list[str],
    placeholders: Placeholders,
    issue: Issue,
) -> dict[str, Any]:
    groups: dict[str, FeedGroup] = {}
    for view in views:
        groups.setdefault(view.feed_title, FeedGroup(view.feed_title, view.feed_url, [])).entries.append(view)
    titles = list(groups)
    site_title = titles[0] if len(titles) == 1 else ", ".join(titles)
    single = len(titles) == 1
    site_url = views[0].feed_url if single else None
    newest = views[0]
    page_lang = (views[0].feed_language if single else None) or "en"
    preheader = _preheader([view.title for view in views]) if views else newest.title
    return {
        "subject": subject,
        "preheader": preheader,
        "site_title": site_title,
        "site_url": site_url,
        "entries": views,
        "cards": [view for view in views if view.form != "links"],  # the posts shown as cards
        "links": [view for view in views if view.form == "links"],  # one line each, at the end
        "groups": list(groups.values()),
        "grouped": len(groups) > 1,
        "notes": notes,
        "unsubscribe_url": placeholders.unsubscribe,
        "recipient": placeholders.recipient,
        "subscriber_page_url": placeholders.subscriber_page,
        "postal_address": settings.postal_address,
        "issue_date": issue.date,
        "archive_url": issue.archive_url,
        "site_subtitle": views[0].feed_subtitle if single else None,
        # The page is in the feed's language; the template's own words say lang="en".
        "page_lang": page_lang,
        "chrome_lang": Markup("") if page_lang.split("-")[0].lower() == "en" else Markup(' lang="en"'),
    }


PREHEADER_CHARS = 140  # about what inbox previews show


def _preheader(titles: list[str]) -> str:
    """The hidden preview text: the posts' titles, as many as fit, then how many more."""
    shown: list[str] = []
    for index, title in enumerate(titles):
        rest = len(titles) - index - 1
        candidate = " · ".join([*shown, title])
        more = f" and {rest} more" if rest else ""
        if shown and len(candidate + more) > PREHEADER_CHARS:
            return " · ".join(shown) + f" and {len(titles) - len(shown)} more"
        shown.append(title)
    return " · ".join(shown)


def render_subject(settings: Settings, views: list[EntryView]) -> str:
    """DIGEST_SUBJECT rendered with limits (sandbox.py), as one clean line of at most MAX_SUBJECT characters."""
    try:
        subject = sandbox.render_limited(
            settings.subject_template,
            {
                "feed_title": views[0].feed_title,
                "newest": views[0],
                "others": len(views) - 1,
                "count": len(views),
                "entries": views,
            },
        )
    except TemplateLimitError as exc:
        raise ConfigError(f"DIGEST_SUBJECT: {exc}") from None
    # One line, always: feed titles may carry CR/LF, control characters and runs of blanks.
    return headers.clean(subject, headers.MAX_SUBJECT, "\u2026") or "New posts"


def html_size_report(html: str) -> str:
    size = len(html.encode("utf-8"))
    verdict = "under" if size < GMAIL_CLIP_BYTES else "OVER"
    return f"{size / 1000:.1f} KB ({verdict} Gmail's ~102 KB clip limit)"
