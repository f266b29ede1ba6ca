"""SQLite state via sqlite-utils: feeds, entries, digests and deliveries.

The schema is created and upgraded by numbered migrations recorded in
``PRAGMA user_version``. Connections run in autocommit mode; every multi-step
change happens inside ``db.atomic()``, so a crash leaves either all of a
change or none of it. Subscriber operations live in subscribers.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from digest.config import FirstRunPolicy
from digest.errors import InputError, StoreError
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
            status TEXT NOT NULL DEFAULT 'active',      -- active | gone | removed (digest feeds remove)
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


def _migration_2(db: Database) -> None:
    # Small facts outside the main tables, e.g. when the daemon last ran a
    # scheduled send (even one with nothing new, which creates no digest row).
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _migration_3(db: Database) -> None:
    # A feed that moved for good (301/308) keeps its row, named by the URL in
    # DIGEST_FEED_URL, and is fetched from here until the configuration names
    # the new URL (feed_row then adopts the row).
    db.execute("ALTER TABLE feeds ADD COLUMN fetch_url TEXT")
    # The normalised link of an entry that was alone on its link: it finds the
    # entry again when the feed changes its guids (a new blog generator).
    db.execute("ALTER TABLE entries ADD COLUMN link_key TEXT")
    db.execute("CREATE INDEX entries_link_key ON entries(feed_id, link_key)")


def _migration_digest_placeholders(db: Database) -> None:
    # The random nonce of a digest's personal placeholders (placeholders.py):
    # a resumed send fills in the same strings. NULL: a digest from before, with the fixed ones.
    db.execute("ALTER TABLE digests ADD COLUMN placeholder_nonce TEXT")


def _migration_cross_feed_identity(db: Database) -> None:
    # An entry is known by its guid or normalised link across every feed of
    # the database (a feed read by another address is the same feed), and a
    # feed the owner removed keeps its history under status 'removed'.
    db.execute("CREATE INDEX entries_guid ON entries(guid)")
    db.execute("CREATE INDEX entries_link_key_any ON entries(link_key)")
    db.execute("CREATE INDEX entries_title ON entries(title)")


def _migration_retry_schedule(db: Database) -> None:
    # A deferred delivery waits for its next_attempt (spaced so greylisting
    # passes) and fails for good once it has been deferred for DIGEST_RETRY_FOR.
    db.execute("ALTER TABLE deliveries ADD COLUMN next_attempt TEXT")
    db.execute("ALTER TABLE deliveries ADD COLUMN first_deferred TEXT")
    db.execute("ALTER TABLE deliveries ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX deliveries_retry ON deliveries(status, next_attempt)")


def _migration_bounces(db: Database) -> None:
    # Every bounce and complaint, kept so the owner can see and undo decisions
    # (bouncestore.py). ``message_key`` makes processing the same mail twice a no-op.
    db.executescript(
        """
        CREATE TABLE bounces (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            digest_id INTEGER REFERENCES digests(id),
            kind TEXT NOT NULL,                          -- hard | soft | complaint
            status_code TEXT,
            diagnostic TEXT NOT NULL DEFAULT '',
            received TEXT NOT NULL,
            source TEXT NOT NULL,                        -- smtp | maildir | mbox | imap | stdin
            message_key TEXT,
            counted INTEGER NOT NULL DEFAULT 0,          -- added to the score (once a day at most)
            UNIQUE (subscriber_id, message_key)
        );
        CREATE INDEX bounces_subscriber ON bounces(subscriber_id, received);
        ALTER TABLE subscribers ADD COLUMN bounce_score REAL NOT NULL DEFAULT 0;
        ALTER TABLE subscribers ADD COLUMN unsubscribe_reason TEXT;
        """
    )


MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_digest_placeholders,
    _migration_cross_feed_identity,
    _migration_retry_schedule,
    _migration_bounces,
)


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


def _configure(conn: sqlite3.Connection, *pragmas: str) -> Database:
    """The migrated Database over ``conn``; ``conn`` is closed if that fails."""
    try:
        for pragma in (*pragmas, "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 10000"):
            conn.execute(pragma)
        db = Database(conn, execute_plugins=False)
        _migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


def open_db(path: Path) -> Database:
    """Open (creating when absent) and migrate the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # NORMAL is durable across process crashes in WAL mode; only a power
        # cut can lose the last commits, which the send log tolerates.
        return _configure(conn, "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror}") from None


