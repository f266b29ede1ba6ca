"""Checking feeds: fetch each configured feed and record its new entries.

The first use case of the pipeline (``digest check``, the daemon's check job,
and the start of every ``send``). One failing feed is recorded on its row and
the others still run; a ``FeedReport`` says what each check found.

Every feed is fetched (and parsed) before anything is written: a run's
writes start only once the network is done, so a dry run, whose first write
takes the write lock until it ends, never holds it across a slow feed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from digest import store
from digest.config import Settings
from digest.errors import FeedError, FetchError, shown
from digest.fetch import Fetcher, FetchResult, body_hash
from digest.models import Feed, ParsedFeed, StoredEntry
from digest.wiring import Wiring

log = logging.getLogger(__name__)


@dataclass
class FeedReport:
    """What one check of one feed found; ``digest check`` prints it."""

    url: str  # as configured in DIGEST_FEED_URL: the feed's name
    title: str | None = None
    new: list[StoredEntry] = field(default_factory=list)  # newest first
    status: str = "ok"  # ok | not-modified | error | gone
    error: str | None = None
    http_status: str | None = None  # what feeds.last_status recorded
    fetched_from: str | None = None  # set when the feed is fetched from a URL it moved to
    moved_to: str | None = None  # a permanent redirect found by this check
    warning: str | None = None  # ill-formed but readable
    first_run: bool = False
    skipped: int = 0  # entries the first-run policy recorded as already seen
    refreshed: int = 0  # pending entries whose content changed
    elsewhere: int = 0  # new to this feed, already known under another feed: never sent again

    @property
    def failed(self) -> bool:
        return self.status in ("error", "gone")

    @property
    def name(self) -> str:
        """What the commands call the feed: its title, else its URL."""
        return self.title or self.url


@dataclass
class _Fetched:
    """One feed's check before anything is written: what came back, or why nothing did."""

    report: FeedReport
    now: str | None
    result: FetchResult | None = None
    content_hash: str | None = None
    parsed: ParsedFeed | None = None  # None: unchanged (304 or the same bytes)
    failure: FeedError | None = None
    skip: bool = False  # gone, and not retried: nothing to write


def check_feeds(db: Database, wiring: Wiring, *, retry_gone: bool = False) -> list[FeedReport]:
    """Check every configured feed: fetch them all, then record them; a failure never stops the others."""
    settings, fetcher = wiring.settings, wiring.fetcher
    urls = dict.fromkeys(settings.require_feeds())  # a URL listed twice is checked once
    fetched = [_fetch(db, url, fetcher, retry_gone=retry_gone) for url in urls]
    return [_record_contained(db, settings, one) for one in fetched]


def check_feed(db: Database, settings: Settings, url: str, fetcher: Fetcher, *, retry_gone: bool = False) -> FeedReport:
    """Fetch one feed and record its new entries.

    A failure (network, HTTP error, not a feed) is recorded on the feed row
    (``last_status``, ``last_error``) and leaves its entries untouched. A 304,
    or a 200 whose body has the sha256 of the last one stored (a server
    without validators), is not parsed and writes nothing but ``last_checked``
    (and new validators). A 410 marks the feed ``gone``: it is not fetched
    again unless ``retry_gone``. A permanent redirect (301/308)
    makes the new URL the one fetched from now on (``fetch_url``).
    """
    return _record_contained(db, settings, _fetch(db, url, fetcher, retry_gone=retry_gone))


def _fetch(db: Database, url: str, fetcher: Fetcher, *, retry_gone: bool) -> _Fetched:
    """Fetch and parse one feed; reads its row, writes nothing."""
    row = store.peek_feed_row(db, url)  # None for a feed never seen: its row is made when recorded
    report = FeedReport(url=url)
    if row is not None:
        report = FeedReport(url=url, title=row.title, http_status=row.last_status, fetched_from=row.fetch_url)
        if row.status == "gone" and not retry_gone:
            report.status = "gone"
            report.error = f"{row.fetch_url or url}: gone (HTTP 410 by {row.last_checked}); no longer fetched"
            return _Fetched(report, None, skip=True)
    now = store.to_text(store.utcnow())
    try:
        etag, modified, last_hash = (row.etag, row.last_modified, row.content_hash) if row else (None, None, None)
        result = fetcher(report.fetched_from or url, etag=etag, last_modified=modified)
        content_hash = body_hash(result)
        if result.not_modified or (content_hash is not None and content_hash == last_hash):
            return _Fetched(report, now, result, content_hash)
        from digest.feeds import parse_feed  # feedparser loads only for a body that changed

        return _Fetched(report, now, result, content_hash, parse_feed(result))
    except FeedError as exc:
        return _Fetched(report, now, failure=exc)
    except Exception as exc:  # a bug meeting a feed nobody foresaw: this feed fails, the others go on
        return _Fetched(report, now, failure=_unforeseen(url, "read", exc))


