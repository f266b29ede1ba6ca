"""Fetch feeds (conditional GET), parse them with feedparser, normalise entries.

``fetch_feed`` and ``parse_feed`` are pure of the database: they take a
location plus cached validators and return plain data (see models.py). The
``Fetcher`` is an object so tests and other transports can stand in for it;
the default one speaks HTTP(S) through urllib and reads local files.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import html
import logging
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener, url2pathname

import feedparser

from digest import __version__
from digest.errors import FeedError
from digest.models import Enclosure, Entry, ParsedFeed

log = logging.getLogger(__name__)

_ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
USER_AGENT = f"digest/{__version__} (+self-hosted newsletter digest; feed reader)"
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class FetchResult:
    """What a fetch returned. ``body`` is None on a 304 Not Modified."""

    url: str  # where the body finally came from
    status: int
    body: bytes | None
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    permanent_redirect: str | None = None  # new URL to remember after a 301/308
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.body is None


class Fetcher(Protocol):
    def __call__(self, location: str, *, etag: str | None, last_modified: str | None) -> FetchResult: ...


class _RedirectRecorder(HTTPRedirectHandler):
    """Follows redirects like urllib does, remembering where permanent ones lead."""

    def __init__(self) -> None:
        self.permanent: str | None = None
        self.broken = False

    def redirect_request(
        self, req: Request, fp: Any, code: int, msg: str, headers: HTTPMessage, newurl: str
    ) -> Request | None:
        if code in (301, 308) and not self.broken:
            self.permanent = newurl
        else:
            # A temporary hop anywhere in the chain means the final URL is not
            # a permanent home.
            self.broken = True
            self.permanent = None
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            for name in ("If-none-match", "If-modified-since", "Accept-encoding"):
                value = req.get_header(name)
                if value:
                    new.add_unredirected_header(name, value)
        return new


@dataclass
class HttpFetcher:
    """Fetch over HTTP(S) with timeouts, a size cap and gzip; read files directly."""

    timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024

    def __call__(self, location: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        scheme = urlsplit(location).scheme.lower()
        if scheme in ("http", "https"):
            return self._fetch_http(location, etag, last_modified)
        return self._read_file(location)

    def _read_file(self, location: str) -> FetchResult:
        path = Path(url2pathname(urlsplit(location).path)) if location.startswith("file:") else Path(location)
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise FeedError(f"{location}: file is {size} bytes, over the {self.max_bytes}-byte limit")
            body = path.read_bytes()
        except OSError as exc:
            raise FeedError(f"{location}: cannot read feed file: {exc.strerror}") from None
        # No HTTP header says what a file is; tell feedparser it is XML.
        return FetchResult(url=path.resolve().as_uri(), status=200, body=body, content_type="application/xml")

    def _fetch_http(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        request = Request(  # noqa: S310 - only http(s) URLs reach here (see __call__)
            url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": _ACCEPT}
        )
        if etag:
            request.add_header("If-None-Match", etag)
        if last_modified:
            request.add_header("If-Modified-Since", last_modified)
        redirects = _RedirectRecorder()
        opener = build_opener(redirects)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                raw = response.read(self.max_bytes + 1)
                if len(raw) > self.max_bytes:
                    raise FeedError(f"{url}: response is over the {self.max_bytes}-byte limit (DIGEST_FETCH_MAX_BYTES)")
                body = self._decode(url, raw, response.headers.get("Content-Encoding", ""))
                return FetchResult(
                    url=response.geturl(),
                    status=response.status,
                    body=body,
                    content_type=response.headers.get("Content-Type", ""),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    permanent_redirect=redirects.permanent,
                    headers=dict(response.headers.items()),
                )
        except HTTPError as exc:
            if exc.code == 304:
                return FetchResult(url=url, status=304, body=None, etag=etag, last_modified=last_modified,
                                   permanent_redirect=redirects.permanent)  # fmt: skip
            raise FeedError(f"{url}: HTTP {exc.code} {exc.reason}", hint=_http_hint(exc.code)) from None
        except URLError as exc:
            raise FeedError(f"{url}: cannot connect: {exc.reason}") from None
        except TimeoutError:
            raise FeedError(f"{url}: timed out after {self.timeout:g}s (DIGEST_FETCH_TIMEOUT)") from None
        except OSError as exc:
            raise FeedError(f"{url}: network error: {exc}") from None

    def _decode(self, url: str, raw: bytes, encoding: str) -> bytes:
        encoding = encoding.strip().lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(raw)
            elif encoding == "deflate":
                body = zlib.decompress(raw)
            else:
                return raw
        except (OSError, zlib.error, EOFError) as exc:
            raise FeedError(f"{url}: corrupt {encoding} response: {exc}") from None
        if len(body) > self.max_bytes:
            raise FeedError(
                f"{url}: decompressed response is over the {self.max_bytes}-byte limit (DIGEST_FETCH_MAX_BYTES)"
            )
        return body


def _http_hint(code: int) -> str | None:
    if code == 410:
        return "the feed is gone for good; remove it from DIGEST_FEED_URL"
    if code in (401, 403):
        return "the server refused access"
    if code == 404:
        return "check DIGEST_FEED_URL"
    return None


# --- parsing ----------------------------------------------------------------


def parse_feed(result: FetchResult) -> ParsedFeed:
    """Parse a fetched body into normalised entries; FeedError if it is not a feed."""
    assert result.body is not None
    headers = {"content-location": result.url}
    if result.content_type:
        headers["content-type"] = result.content_type
    parsed = feedparser.parse(result.body, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    is_feed = bool(parsed.get("version")) or bool(parsed.entries)
    if not is_feed:
        reason = parsed.get("bozo_exception")
        detail = f" ({reason})" if reason else ""
        raise FeedError(f"{result.url}: not an RSS or Atom feed{detail}")
    warning = None
    if parsed.get("bozo"):
        warning = str(parsed.get("bozo_exception") or "ill-formed feed")
    meta = parsed.feed
    site = meta.get("link") or None
    entries = _normalise_entries(parsed.entries, site or result.url)
    return ParsedFeed(
        url=result.url,
        title=_plain(meta.get("title", "")) or _host(site or result.url),
        site_url=site,
        entries=entries,
        warning=warning,
    )


def _normalise_entries(raw_entries: list[Any], base_url: str) -> tuple[Entry, ...]:
    links = [_normalise_link(e.get("link"), base_url) for e in raw_entries]
    counts: dict[str, int] = {}
    for link in links:
        if link:
            counts[link] = counts.get(link, 0) + 1
    entries = []
    for raw, link in zip(raw_entries, links, strict=True):
        title = _plain(raw.get("title", ""))
        content = _content_html(raw)
        summary = _summary_html(raw)
        guid = (raw.get("id") or "").strip() or None
        alt_keys: tuple[str, ...] = ()
        if guid:
            key = "id:" + guid
        elif link:
            by_title = f"link:{link}#{_digest(title)}"
            if counts[link] > 1:
                # Several items share one link: the title tells them apart.
                key, alt_keys = by_title, ()
            else:
                key, alt_keys = "link:" + link, (by_title,)
        else:
            key = "hash:" + _digest(title + "\n" + (content or summary))
        entries.append(
            Entry(
                key=key,
                alt_keys=alt_keys,
                title=title,
                link=link,
                guid=guid,
                author=_plain(raw.get("author", "")) or None,
                published=_when(raw.get("published_parsed")) or _when(raw.get("updated_parsed")),
                updated=_when(raw.get("updated_parsed")),
                summary_html=summary,
                content_html=content,
                tags=tuple(t for t in (_plain(tag.get("term", "")) for tag in raw.get("tags", [])) if t),
                enclosures=tuple(
                    Enclosure(
                        url=urljoin(base_url, enc.get("href", "")),
                        type=enc.get("type", ""),
                        length=_int_or_none(enc.get("length")),
                    )
                    for enc in raw.get("enclosures", [])
                    if enc.get("href")
                ),
            )
        )
    return tuple(entries)


def _content_html(raw: Any) -> str:
    contents = raw.get("content") or []
    html_parts = [c for c in contents if c.get("type") in ("text/html", "application/xhtml+xml")]
    if html_parts:
        return str(html_parts[0].get("value", ""))
    if contents:
        return _text_to_html(str(contents[0].get("value", "")))
    return ""


def _summary_html(raw: Any) -> str:
    summary = raw.get("summary", "")
    detail = raw.get("summary_detail") or {}
    if detail.get("type") == "text/plain":
        return _text_to_html(summary)
    return str(summary)


def _text_to_html(text: str) -> str:
    """text/plain content is not sanitised by feedparser: escape it, keep paragraphs."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def _plain(value: str) -> str:
    """Text for a title or name: tags stripped, entities decoded, one line."""
    return " ".join(html.unescape(_TAG.sub("", value or "")).split())


def _normalise_link(link: str | None, base: str) -> str | None:
    if not link or not link.strip():
        return None
    absolute = urljoin(base, link.strip())
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https"):
        return absolute
    # Scheme and host are case-insensitive; a fragment never names another page.
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _when(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _host(url: str) -> str:
    return urlsplit(url).netloc or url