def sqlite_hint(exc: sqlite3.Error, path: Path | None = None) -> str:
    """What to do about a SQLite error, by its cause (a damaged file is not fixed by running again)."""
    text = str(exc).lower()
    where = f" {path}" if path else ""
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return (f"the database file{where} is damaged; running again will not fix it: restore a backup, "
                "or move the file aside to start afresh (subscribers are lost unless exported)")  # fmt: skip
    if "full" in text:
        return "the disk is full: free some space, then run it again (what was recorded is kept)"
    if "locked" in text or "busy" in text:
        return "another process is writing to the database; run it again when it has finished"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"check that the database{where} and its folder are writable by this user"
    return "what was already recorded is kept; run it again"


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[None]:
    """A transaction that takes the write lock first (BEGIN IMMEDIATE).

    A deferred transaction that reads and then writes while another process
    writes gets "database is locked" at once, without busy_timeout's wait;
    taking the lock first waits like every other command.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.rollback()
        raise
    db.execute("COMMIT")


@contextlib.contextmanager
def opened(path: Path, *, snapshot: bool = False) -> Iterator[Database]:
    """The database at ``path`` (or an in-memory snapshot of it) for one command, closed after."""
    db = open_snapshot(path) if snapshot else open_db(path)
    try:
        yield db
    finally:
        db.close()


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
            memory.close()
            raise StoreError(f"cannot read database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
    return _configure(memory)


# --- feeds ------------------------------------------------------------------


def feed_row(db: Database, url: str) -> dict[str, Any]:
    """The feed row for the configured ``url``, created on first sight.

    A feed is named by the URL in DIGEST_FEED_URL, even after it moved
    (``fetch_url`` then says where it is fetched from). When the configuration
    is changed to name the new URL, this adopts the old row, so the feed keeps
    its entries and is not treated as new (which would re-send its latest posts).
    """
    row = _one(db, "SELECT * FROM feeds WHERE url = ?", [url])
    if row is not None and row["status"] == "removed":
        # Configured again after `digest feeds remove`: its history still counts.
        db.execute("UPDATE feeds SET status = 'active' WHERE id = ?", [row["id"]])
        row["status"] = "active"
    if row is not None:
        return row
    with db.atomic():
        moved = _one(db, "SELECT * FROM feeds WHERE fetch_url = ? ORDER BY id LIMIT 1", [url])
        if moved is not None:
            db.execute("UPDATE feeds SET url = ?, fetch_url = NULL WHERE id = ?", [url, moved["id"]])
            log.info("feed %s is now configured by its new URL %s", moved["url"], url)
        else:
            db.execute("INSERT OR IGNORE INTO feeds (url) VALUES (?)", [url])  # a concurrent check may win
    row = _one(db, "SELECT * FROM feeds WHERE url = ?", [url])
    assert row is not None
    return row


def update_feed(db: Database, feed_id: int, **fields: Any) -> None:
    if not fields:
        return
    assignments = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE feeds SET {assignments} WHERE id = ?", [*fields.values(), feed_id])  # noqa: S608


def feed_rows(db: Database) -> list[dict[str, Any]]:
    """Every feed with its pending-entry count, for `digest status`."""
    return list(
        db.query(
            """SELECT feeds.*, (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id
                                AND e.status = 'pending' AND e.digest_id IS NULL) AS pending
               FROM feeds WHERE status != 'removed' ORDER BY id"""
        )
    )


def feeds_overview(db: Database, *, include_removed: bool = False) -> list[dict[str, Any]]:
    """Every feed with its entry counts (all, pending, sent in a digest), for `digest feeds list`."""
    where = "" if include_removed else "WHERE status != 'removed'"
    return list(
        db.query(
            f"""SELECT feeds.id, url, fetch_url, title, status, last_checked, last_status, last_error,
                  (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id) AS entries,
                  (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id
                     AND e.status = 'pending' AND e.digest_id IS NULL) AS pending,
                  (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id AND e.digest_id IS NOT NULL) AS in_digests
               FROM feeds {where} ORDER BY id"""  # noqa: S608 - a fixed clause
        )
    )


def remove_feed(db: Database, url: str) -> tuple[str, int]:
    """Forget the feed named ``url``: ``("deleted" | "removed", pending entries dropped)``.

    A feed that never recorded an entry is deleted. Otherwise its pending
    entries (not yet in any digest) are dropped and the row is kept as
    ``removed``: the entries it already sent or skipped still stop the same
    posts being sent again under another address, and configuring the URL
    again brings it back without a first run. InputError when there is no such feed.
    """
    with db.atomic():
        row = _one(db, "SELECT id FROM feeds WHERE url = ? AND status != 'removed'", [url])
        if row is None:
            raise InputError(f"no feed {url!r} in this database", hint="see `digest feeds list`")
        dropped = db.execute(
            "DELETE FROM entries WHERE feed_id = ? AND status = 'pending' AND digest_id IS NULL", [row["id"]]
        ).rowcount
        left = db.execute("SELECT COUNT(*) FROM entries WHERE feed_id = ?", [row["id"]]).fetchone()[0]
        if left == 0:
            db.execute("DELETE FROM feeds WHERE id = ?", [row["id"]])
            return "deleted", dropped
        db.execute("UPDATE feeds SET status = 'removed', fetch_url = NULL WHERE id = ?", [row["id"]])
        return "removed", dropped


def move_feed(db: Database, old: str, new: str) -> None:
    """Name the feed ``old`` by ``new`` from now on, keeping its entries (so no first run happens).

    An empty row already named ``new`` (a check that failed) is replaced; one
    with entries is refused: both feeds have history, and entries seen under
    either are never sent again anyway. InputError on a refusal.
    """
    with db.atomic():
        row = _one(db, "SELECT id FROM feeds WHERE url = ?", [old])
        if row is None:
            raise InputError(f"no feed {old!r} in this database", hint="see `digest feeds list`")
        target = _one(db, "SELECT id FROM feeds WHERE url = ?", [new])
        if target is not None:
            used = db.execute("SELECT COUNT(*) FROM entries WHERE feed_id = ?", [target["id"]]).fetchone()[0]
            if used:
                raise InputError(
                    f"{new!r} is already a feed with {used} entries",
                    hint="remove one with `digest feeds remove URL`; a post seen under either is never sent twice",
                )
            db.execute("DELETE FROM feeds WHERE id = ?", [target["id"]])
        # The validators and any redirect belonged to the old address.
        db.execute(
            """UPDATE feeds SET url = ?, fetch_url = NULL, etag = NULL, last_modified = NULL, status = 'active'
               WHERE id = ?""",
            [new, row["id"]],
        )


def _one(db: Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    return next(iter(db.query(sql, params)), None)


# --- entries ----------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What ``record_entries`` did with one fetch of a feed."""

    new_ids: tuple[int, ...]  # stored as pending: the next digest holds them
    skipped: int = 0  # stored as already seen by the first-run policy
    refreshed: int = 0  # known, still pending, content changed: stored again
    first_run: bool = False
    elsewhere: int = 0  # new to this feed but already known under another feed: stored as skipped


