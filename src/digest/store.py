"""SQLite state via sqlite-utils: feeds, entries, digests and deliveries.

The schema is created and upgraded by numbered migrations recorded in
``PRAGMA user_version``. Connections run in autocommit mode; every multi-step
change happens inside ``db.atomic()``, so a crash leaves either all of a
change or none of it. Subscriber operations live in subscribers.py.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from digest.config import FirstRunPolicy
from digest.errors import StoreError
from digest.models import Enclosure, Entry, StoredEntry, Subscriber

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def to_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# --- schema -----------------------------------------------------------------


def _migration_1(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            title TEXT,
            site_url TEXT,
            etag TEXT,
            last_modified TEXT,
            last_checked TEXT,
            last_status TEXT,
            last_error TEXT,
            status TEXT NOT NULL DEFAULT 'active',      -- active | gone
            first_checked TEXT                           -- first successful parse
        );
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            subject TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',      -- pending | sending | sent | failed
            html TEXT NOT NULL,
            text TEXT NOT NULL,
            entry_count INTEGER NOT NULL,
            started_at TEXT,
            finished_at TEXT
        );
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            key TEXT NOT NULL,
            guid TEXT,
            link TEXT,
            title TEXT NOT NULL,
            author TEXT,
            published TEXT,
            updated TEXT,
            summary_html TEXT NOT NULL DEFAULT '',
            content_html TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            enclosures TEXT NOT NULL DEFAULT '[]',
            first_seen TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',      -- pending | skipped | digested
            digest_id INTEGER REFERENCES digests(id),
            UNIQUE (feed_id, key)
        );
        CREATE INDEX entries_pending ON entries(status, digest_id);
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT,
            status TEXT NOT NULL DEFAULT 'active',       -- active | unsubscribed | bounced
            token TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            source TEXT
        );
        CREATE INDEX subscribers_status ON subscribers(status, id);
        CREATE TABLE deliveries (
            digest_id INTEGER NOT NULL REFERENCES digests(id),
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            status TEXT NOT NULL,                        -- sent | failed
            attempts INTEGER NOT NULL DEFAULT 1,
            last_error TEXT,
            message_id TEXT,
            sent_at TEXT,
            PRIMARY KEY (digest_id, subscriber_id)
        );
        """
    )


MIGRATIONS: tuple[Callable[[Database], None], ...] = (_migration_1,)


def _migrate(db: Database) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {version} is newer than this digest understands ({len(MIGRATIONS)})",
            hint="upgrade digest",
        )
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        with db.atomic():
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")
        log.debug("database migrated to schema version %d", number)


def _configure(conn: sqlite3.Connection) -> Database:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    db = Database(conn, execute_plugins=False)
    _migrate(db)
    return db


def open_db(path: Path) -> Database:
    """Open (creating when absent) and migrate the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across process crashes in WAL mode; only a power
        # cut can lose the last commits, which the send log tolerates.
        conn.execute("PRAGMA synchronous = NORMAL")
        return _configure(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror}") from None


def open_snapshot(path: Path) -> Database:
    """An in-memory copy of the database at ``path`` (empty when it does not exist).

    Dry runs work on this copy so the real file stays byte-for-byte unchanged.
    """
    memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    if path.exists():
        try:
            source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                source.backup(memory)
            finally:
                source.close()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read database {path}: {exc}") from None
    return _configure(memory)


# --- feeds ------------------------------------------------------------------


def feed_row(db: Database, url: str) -> dict[str, Any]:
    """The feed row for ``url``, created on first sight."""
    db.execute("INSERT OR IGNORE INTO feeds (url) VALUES (?)", [url])
    row = next(db.query("SELECT * FROM feeds WHERE url = ?", [url]))
    return row


def update_feed(db: Database, feed_id: int, **fields: Any) -> None:
    if not fields:
        return
    assignments = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE feeds SET {assignments} WHERE id = ?", [*fields.values(), feed_id])  # noqa: S608


# --- entries ----------------------------------------------------------------


def record_entries(
    db: Database, feed_id: int, entries: Iterable[Entry], policy: FirstRunPolicy, now: datetime | None = None
) -> list[int]:
    """Store entries not seen before; return the ids of those that are new and pending.

    On the feed's first successful check the first-run policy decides which of
    them are pending; the rest are stored as ``skipped`` so they are never sent.
    An entry seen again keeps its identity; if it has not been sent yet its
    stored content is refreshed.
    """
    now = now or utcnow()
    entries = list(entries)
    with db.atomic():
        feed = next(db.query("SELECT first_checked FROM feeds WHERE id = ?", [feed_id]))
        first_run = feed["first_checked"] is None
        fresh: list[Entry] = []
        for entry in entries:
            existing = _find_entry(db, feed_id, entry)
            if existing is None:
                fresh.append(entry)
            elif existing["status"] == "pending":
                db.execute(
                    """UPDATE entries SET title = ?, link = ?, author = ?, updated = ?, summary_html = ?,
                       content_html = ?, tags = ?, enclosures = ? WHERE id = ?""",
                    [entry.title, entry.link, entry.author, to_text(entry.updated), entry.summary_html,
                     entry.content_html, json.dumps(entry.tags), _enclosures_json(entry.enclosures),
                     existing["id"]],
                )  # fmt: skip
        keep = _first_run_keep(fresh, policy) if first_run else set(range(len(fresh)))
        new_ids: list[int] = []
        for index, entry in enumerate(fresh):
            status = "pending" if index in keep else "skipped"
            cursor = db.execute(
                """INSERT INTO entries (feed_id, key, guid, link, title, author, published, updated,
                   summary_html, content_html, tags, enclosures, first_seen, status)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [feed_id, entry.key, entry.guid, entry.link, entry.title, entry.author,
                 to_text(entry.published), to_text(entry.updated), entry.summary_html,
                 entry.content_html, json.dumps(entry.tags), _enclosures_json(entry.enclosures),
                 to_text(now), status],
            )  # fmt: skip
            if status == "pending":
                new_ids.append(int(cursor.lastrowid or 0))
        if first_run:
            db.execute("UPDATE feeds SET first_checked = ? WHERE id = ?", [to_text(now), feed_id])
    return new_ids


