"""Parse fetched feeds with feedparser and normalise their entries.

The second stage of the pipeline, after fetch.py: bytes in, a ParsedFeed of
plain Entry objects out (see models.py), with no database and no network.

Identity is the one thing here that must never drift, because the store
decides "new" by it: an entry's ``key`` is ``id:<guid>`` when the item has a
guid/id, else ``link:<normalised link>``, else ``hash:<title and text>``. It
never depends on fetch time, feed order, dates or (for guid and link keys)
content. Items that share a guid or a link are told apart by a fingerprint of
their title (``link:<link>#<title hash>``); the ``alt_keys`` and
``same_title_keys`` of an entry let the store find it under the form it was
first stored with, when a neighbour sharing its link appears or drops off.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import logging
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlunsplit

from lxml import html as lxml_html

from digest import feedtext, urls
from digest.deferred import deferred
from digest.errors import FeedError, shown
from digest.fetch import FetchResult
from digest.models import SQLITE_MAX_INTEGER, Enclosure, Entry, ParsedFeed
from digest.sanitize import sanitise_entry_html
from digest.textdir import language_tag

# feedparser imports chardet (when installed) at its top, for the rare body
# whose declared encodings all fail to decode: a seventh of its import time.
with deferred("chardet"):
    import feedparser

log = logging.getLogger(__name__)

# Harmless: the document declared one encoding and feedparser read it in
# another (typically text/xml served without a charset).
_BENIGN_BOZO = (feedparser.CharacterEncodingOverride,)


def parse_feed(result: FetchResult) -> ParsedFeed:
    """Parse a fetched body into normalised entries; FeedError if it is not a feed."""
    assert result.body is not None
    if not result.body.strip():
        raise FeedError(f"{result.url}: empty response, not a feed", hint="check DIGEST_FEED_URL")
    # A local file is no base for a reader's mail client: links resolve
    # against xml:base, the entry's link or the feed's site link instead.
    remote = urls.scheme(result.url) in ("http", "https")
    headers = {"content-location": result.url} if remote else {}
    if result.content_type:
        headers["content-type"] = result.content_type
    # Raw HTML: sanitize.py is the one sanitiser (feedparser's drops iframes
    # before they can become links); URLs are resolved here, per entry.
    try:
        parsed = feedparser.parse(
            feedtext.readable_body(result.body),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:
        # feedparser's own failure on a body it could not take apart (seen: the loose
        # parser on references it cannot encode; the cause is logged with -vv).
        log.debug("feedparser failed on %s", result.url, exc_info=True)
        raise FeedError(
            f"{result.url}: unreadable feed: feedparser failed ({type(exc).__name__}: {shown(exc)})"
        ) from None
    feedtext.scrub(parsed.feed)
    feedtext.scrub(parsed.entries)
    raw_entries = [raw for raw in parsed.entries if _has_substance(raw)]
    warning = _readable_or_raise(result, parsed, raw_entries)
    meta = parsed.feed
    site = _site_url(meta.get("link"), result.url if remote else "")
    language = language_tag(meta.get("language"))
    entries, unreadable = _normalise_entries(raw_entries, site or (result.url if remote else ""), language)
    if unreadable and not entries:
        raise FeedError(f"{result.url}: no item could be read: {unreadable[0]}")
    if unreadable:
        # One item digest cannot read must not hold back the others (nor every
        # later digest): it is left out, named, and tried again next check.
        skipped = f"{len(unreadable)} item(s) could not be read and were left out: {'; '.join(unreadable[:3])}"
        warning = f"{warning}; {skipped}" if warning else skipped
    return ParsedFeed(
        url=result.url,
        title=feedtext.text_of(meta.get("title"), meta.get("title_detail")) or _host(site or result.url),
        site_url=site,
        entries=entries,
        warning=warning,
        subtitle=feedtext.text_of(meta.get("subtitle"), meta.get("subtitle_detail"), plain=True) or None,
        language=language,
    )


def _readable_or_raise(result: FetchResult, parsed: Any, raw_entries: list[Any]) -> str | None:
    """FeedError unless ``parsed`` is a feed with entries to read; else feedparser's warning, if any."""
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.get("version") and not raw_entries:
        raise _not_a_feed(result, problem)
    if problem is not None and not raw_entries:
        # A feed cut short before its first item: treating it as "empty" would
        # make every entry of the next good fetch look new.
        raise FeedError(f"{result.url}: ill-formed feed with no readable entries: {problem}")
    return None if problem is None or isinstance(problem, _BENIGN_BOZO) else str(problem)


def _site_url(link: str | None, base: str) -> str | None:
    site = _absolute(link, base)
    return site if site and urls.scheme(site) in ("http", "https") else None


def _has_substance(raw: Any) -> bool:
    """False for the husk of an item the loose parser left from a cut-off feed."""
    return any(raw.get(name) for name in ("id", "title", "link", "summary", "content", "enclosures"))


