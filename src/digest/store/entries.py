"""The entries table: recording what a fetch found, and reading entries back.

An entry is stored once, under its identity key (feeds.py); the first-run
policy decides which entries of a new feed are pending and which are skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from digest.errors import StoreError
from digest.models import Enclosure, Entry, FirstRunPolicy, StoredEntry
from digest.store.connection import guarded, one_row
from digest.store.times import from_text, to_text, utcnow

log = logging.getLogger("digest.store")  # one name for the whole store, as in its log lines before the split


@dataclass(frozen=True)
class Recorded:
    """What ``record_entries`` did with one fetch of a feed."""

    new_ids: tuple[int, ...]  # stored as pending: the next digest holds them
    skipped: int = 0  # stored as already seen by the first-run policy
    refreshed: int = 0  # known, still pending, content changed: stored again
    first_run: bool = False
    elsewhere: int = 0  # new to this feed but already known under another feed: stored as skipped


# Columns refreshed while an entry is still pending (never its key or first_seen).
_REFRESHED = (
    "title",
    "link",
    "author",
    "published",
    "updated",
    "summary_html",
    "content_html",
    "tags",
    "enclosures",
    "language",
)


@guarded
def record_entries(
    db: Database, feed_id: int, entries: Iterable[Entry], policy: FirstRunPolicy, now: datetime | None = None
) -> Recorded:
    """Store the entries not seen before, in one transaction.

    On the feed's first successful check the first-run policy decides which
    of them are pending; the rest are stored as ``skipped``, never sent. A
    known entry is never new again, whatever changed in it; while it is still
    pending its stored content is refreshed, so the digest shows the latest.
    """
    now = now or utcnow()
    with db.atomic():
        first_run = _lock_feed(db, feed_id)
        fresh, refreshed = _match_known(db, feed_id, list(entries))
        # A post already known under another feed (the same blog by another
        # address: a local path, then its URL; http then https; a new host)
        # is never sent again, and does not take a first-run slot.
        known = {n for n, entry in enumerate(fresh) if _known_elsewhere(db, feed_id, entry)}
        unknown = [n for n in range(len(fresh)) if n not in known]
        keep = set(unknown)
        if first_run:
            keep = {unknown[n] for n in _first_run_keep([fresh[n] for n in unknown], policy)}
        new_ids = _insert_fresh(db, feed_id, fresh, keep, now)
        if first_run:
            db.execute("UPDATE feeds SET first_checked = ? WHERE id = ?", [to_text(now), feed_id])
    skipped = len(fresh) - len(new_ids) - len(known)
    return Recorded(tuple(new_ids), skipped, refreshed, first_run, len(known))


def _lock_feed(db: Database, feed_id: int) -> bool:
    """Take the write lock for this fetch's transaction; whether this is the feed's first run."""
    # Write first: the transaction takes the write lock now (waiting out a
    # concurrent writer via busy_timeout) instead of failing to upgrade a
    # read snapshot another process has written past.
    db.execute("UPDATE feeds SET first_checked = first_checked WHERE id = ?", [feed_id])
    feed = one_row(db, "SELECT first_checked FROM feeds WHERE id = ?", [feed_id])
    if feed is None:
        raise StoreError(f"no feed with id {feed_id}")
    return feed["first_checked"] is None


def _match_known(db: Database, feed_id: int, entries: list[Entry]) -> tuple[list[Entry], int]:
    """The entries this feed has not stored yet, and how many stored pending ones were refreshed.

    A stored entry is matched by one entry of the fetch at most; its link key
    follows the feed, and while it is still pending its content does too.
    """
    fresh: list[Entry] = []
    claimed: set[int] = set()
    refreshed = 0
    for entry in entries:
        existing = _find_entry(db, feed_id, entry, claimed)
        if existing is None:
            fresh.append(entry)
            continue
        claimed.add(existing["id"])
        if entry.link_key and existing["link_key"] != entry.link_key:
            db.execute("UPDATE entries SET link_key = ? WHERE id = ?", [entry.link_key, existing["id"]])
        if existing["status"] == "pending" and existing["digest_id"] is None:
            refreshed += _refresh(db, existing, entry)
    return fresh, refreshed


def _insert_fresh(db: Database, feed_id: int, fresh: list[Entry], keep: set[int], now: datetime) -> list[int]:
    """Store ``fresh``: those at the indexes in ``keep`` as pending, the others as skipped; the pending ids."""
    new_ids: list[int] = []
    for index, entry in enumerate(fresh):
        status = "pending" if index in keep else "skipped"
        cursor = db.execute(
            """INSERT INTO entries (feed_id, key, guid, link, title, author, published, updated,
               summary_html, content_html, tags, enclosures, language, first_seen, status, link_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [feed_id, entry.key, entry.guid, *_entry_values(entry)[1:], to_text(now), status, entry.link_key],
        )
        if status == "pending":
            new_ids.append(int(cursor.lastrowid or 0))
    return new_ids


