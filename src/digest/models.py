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
STATUSES = ("active", "pending", "unsubscribed", "bounced")
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


@dataclass(frozen=True)
class Digest:
    """A rendered digest: HTML already inlined, with personal placeholders left in."""

    subject: str
    html: str
    text: str
    entry_ids: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())  # e.g. "2 entries shortened to fit"
    placeholder_nonce: str = ""  # placeholders.Placeholders: which strings are personal


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber an import adds (with the status the file gives: an import keeps everyone's choice)."""

    email: str
    name: str | None
    status: str
    created: str  # ISO 8601, as stored
    updated: str
    source: str
    unsubscribe_reason: str | None = None


@dataclass(frozen=True)
class StatusChange:
    """An active subscriber an import marks as having left (the file says they unsubscribed or bounced)."""

    email: str
    status: str
    reason: str | None
    updated: str  # ISO 8601, as stored