def _not_a_feed(result: FetchResult, problem: object) -> FeedError:
    finder = _AlternateFinder()
    finder.feed(result.body.decode("utf-8", "replace") if result.body else "")
    if finder.is_html:
        hint = "DIGEST_FEED_URL must point at the feed, not the page"
        if finder.links:
            hint = f"the page names its feed: {urls.join(result.url, finder.links[0]) or finder.links[0]}"
        return FeedError(f"{result.url}: got an HTML page, not an RSS or Atom feed", hint=hint)
    detail = f" ({problem})" if problem else ""
    return FeedError(f"{result.url}: not an RSS or Atom feed{detail}", hint="check DIGEST_FEED_URL")


class _AlternateFinder(HTMLParser):
    """Spots an HTML page and the feed it advertises in <link rel="alternate">."""

    def __init__(self) -> None:
        super().__init__()
        self.is_html = False
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("html", "head", "body"):
            self.is_html = True
        values = {name: value or "" for name, value in attrs}
        feed_types = ("application/rss+xml", "application/atom+xml")
        if tag == "link" and "alternate" in values.get("rel", "").lower() and values.get("type") in feed_types:
            self.links.append(values.get("href", ""))


# --- entries and their identity ---------------------------------------------------


def _normalise_entries(
    raw_entries: list[Any], base_url: str, feed_language: str | None
) -> tuple[tuple[Entry, ...], list[str]]:
    """The feed's entries, and a description of each item that could not be read."""
    raw_titles = [feedtext.text_of(raw.get("title"), raw.get("title_detail")) for raw in raw_entries]
    bases = [_base_key(raw, base_url) for raw in raw_entries]
    sharing = Counter(base for base in bases if base)
    links = [_link_key(raw.get("link"), base_url) for raw in raw_entries]
    link_sharing = Counter(link for link in links if link)
    entries: list[Entry] = []
    unreadable: list[str] = []
    seen: set[str] = set()
    for number, (raw, raw_title, base, link_key) in enumerate(zip(raw_entries, raw_titles, bases, links, strict=True)):
        try:
            entry = _entry(raw, raw_title, base_url, (base, sharing[base]) if base else None)
        except Exception as exc:  # a bug meeting an input nobody foresaw: contained to the item
            log.debug("item %d (%r) of the feed could not be read", number + 1, raw_title, exc_info=True)
            unreadable.append(f"item {number + 1} '{shown(raw_title, 60)}': {type(exc).__name__}: {shown(exc)}")
            continue
        if entry.key in seen:
            log.debug("skipping a repeated item %s", entry.key)  # the very same item listed twice
            continue
        seen.add(entry.key)
        language = _entry_language(raw)
        entries.append(
            replace(
                entry,
                link_key=link_key if link_key and link_sharing[link_key] == 1 else None,
                language=language if language != feed_language else None,
            )
        )
    return tuple(entries), unreadable


def _entry(raw: Any, raw_title: str, base_url: str, shared: tuple[str, int] | None) -> Entry:
    """One item normalised; ``shared`` is its base key and how many items of the feed have it."""
    entry_link = _absolute(raw.get("link"), base_url)
    content_base = _xml_base(raw.get("content") or [{}], base_url) or entry_link or base_url
    summary_base = _xml_base([raw.get("summary_detail") or {}], base_url) or entry_link or base_url
    # Stored sanitised (embeds already link cards); render.py sanitises again.
    content = sanitise_entry_html(absolutise(_content_html(raw), content_base, entry_link), link=entry_link)
    summary = sanitise_entry_html(absolutise(_summary_html(raw), summary_base, entry_link), link=entry_link)
    enclosures = _enclosures(raw, base_url)
    key, alt_keys, same_title_keys = _identity(raw_title, shared, content or summary, enclosures)
    # dict.get, not raw.get: FeedParserDict maps a missing updated_parsed
    # to published_parsed with a DeprecationWarning.
    published = _when(dict.get(raw, "published_parsed"))
    updated = _when(dict.get(raw, "updated_parsed"))
    terms = [tag.get("term") for tag in raw.get("tags", [])]
    return Entry(
        key=key,
        alt_keys=alt_keys,
        same_title_keys=same_title_keys,
        title=raw_title or feedtext.fallback_title(content or summary),
        link=entry_link,
        guid=(raw.get("id") or "").strip() or None,
        author=_author(raw),
        published=published or updated,
        updated=updated,
        summary_html=summary,
        content_html=content,
        tags=tuple(dict.fromkeys(term for term in map(feedtext.plain_text, terms) if term)),
        enclosures=enclosures,
    )