def _known_elsewhere(db: Database, feed_id: int, entry: Entry) -> bool:
    """Whether another feed of this database already holds this entry (same guid, link, or path and title)."""
    if entry.guid and one_row(db, "SELECT 1 AS x FROM entries WHERE guid = ? AND feed_id != ? LIMIT 1",
                           [entry.guid, feed_id]):  # fmt: skip
        return True
    if not entry.link_key:
        return False
    if one_row(db, "SELECT 1 AS x FROM entries WHERE link_key = ? AND feed_id != ? LIMIT 1", [entry.link_key, feed_id]):
        return True
    # A blog that moved host keeps its paths and titles: /2026/05/retries/ titled
    # "Retrying without stampedes" is the same post on either host.
    path = _path_of(entry.link_key)
    if not path:
        return False
    for row in db.query(
        "SELECT link_key FROM entries WHERE title = ? AND feed_id != ? AND link_key IS NOT NULL LIMIT 20",
        [entry.title, feed_id],
    ):
        if _path_of(str(row["link_key"])) == path:
            return True
    return False


def _path_of(link_key: str) -> str:
    """The path and query of a normalised link (``//host/path?q``), without the host."""
    return link_key.removeprefix("//").partition("/")[2]


def _entry_values(entry: Entry) -> list[Any]:
    """The entry's values for ``key`` then the ``_REFRESHED`` columns, as stored."""
    return [entry.key, entry.link, entry.title, entry.author, to_text(entry.published), to_text(entry.updated),
            entry.summary_html, entry.content_html, json.dumps(list(entry.tags)),
            _enclosures_json(entry.enclosures), entry.language]  # fmt: skip


def _refresh(db: Database, existing: dict[str, Any], entry: Entry) -> int:
    """Store the entry's current content over a pending row; 1 if anything changed."""
    _, link, title, author, published, updated, summary, content, tags, enclosures, language = _entry_values(entry)
    current = {"title": title, "link": link, "author": author, "published": published or existing["published"],
               "updated": updated, "summary_html": summary, "content_html": content, "tags": tags,
               "enclosures": enclosures, "language": language}  # fmt: skip
    if all(existing[name] == current[name] for name in _REFRESHED):
        return 0
    assignments = ", ".join(f"{name} = ?" for name in _REFRESHED)
    db.execute(f"UPDATE entries SET {assignments} WHERE id = ?",  # noqa: S608 - fixed column names
               [*(current[name] for name in _REFRESHED), existing["id"]])  # fmt: skip
    return 1