def _find_entry(db: Database, feed_id: int, entry: Entry) -> dict[str, Any] | None:
    for key in (entry.key, *entry.alt_keys):
        rows = list(db.query("SELECT id, status FROM entries WHERE feed_id = ? AND key = ?", [feed_id, key]))
        if rows:
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
    SELECT entries.*, feeds.title AS feed_title, feeds.site_url AS feed_site_url
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
    )


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


def pending_count(db: Database) -> int:
    row = db.execute("SELECT COUNT(*) FROM entries WHERE status = 'pending' AND digest_id IS NULL").fetchone()
    return int(row[0])


def digest_entries(db: Database, digest_id: int) -> list[StoredEntry]:
    sql = _ENTRY_SELECT + " WHERE entries.digest_id = ? ORDER BY entries.id"
    return [_stored_entry(row) for row in db.query(sql, [digest_id])]


# --- digests and deliveries ---------------------------------------------------


def create_digest(db: Database, subject: str, html: str, text: str, entry_ids: Iterable[int]) -> int:
    """Insert a pending digest and assign its entries, in one transaction.

    Raises StoreError if any entry was assigned elsewhere meanwhile, so an
    entry can never end up in two digests.
    """
    ids = list(entry_ids)
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO digests (created, subject, status, html, text, entry_count) VALUES (?, ?, 'pending', ?, ?, ?)",
            [to_text(utcnow()), subject, html, text, len(ids)],
        )
        digest_id = int(cursor.lastrowid or 0)
        for entry_id in ids:
            changed = db.execute(
                "UPDATE entries SET digest_id = ?, status = 'digested' WHERE id = ? AND digest_id IS NULL",
                [digest_id, entry_id],
            ).rowcount
            if changed != 1:
                raise StoreError(f"entry {entry_id} was assigned to another digest meanwhile")
    return digest_id


def unfinished_digests(db: Database) -> list[dict[str, Any]]:
    """Digests created but not completely sent, oldest first."""
    return list(db.query("SELECT * FROM digests WHERE status IN ('pending', 'sending') ORDER BY id"))


def set_digest_status(db: Database, digest_id: int, status: str) -> None:
    now = to_text(utcnow())
    if status == "sending":
        db.execute(
            "UPDATE digests SET status = ?, started_at = COALESCE(started_at, ?) WHERE id = ?",
            [status, now, digest_id],
        )
    elif status in ("sent", "failed"):
        db.execute("UPDATE digests SET status = ?, finished_at = ? WHERE id = ?", [status, now, digest_id])
    else:
        db.execute("UPDATE digests SET status = ? WHERE id = ?", [status, digest_id])


def last_digest_time(db: Database) -> datetime | None:
    row = db.execute("SELECT MAX(created) FROM digests").fetchone()
    return from_text(row[0])


def undelivered_subscribers(db: Database, digest_id: int, batch: int = 500) -> Iterator[Subscriber]:
    """Active subscribers without a successful delivery of ``digest_id``, streamed.

    Keyset pagination reads one batch at a time, so a million subscribers never
    sit in memory, and each batch re-reads status: an address unsubscribed
    during a long send is skipped from the next batch on.
    """
    last_id = 0
    while True:
        rows = list(
            db.query(
                """SELECT s.id, s.email, s.name, s.status, s.token FROM subscribers s
                   WHERE s.status = 'active' AND s.id > ?
                     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = ?
                                     AND d.subscriber_id = s.id AND d.status = 'sent')
                   ORDER BY s.id LIMIT ?""",
                [last_id, digest_id, batch],
            )
        )
        if not rows:
            return
        for row in rows:
            yield Subscriber(**row)
        last_id = rows[-1]["id"]


def record_delivery(
    db: Database,
    digest_id: int,
    subscriber_id: int,
    *,
    status: str,
    attempts: int,
    message_id: str | None,
    error: str | None = None,
) -> None:
    """Commit one delivery outcome at once (autocommit): the resume checkpoint."""
    db.execute(
        """INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, last_error, message_id, sent_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (digest_id, subscriber_id) DO UPDATE SET status = excluded.status,
             attempts = deliveries.attempts + excluded.attempts, last_error = excluded.last_error,
             message_id = excluded.message_id, sent_at = excluded.sent_at""",
        [digest_id, subscriber_id, status, attempts, error, message_id,
         to_text(utcnow()) if status == "sent" else None],
    )  # fmt: skip


def delivery_counts(db: Database, digest_id: int) -> dict[str, int]:
    counts = {"sent": 0, "failed": 0}
    for row in db.query(
        "SELECT status, COUNT(*) AS n FROM deliveries WHERE digest_id = ? GROUP BY status", [digest_id]
    ):
        counts[row["status"]] = row["n"]
    return counts
