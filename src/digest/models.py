"""Plain data passed between pipeline stages: no I/O, no behaviour beyond views."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

# The subscriber statuses, and the columns of `digest subscribers export`.
# Here, not in subscribers.py, so the CLI can build its options without
# importing the database layer.
# "pending": signed up on the web form, not confirmed yet; never sent a digest.
# The export carries the consent record: where the address came from
# (source: form, cli, import:<file>), when it signed up (created) and when it
# confirmed its address (confirmed; empty for owner-added addresses).
# The largest number an SQLite INTEGER holds: an id or a length from outside past it is none.
SQLITE_MAX_INTEGER = 2**63 - 1

STATUSES = ("active", "pending", "unsubscribed", "bounced")
# How an address became unsubscribed or bounced (subscribers.unsubscribe_reason):
# one-click (List-Unsubscribe, or the /unsubscribe page's button), page (the
# subscriber's page), cli (`digest subscribers remove`), import (an export that
# said so), bounce, complaint. NULL on rows unsubscribed before reasons were
# recorded: unknown, so treated as not self-made.
UNSUBSCRIBE_REASONS = ("one-click", "page", "cli", "import", "bounce", "complaint")
SELF_UNSUBSCRIBED = ("one-click", "page")
EXPORT_FIELDS = ("email", "name", "status", "created", "updated", "source", "confirmed")


@dataclass(frozen=True)
class FirstRunPolicy:
    """What the first digest of a newly seen feed may contain (DIGEST_FIRST_RUN)."""

    kind: Literal["latest", "all", "none"]
    count: int = 0

    def __str__(self) -> str:
        return f"latest:{self.count}" if self.kind == "latest" else self.kind


@dataclass(frozen=True)
class Enclosure:
    url: str
    type: str = ""
    length: int | None = None


@dataclass(frozen=True)
class Entry:
    """One feed item, normalised. ``key`` is its stable identity within its feed."""

    key: str
    title: str
    link: str | None = None
    guid: str | None = None
    author: str | None = None
    published: datetime | None = None  # aware, UTC
    updated: datetime | None = None
    summary_html: str = ""
    content_html: str = ""
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    alt_keys: tuple[str, ...] = ()  # other identities this entry may be stored under
    same_title_keys: tuple[str, ...] = ()  # identities it may be stored under if the stored title matches
    link_key: str | None = None  # normalised link, when no other item of the feed shares it
    language: str | None = None  # the item's own language (xml:lang, dc:language), when it differs from the feed's


@dataclass(frozen=True)
class ParsedFeed:
    url: str
    title: str
    site_url: str | None
    entries: tuple[Entry, ...]
    warning: str | None = None  # feedparser's bozo reason when entries were still read
    subtitle: str | None = None  # Atom <subtitle>, RSS channel <description>: one line of text
    language: str | None = None  # RSS <language>, Atom xml:lang on <feed>


@dataclass(frozen=True)
class StoredEntry:
    """An entry as the database holds it, with the feed it came from."""

    id: int
    feed_id: int
    feed_title: str
    feed_site_url: str | None
    key: str
    title: str
    link: str | None
    author: str | None
    published: datetime | None
    first_seen: datetime
    summary_html: str
    content_html: str
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None  # the entry's own language, when it differs from its feed's
    feed_subtitle: str | None = None
    feed_language: str | None = None

    @property
    def sort_time(self) -> datetime:
        return self.published or self.first_seen


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    status: str
    token: str
    bounce_score: float = 0.0
    unsubscribe_reason: str | None = None  # how they left: one of UNSUBSCRIBE_REASONS, or None

    @property
    def left_by_themselves(self) -> bool:
        """Unsubscribed from a link in an email: the only state the subscriber's page can undo."""
        return self.status == "unsubscribed" and self.unsubscribe_reason in SELF_UNSUBSCRIBED


@dataclass(frozen=True)
class SubscriberRecord:
    """A subscriber as `digest subscribers list` and `export` show it."""

    id: int
    email: str
    name: str | None
    status: str
    created: str  # ISO 8601, as stored
    updated: str
    source: str | None
    confirmed: str | None  # when the address confirmed a web sign-up; None for owner-added ones

    def export_values(self) -> dict[str, object]:
        """The EXPORT_FIELDS columns, in order."""
        return {name: getattr(self, name) for name in EXPORT_FIELDS}


@dataclass(frozen=True)
class Digest:
    """A rendered digest: HTML already inlined, with personal placeholders left in."""

    subject: str
    html: str
    text: str
    entry_ids: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())  # e.g. "2 entries shortened to fit"
    placeholder_nonce: str = ""  # placeholders.Placeholders: which strings are personal


# --- rows the store returns (times as stored: ISO 8601 text in UTC) ---------------------


@dataclass(frozen=True)
class Feed:
    """A feed the database knows: named by its configured URL, fetched from ``fetch_url`` once it moved."""

    id: int
    url: str
    title: str | None
    site_url: str | None
    etag: str | None
    last_modified: str | None
    last_checked: str | None
    last_status: str | None
    last_error: str | None
    status: str  # active | gone | removed
    first_checked: str | None
    fetch_url: str | None
    content_hash: str | None  # sha256 of the last body parsed and stored (fetch.body_hash)


@dataclass(frozen=True)
class FeedStatus(Feed):
    """A feed with how many of its entries wait for a digest (`digest status`)."""

    pending: int


@dataclass(frozen=True)
class FeedOverview:
    """A feed with its entry counts (`digest feeds list`)."""

    id: int
    url: str
    fetch_url: str | None
    title: str | None
    status: str
    last_checked: str | None
    last_status: str | None
    last_error: str | None
    entries: int
    pending: int
    in_digests: int


@dataclass(frozen=True)
class StoredDigest:
    """A digest as recorded: its rendered parts, with the personal placeholders left in."""

    id: int
    created: str
    subject: str
    status: str  # pending | sending | sent | failed
    html: str
    text: str
    entry_count: int
    started_at: str | None
    finished_at: str | None
    placeholder_nonce: str | None  # None: a digest from before random placeholders


@dataclass(frozen=True)
class FailedDelivery:
    """A failed or deferred delivery, with the server's last reply."""

    email: str
    status: str  # failed | deferred
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class DigestSummary:
    """A recent digest with its delivery counts by status (`digest status`)."""

    id: int
    created: str
    subject: str
    status: str
    entry_count: int
    started_at: str | None
    finished_at: str | None
    sent: int
    failed: int
    deferred: int
    pending: int = 0  # what an unfinished digest still owes
    failures: tuple[FailedDelivery, ...] = ()


@dataclass(frozen=True)
class BounceRecord:
    """A recorded bounce or complaint, with its subscriber's state now (`digest bounces list`)."""

    received: str
    email: str
    kind: str  # hard | soft | complaint
    status_code: str | None
    diagnostic: str
    digest_id: int | None
    source: str
    subscriber_status: str
    bounce_score: float


@dataclass(frozen=True)
class DigestRates:
    """Messages of a digest accepted, and bounces and complaints traced to it."""

    id: int
    subject: str
    sent: int
    bounces: int
    complaints: int