def _identity(
    raw_title: str, shared: tuple[str, int] | None, text_html: str, enclosures: tuple[Enclosure, ...]
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The entry's key, alt_keys and same_title_keys (see the module docstring)."""
    if shared is None:
        media = enclosures[0].url if enclosures else ""
        return "hash:" + _fingerprint(f"{raw_title}\n{feedtext.plain_text(text_html)}\n{media}"), (), ()
    base, count = shared
    if count == 1:
        # Alone with this guid/link now; it may have been stored while it
        # shared it with an item that has since dropped off the feed.
        return base, (f"{base}#{_fingerprint(raw_title)}",), ()
    # Several items share one guid or link (a changelog page, a broken
    # CMS): the title tells them apart. The one stored under the bare
    # key before its neighbours appeared is recognised by its title.
    return f"{base}#{_fingerprint(raw_title)}", (), (base,)


def _entry_language(raw: Any) -> str | None:
    """The item's language: dc:language, else the xml:lang in force on its content, summary or title."""
    details = [*(raw.get("content") or []), raw.get("summary_detail") or {}, raw.get("title_detail") or {}]
    for value in (raw.get("language"), *(detail.get("language") for detail in details)):
        tag = language_tag(value)
        if tag:
            return tag
    return None


def _xml_base(details: list[Any], base_url: str) -> str | None:
    """The xml:base in force for a content element, when the feed set one."""
    base = str((details[0] if details else {}).get("base") or "")
    if urls.scheme(base) in ("http", "https") and base != base_url:
        return base
    return None


def absolutise(fragment: str, base: str, page: str | None) -> str:
    """Every link and image of ``fragment`` made absolute against ``base``.

    A ``#fragment`` link points into the post itself, so it resolves against
    the entry's own link; without any http(s) base relative links are left
    alone (htmlclean drops what a mail client could not load).
    """
    if not fragment or urls.scheme(base) not in ("http", "https"):
        return fragment
    if not any(marker in fragment for marker in ("href", "src", "poster", "data=")):
        return fragment
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")

    def resolve(url: str) -> str | None:  # None: lxml drops a link no client could follow
        url = url.strip()
        if url.startswith("#"):
            return (page or base).split("#")[0] + url
        return urls.join(base, url)

    root.rewrite_links(resolve, resolve_base_href=False)
    return (html.escape(root.text or "", quote=False)) + "".join(
        lxml_html.tostring(child, encoding="unicode", with_tail=True) for child in root
    )


def _base_key(raw: Any, base_url: str) -> str | None:
    guid = (raw.get("id") or "").strip()
    if guid:
        return "id:" + guid
    link = _link_key(raw.get("link"), base_url)
    return "link:" + link if link else None


def _link_key(link: str | None, base: str) -> str | None:
    """A link reduced to what names the page, for identity only (display keeps the link).

    Scheme (a site moving to https), host case, default ports, fragments and
    utm_* tracking parameters (some feeds rotate them) do not name another page.
    """
    absolute = _absolute(link, base)
    if absolute is None:
        return None
    parts = urls.split(absolute)
    if parts is None:
        return None
    if parts.scheme not in ("http", "https"):
        return absolute
    host = (parts.hostname or "").lower()
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith("utm_")]
    return urlunsplit(("", host, parts.path or "/", urlencode(query), ""))


def _absolute(link: str | None, base: str) -> str | None:
    if not link or not link.strip():
        return None
    return urls.join(base, link.strip())


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# --- fields --------------------------------------------------------------------------


def _content_html(raw: Any) -> str:
    contents = raw.get("content") or []
    html_parts = [c for c in contents if c.get("type") in feedtext.HTML_TYPES]
    if html_parts:
        return str(html_parts[0].get("value", ""))
    if contents:
        return feedtext.text_to_html(str(contents[0].get("value", "")))
    return ""


def _summary_html(raw: Any) -> str:
    summary = str(raw.get("summary", "") or "")
    detail = raw.get("summary_detail") or {}
    if detail.get("type") == "text/plain":
        return feedtext.text_to_html(summary)
    return summary


def _author(raw: Any) -> str | None:
    detail = raw.get("author_detail") or {}
    return feedtext.plain_text(detail.get("name") or raw.get("author")) or None


def _enclosures(raw: Any, base_url: str) -> tuple[Enclosure, ...]:
    found: dict[str, Enclosure] = {}
    for enclosure in raw.get("enclosures", []):
        url = _absolute(enclosure.get("href"), base_url)
        if url and url not in found:
            found[url] = Enclosure(
                url=url, type=enclosure.get("type", "") or "", length=_length(enclosure.get("length"))
            )
    return tuple(found.values())


def _when(parsed: Any) -> datetime | None:
    """feedparser's struct_time (already UTC) as an aware UTC datetime."""
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None


def _length(value: Any) -> int | None:
    try:
        length = int(value)
    except (TypeError, ValueError):
        return None
    return length if 0 < length <= SQLITE_MAX_INTEGER else None


def _host(url: str) -> str:
    parts = urls.split(url)
    return (parts.netloc if parts is not None else "") or url