# What writing a feed's data can raise that belongs to the data (a number
# SQLite cannot hold, text it cannot encode), not to the database: SQLite's own
# failures (locked, full, damaged) reach the caller as DatabaseError and stop
# the whole check, as they would stop any other.
_DATA_ERRORS = (ValueError, TypeError, OverflowError, LookupError)


def _unforeseen(url: str, doing: str, exc: BaseException) -> FeedError:
    log.debug("feed %s could not be %s", url, doing, exc_info=True)  # the traceback, for a bug report
    return FeedError(
        f"{url}: could not be {doing}: {type(exc).__name__}: {shown(exc)}", hint="-vv logs where; please report it"
    )


def _record_contained(db: Database, settings: Settings, fetched: _Fetched) -> FeedReport:
    """:func:`_record`, with a failure that belongs to this feed's data recorded as the feed's error."""
    try:
        return _record(db, settings, fetched)
    except _DATA_ERRORS as exc:  # its transaction rolled back: the entries are as they were
        failed = _Fetched(fetched.report, fetched.now, failure=_unforeseen(fetched.report.url, "recorded", exc))
        return _record(db, settings, failed)


def _record(db: Database, settings: Settings, fetched: _Fetched) -> FeedReport:
    """Write what one feed's fetch found: its new entries, or its failure, or only the check's time."""
    report, now, exc, url = fetched.report, fetched.now, fetched.failure, fetched.report.url
    if fetched.skip:
        return report
    row = store.feed_row(db, url)  # made now if new: the first write of the check
    if exc is not None:
        status = exc.status if isinstance(exc, FetchError) else "error"
        gone = isinstance(exc, FetchError) and exc.gone
        store.update_feed(
            db,
            row.id,
            last_checked=now,
            last_status=status,
            last_error=str(exc),
            **({"status": "gone"} if gone else {}),
        )
        # Debug only: callers report failures (the CLI prints them, the daemon logs state changes).
        log.debug("feed %s: %s", url, exc)
        report.status, report.error, report.http_status = ("gone" if gone else "error"), str(exc), status
        return report
    result, content_hash, parsed = fetched.result, fetched.content_hash, fetched.parsed
    assert result is not None
    moved = _moved(row, url, result.permanent_redirect)
    if moved:
        report.moved_to = report.fetched_from = moved
    if parsed is None:
        _record_unchanged(db, row, result, now, moved)
        report.status = "not-modified"
        return report
    if parsed.warning:
        log.warning("feed %s is ill-formed but readable: %s", url, parsed.warning)
        report.warning = parsed.warning
    with store.transaction(db):
        # Entries and the validators that vouch for them commit together: a
        # crash between the two must not leave an ETag for unrecorded entries.
        recorded = store.record_entries(db, row.id, parsed.entries, settings.first_run)
        store.update_feed(
            db,
            row.id,
            title=parsed.title,
            site_url=parsed.site_url,
            subtitle=parsed.subtitle,
            language=parsed.language,
            etag=result.etag,
            last_modified=result.last_modified,
            content_hash=content_hash,
            last_checked=now,
            last_status=str(result.status),
            last_error=None,
            status="active",
            **({"fetch_url": moved} if moved else {}),
        )
    if recorded.refreshed:
        log.info("feed %s: %d pending entries changed and were refreshed", url, recorded.refreshed)
    report.title, report.http_status = parsed.title, str(result.status)
    report.first_run, report.skipped, report.refreshed = recorded.first_run, recorded.skipped, recorded.refreshed
    report.elsewhere = recorded.elsewhere
    report.new = store.entries_by_id(db, recorded.new_ids)
    return report


def _record_unchanged(db: Database, row: Feed, result: FetchResult, now: str | None, moved: str | None) -> None:
    """A 304, or a 200 with the bytes last stored: only the check's time (and any new validators) change."""
    changes: dict[str, Any] = {"last_checked": now}
    if row.last_error or row.status != "active":
        changes.update(last_status=str(result.status), last_error=None, status="active")
    if not result.not_modified and (result.etag, result.last_modified) != (row.etag, row.last_modified):
        changes.update(etag=result.etag, last_modified=result.last_modified)  # they vouch for the same bytes
    store.update_feed(db, row.id, **changes, **({"fetch_url": moved} if moved else {}))


def _moved(row: Feed, url: str, permanent_redirect: str | None) -> str | None:
    """The new fetch URL after a permanent redirect, or None when nothing moved."""
    if not permanent_redirect or permanent_redirect == (row.fetch_url or url):
        return None
    log.warning(
        "feed %s moved permanently to %s: fetching from there from now on; update DIGEST_FEED_URL to match",
        url,
        permanent_redirect,
    )
    return permanent_redirect