def _find_entry(db: Database, feed_id: int, entry: Entry, claimed: set[int]) -> dict[str, Any] | None:
    """The stored row this entry is, under its key or one of its other identities.

    ``same_title_keys`` match only a row with the entry's title: several
    items now share the link one of them was stored under alone. A row is
    claimed by one entry per fetch at most.
    """
    sql = "SELECT * FROM entries WHERE feed_id = ? AND key = ?"
    for key in (entry.key, *entry.alt_keys):
        row = one_row(db, sql, [feed_id, key])
        if row is not None and row["id"] not in claimed:
            return row
    for key in entry.same_title_keys:
        row = one_row(db, sql, [feed_id, key])
        if row is not None and row["id"] not in claimed and row["title"] == entry.title:
            return row
    if entry.link_key:
        # Last resort: the one entry stored for this page with this title,
        # under another key (the feed's guids changed with a new generator).
        # The title must match too: a feed that reuses one link for each new
        # issue ("/newsletter") must not have its new issues taken for old.
        # Re-keyed so the next fetch finds it directly.
        rows = list(db.query("SELECT * FROM entries WHERE feed_id = ? AND link_key = ? LIMIT 2",
                             [feed_id, entry.link_key]))  # fmt: skip
        if len(rows) == 1 and rows[0]["id"] not in claimed and rows[0]["title"] == entry.title:
            log.info("entry %s was stored as %s; re-keyed", entry.key, rows[0]["key"])
            db.execute("UPDATE entries SET key = ?, guid = ? WHERE id = ?", [entry.key, entry.guid, rows[0]["id"]])
            return rows[0]
    return None


def _first_run_keep(entries: list[Entry], policy: FirstRunPolicy) -> set[int]:
    if policy.kind == "all":
        return set(range(len(entries)))
    if policy.kind == "none":
        return set()
    # Newest by date; undated entries count as oldest, feed order breaks ties
    # (feeds list newest first).
    ranked = sorted(
        range(len(entries)),
        key=lambda i: (entries[i].published or entries[i].updated or datetime.min.replace(tzinfo=UTC), -i),
        reverse=True,
    )
    return set(ranked[: policy.count])


def _enclosures_json(enclosures: Iterable[Enclosure]) -> str:
    return json.dumps([[e.url, e.type, e.length] for e in enclosures])


_ENTRY_SELECT = """
    SELECT entries.*, feeds.title AS feed_title, feeds.site_url AS feed_site_url,
           feeds.subtitle AS feed_subtitle, feeds.language AS feed_language
    FROM entries JOIN feeds ON feeds.id = entries.feed_id
"""


def _stored_entry(row: dict[str, Any]) -> StoredEntry:
    return StoredEntry(
        id=row["id"],
        feed_id=row["feed_id"],
        feed_title=row["feed_title"] or "",
        feed_site_url=row["feed_site_url"],
        key=row["key"],
        title=row["title"],
        link=row["link"],
        author=row["author"],
        published=from_text(row["published"]),
        first_seen=from_text(row["first_seen"]) or utcnow(),
        summary_html=row["summary_html"],
        content_html=row["content_html"],
        tags=tuple(json.loads(row["tags"])),
        enclosures=tuple(Enclosure(u, t, n) for u, t, n in json.loads(row["enclosures"])),
        language=row["language"],
        feed_subtitle=row["feed_subtitle"],
        feed_language=row["feed_language"],
    )


@guarded
def pending_entries(db: Database, limit: int | None = None) -> list[StoredEntry]:
    """Entries waiting for a digest, oldest first so none is starved by a cap."""
    sql = (
        _ENTRY_SELECT
        + """
        WHERE entries.status = 'pending' AND entries.digest_id IS NULL
        ORDER BY COALESCE(entries.published, entries.first_seen), entries.id"""
    )
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_stored_entry(row) for row in db.query(sql, params)]


@guarded
def entries_by_id(db: Database, ids: Iterable[int]) -> list[StoredEntry]:
    """The given entries, newest first (how `digest check` lists what is new)."""
    wanted = list(ids)
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    order = "ORDER BY COALESCE(entries.published, entries.first_seen) DESC, entries.id DESC"
    sql = f"{_ENTRY_SELECT} WHERE entries.id IN ({marks}) {order}"
    return [_stored_entry(row) for row in db.query(sql, wanted)]


@guarded
def pending_count(db: Database) -> int:
    row = db.execute("SELECT COUNT(*) FROM entries WHERE status = 'pending' AND digest_id IS NULL").fetchone()
    return int(row[0])


@guarded
def digest_entries(db: Database, digest_id: int) -> list[StoredEntry]:
    sql = _ENTRY_SELECT + " WHERE entries.digest_id = ? ORDER BY entries.id"
    return [_stored_entry(row) for row in db.query(sql, [digest_id])]