# Columns refreshed while an entry is still pending (never its key or first_seen).
_REFRESHED = ("title", "link", "author", "published", "updated", "summary_html", "content_html", "tags", "enclosures")


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
    entries = list(entries)
    with db.atomic():
        # Write first: the transaction takes the write lock now (waiting out a
        # concurrent writer via busy_timeout) instead of failing to upgrade a
        # read snapshot another process has written past.
        db.execute("UPDATE feeds SET first_checked = first_checked WHERE id = ?", [feed_id])
        feed = _one(db, "SELECT first_checked FROM feeds WHERE id = ?", [feed_id])
        if feed is None:
            raise StoreError(f"no feed with id {feed_id}")
        first_run = feed["first_checked"] is None
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
        # A post already known under another feed (the same blog by another
        # address: a local path, then its URL; http then https; a new host)
        # is never sent again, and does not take a first-run slot.
        known = {n for n, entry in enumerate(fresh) if _known_elsewhere(db, feed_id, entry)}
        unknown = [n for n in range(len(fresh)) if n not in known]
        keep = set(unknown)
        if first_run:
            keep = {unknown[n] for n in _first_run_keep([fresh[n] for n in unknown], policy)}
        new_ids: list[int] = []
        for index, entry in enumerate(fresh):
            status = "pending" if index in keep else "skipped"
            cursor = db.execute(
                """INSERT INTO entries (feed_id, key, guid, link, title, author, published, updated,
                   summary_html, content_html, tags, enclosures, first_seen, status, link_key)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [feed_id, entry.key, entry.guid, *_entry_values(entry)[1:], to_text(now), status, entry.link_key],
            )
            if status == "pending":
                new_ids.append(int(cursor.lastrowid or 0))
        if first_run:
            db.execute("UPDATE feeds SET first_checked = ? WHERE id = ?", [to_text(now), feed_id])
    skipped = len(fresh) - len(new_ids) - len(known)
    return Recorded(tuple(new_ids), skipped, refreshed, first_run, len(known))


def _known_elsewhere(db: Database, feed_id: int, entry: Entry) -> bool:
    """Whether another feed of this database already holds this entry (same guid, link, or path and title)."""
    if entry.guid and _one(db, "SELECT 1 AS x FROM entries WHERE guid = ? AND feed_id != ? LIMIT 1",
                           [entry.guid, feed_id]):  # fmt: skip
        return True
    if not entry.link_key:
        return False
    if _one(db, "SELECT 1 AS x FROM entries WHERE link_key = ? AND feed_id != ? LIMIT 1", [entry.link_key, feed_id]):
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
            _enclosures_json(entry.enclosures)]  # fmt: skip


def _refresh(db: Database, existing: dict[str, Any], entry: Entry) -> int:
    """Store the entry's current content over a pending row; 1 if anything changed."""
    _, link, title, author, published, updated, summary, content, tags, enclosures = _entry_values(entry)
    current = {"title": title, "link": link, "author": author, "published": published or existing["published"],
               "updated": updated, "summary_html": summary, "content_html": content, "tags": tags,
               "enclosures": enclosures}  # fmt: skip
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
        row = _one(db, sql, [feed_id, key])
        if row is not None and row["id"] not in claimed:
            return row
    for key in entry.same_title_keys:
        row = _one(db, sql, [feed_id, key])
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


def entries_by_id(db: Database, ids: Iterable[int]) -> list[StoredEntry]:
    """The given entries, newest first (how `digest check` lists what is new)."""
    wanted = list(ids)
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    order = "ORDER BY COALESCE(entries.published, entries.first_seen) DESC, entries.id DESC"
    sql = f"{_ENTRY_SELECT} WHERE entries.id IN ({marks}) {order}"
    return [_stored_entry(row) for row in db.query(sql, wanted)]


def pending_count(db: Database) -> int:
    row = db.execute("SELECT COUNT(*) FROM entries WHERE status = 'pending' AND digest_id IS NULL").fetchone()
    return int(row[0])


def digest_entries(db: Database, digest_id: int) -> list[StoredEntry]:
    sql = _ENTRY_SELECT + " WHERE entries.digest_id = ? ORDER BY entries.id"
    return [_stored_entry(row) for row in db.query(sql, [digest_id])]


# --- digests and deliveries ---------------------------------------------------


def create_digest(
    db: Database, subject: str, html: str, text: str, entry_ids: Iterable[int], placeholder_nonce: str = ""
) -> int:
    """Insert a pending digest and assign its entries, in one transaction.

    Raises StoreError if any entry was assigned elsewhere meanwhile, so an
    entry can never end up in two digests.
    """
    ids = list(entry_ids)
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO digests (created, subject, status, html, text, entry_count, placeholder_nonce)"
            " VALUES (?, ?, 'pending', ?, ?, ?, ?)",
            [to_text(utcnow()), subject, html, text, len(ids), placeholder_nonce or None],
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


def digest_row(db: Database, digest_id: int | None = None) -> dict[str, Any] | None:
    """Digest ``digest_id``, or the latest one that has started going out; None when there is none."""
    if digest_id is not None:
        return _one(db, "SELECT * FROM digests WHERE id = ?", [digest_id])
    return _one(db, "SELECT * FROM digests WHERE status IN ('sending', 'sent') ORDER BY id DESC LIMIT 1", [])


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


def get_state(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def set_state(db: Database, key: str, value: str) -> None:
    db.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               [key, value])  # fmt: skip


def last_digest_activity(db: Database) -> list[datetime]:
    """When the latest digest was created and when the latest one finished (those known)."""
    row = db.execute("SELECT MAX(created), MAX(finished_at) FROM digests").fetchone()
    return [moment for moment in map(from_text, row) if moment is not None]


def last_feed_check(db: Database) -> datetime | None:
    return from_text(db.execute("SELECT MAX(last_checked) FROM feeds").fetchone()[0])


# An active subscriber still owed digest ``:digest``: no delivery row, or a
# deferred one; ``sent`` and ``failed`` (permanent) rows are final.
_OWED = """s.status = 'active' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = :digest
           AND d.subscriber_id = s.id AND d.status IN ('sent', 'failed'))"""
# Owed and due now: a deferred delivery waits for its next_attempt.
_DUE = """s.status = 'active' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = :digest
          AND d.subscriber_id = s.id AND (d.status IN ('sent', 'failed')
          OR (d.status = 'deferred' AND d.next_attempt > :now)))"""

# Waits between deliveries deferred on successive runs: greylisting (which
# typically asks for 1 to 15 minutes) passes on the first or second retry, a
# server down for hours is tried a few times an hour, then every few hours.
RETRY_SPACING = (60, 300, 900, 3600, 7200, 14400, 28800)


def undelivered_subscribers(
    db: Database, digest_id: int, batch: int = 500, *, now: datetime | None = None
) -> Iterator[Subscriber]:
    """Active subscribers still owed ``digest_id``, streamed.

    Owed: no delivery row, or a ``deferred`` one (temporary failures) whose
    next attempt is due by ``now`` (default: now). ``sent`` and ``failed``
    (permanent) rows are final.
    Keyset pagination reads one batch at a time, so a million subscribers never
    sit in memory, and each batch re-reads status: an address unsubscribed
    during a long send is skipped from the next batch on.
    """
    due = to_text(now or utcnow())
    last_id = 0
    while True:
        rows = list(
            db.query(
                f"""SELECT s.id, s.email, s.name, s.status, s.token FROM subscribers s
                    WHERE {_DUE} AND s.id > :last_id ORDER BY s.id LIMIT :batch""",  # noqa: S608 - fixed text
                {"digest": digest_id, "last_id": last_id, "batch": batch, "now": due},
            )
        )
        if not rows:
            return
        for row in rows:
            yield Subscriber(**row)
        last_id = rows[-1]["id"]


def count_undelivered(db: Database, digest_id: int, *, due_only: bool = False) -> int:
    """How many active subscribers are still owed ``digest_id`` (with ``due_only``: owed and due now)."""
    sql = f"SELECT COUNT(*) FROM subscribers s WHERE {_DUE if due_only else _OWED}"  # noqa: S608 - fixed text
    row = db.execute(sql, {"digest": digest_id, "now": to_text(utcnow())}).fetchone()
    return int(row[0])


def next_retry(db: Database, digest_id: int | None = None) -> datetime | None:
    """When the earliest deferred delivery (of ``digest_id``, or of any unfinished digest) is due."""
    sql = """SELECT MIN(d.next_attempt) FROM deliveries d JOIN digests g ON g.id = d.digest_id
             WHERE d.status = 'deferred' AND g.status IN ('pending', 'sending')"""
    params: list[Any] = []
    if digest_id is not None:
        sql += " AND d.digest_id = ?"
        params.append(digest_id)
    return from_text(db.execute(sql, params).fetchone()[0])


def record_delivery(
    db: Database,
    digest_id: int,
    subscriber_id: int,
    *,
    status: str,
    attempts: int,
    message_id: str | None,
    error: str | None = None,
    retry_for: float | None = None,
) -> str:
    """Commit one delivery outcome at once (autocommit): the resume checkpoint.

    ``status`` is sent, failed (permanent) or deferred (retried on a later
    run, once its next attempt is due: see RETRY_SPACING). A delivery that has
    been deferred for ``retry_for`` seconds is recorded as failed instead, so
    a dead address is not retried forever. Returns the status recorded.
    """
    if status == "deferred":
        return _record_deferral(db, digest_id, subscriber_id, attempts, error, retry_for)
    rows = db.execute(
        """INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, last_error, message_id, sent_at)
           VALUES (:digest, :subscriber, :status, :attempts, :error, :message_id, :sent_at)
           ON CONFLICT (digest_id, subscriber_id) DO UPDATE SET
             status = excluded.status, next_attempt = NULL,
             attempts = deliveries.attempts + excluded.attempts, last_error = excluded.last_error,
             message_id = excluded.message_id, sent_at = excluded.sent_at
           RETURNING status""",
        {"digest": digest_id, "subscriber": subscriber_id, "status": status, "attempts": attempts,
         "error": error, "message_id": message_id, "sent_at": to_text(utcnow()) if status == "sent" else None,
        },
    ).fetchall()  # fmt: skip
    # fetchall, not fetchone: the statement must run to completion for the
    # autocommit transaction to end (and the checkpoint to be on disk).
    recorded: str = rows[0][0]
    return recorded


def _record_deferral(
    db: Database, digest_id: int, subscriber_id: int, attempts: int, error: str | None, retry_for: float | None
) -> str:
    now = utcnow()
    previous = _one(db, "SELECT attempts, first_deferred, deferrals FROM deliveries "
                        "WHERE digest_id = ? AND subscriber_id = ?", [digest_id, subscriber_id])  # fmt: skip
    first = (from_text(previous["first_deferred"]) if previous else None) or now
    deferrals = (previous["deferrals"] if previous else 0) + 1
    wait = RETRY_SPACING[min(deferrals, len(RETRY_SPACING)) - 1]
    status = "deferred"
    if retry_for is not None and (now - first).total_seconds() >= retry_for:
        status = "failed"
        error = f"{error} (still failing after {deferrals} tries over {_span(now - first)}: gave up)"
    db.execute(
        """INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, last_error, next_attempt,
                                   first_deferred, deferrals)
           VALUES (:digest, :subscriber, :status, :attempts, :error, :next, :first, :deferrals)
           ON CONFLICT (digest_id, subscriber_id) DO UPDATE SET
             status = excluded.status, attempts = deliveries.attempts + excluded.attempts,
             last_error = excluded.last_error, next_attempt = excluded.next_attempt,
             first_deferred = excluded.first_deferred, deferrals = excluded.deferrals""",
        {"digest": digest_id, "subscriber": subscriber_id, "status": status, "attempts": attempts, "error": error,
         "next": to_text(now + timedelta(seconds=wait)) if status == "deferred" else None,
         "first": to_text(first), "deferrals": deferrals},
    )  # fmt: skip
    return status


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours" if hours >= 1 else "under an hour"


def delivery_counts(db: Database, digest_id: int) -> dict[str, int]:
    counts = {"sent": 0, "failed": 0, "deferred": 0}
    for row in db.query(
        "SELECT status, COUNT(*) AS n FROM deliveries WHERE digest_id = ? GROUP BY status", [digest_id]
    ):
        counts[row["status"]] = row["n"]
    return counts


def recent_digests(db: Database, limit: int) -> list[dict[str, Any]]:
    """The latest digests, newest first, with their delivery counts by status."""
    return list(
        db.query(
            """SELECT d.id, d.created, d.subject, d.status, d.entry_count, d.started_at, d.finished_at,
                 (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = d.id AND x.status = 'sent') AS sent,
                 (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = d.id AND x.status = 'failed') AS failed,
                 (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = d.id AND x.status = 'deferred') AS deferred
               FROM digests d ORDER BY d.id DESC LIMIT ?""",
            [limit],
        )
    )


def failed_deliveries(db: Database, digest_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Failed and deferred deliveries of a digest with the server's last reply."""
    return list(
        db.query(
            """SELECT s.email, d.status, d.attempts, d.last_error FROM deliveries d
               JOIN subscribers s ON s.id = d.subscriber_id
               WHERE d.digest_id = ? AND d.status IN ('failed', 'deferred')
               ORDER BY d.status, s.email LIMIT ?""",
            [digest_id, limit],
        )
    )
