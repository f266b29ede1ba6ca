"""The schema: numbered migrations, recorded in ``PRAGMA user_version``.

Each migration runs in its own transaction with the version bump, so a crash
leaves the database at one version or the next, never between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlite_utils import Database

from digest.errors import StoreError

log = logging.getLogger("digest.store")  # one name for the whole store, as in its log lines before the split


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
    # (store/bounces.py). ``message_key`` makes processing the same mail twice a no-op.
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


def _migration_languages(db: Database) -> None:
    # The feed's subtitle (masthead) and language (lang on the page), and an
    # entry's own language when it differs from its feed's (lang/dir on its card).
    db.execute("ALTER TABLE feeds ADD COLUMN subtitle TEXT")
    db.execute("ALTER TABLE feeds ADD COLUMN language TEXT")
    db.execute("ALTER TABLE entries ADD COLUMN language TEXT")


def _migration_signups(db: Database) -> None:
    # Web sign-up with double opt-in: the consent record on each subscriber,
    # the single-use confirmation nonce, and what the rate limits count.
    # One execute per statement (executescript would commit mid-migration).
    statements = (
        "ALTER TABLE subscribers ADD COLUMN confirmed TEXT",  # when the address confirmed (double opt-in)
        "ALTER TABLE subscribers ADD COLUMN confirm_nonce TEXT",  # the one confirmation link that works
        "ALTER TABLE subscribers ADD COLUMN confirm_sent TEXT",  # when the last confirmation mail went out
        # kind: request (a POST /subscribe, client = its address) | mail (a confirmation sent, client '')
        "CREATE TABLE signup_events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, client TEXT NOT NULL, "
        "at TEXT NOT NULL)",
        "CREATE INDEX signup_events_kind ON signup_events(kind, client, at)",
        "CREATE TABLE used_form_tokens (nonce TEXT PRIMARY KEY, at TEXT NOT NULL)",
    )
    for statement in statements:
        db.execute(statement)


def _migration_delivery_counts(db: Database) -> None:
    # `digest status` shows each recent digest's deliveries by status. Counting
    # them reads every delivery row (1M rows: about a second), so the counts
    # are kept as deliveries are written: triggers keep delivery_tallies exact
    # on every insert, status change and delete (a subscriber purged with its
    # history included). The index serves the lists of failed and deferred
    # deliveries of one digest.
    statements = (
        "CREATE INDEX deliveries_digest_status ON deliveries(digest_id, status)",
        "CREATE TABLE delivery_tallies (digest_id INTEGER NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (digest_id, status)) WITHOUT ROWID",
        "INSERT INTO delivery_tallies (digest_id, status, n) "
        "SELECT digest_id, status, COUNT(*) FROM deliveries GROUP BY digest_id, status",
        f"""CREATE TRIGGER deliveries_tally_insert AFTER INSERT ON deliveries BEGIN
              {_TALLY_UP}
            END""",
        f"""CREATE TRIGGER deliveries_tally_delete AFTER DELETE ON deliveries BEGIN
              {_TALLY_DOWN}
            END""",
        f"""CREATE TRIGGER deliveries_tally_update AFTER UPDATE OF status, digest_id ON deliveries
            WHEN OLD.status IS NOT NEW.status OR OLD.digest_id IS NOT NEW.digest_id BEGIN
              {_TALLY_DOWN}
              {_TALLY_UP}
            END""",
    )
    for statement in statements:
        db.execute(statement)


_TALLY_UP = """INSERT INTO delivery_tallies (digest_id, status, n) VALUES (NEW.digest_id, NEW.status, 1)
              ON CONFLICT (digest_id, status) DO UPDATE SET n = n + 1;"""
_TALLY_DOWN = "UPDATE delivery_tallies SET n = n - 1 WHERE digest_id = OLD.digest_id AND status = OLD.status;"


def _migration_content_hash(db: Database) -> None:
    # The sha256 of the last feed body that was parsed and stored: a server
    # without validators (or one ignoring them) answers 200 with the same
    # bytes, which is then skipped like a 304 instead of parsed again.
    db.execute("ALTER TABLE feeds ADD COLUMN content_hash TEXT")


MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_digest_placeholders,
    _migration_cross_feed_identity,
    _migration_retry_schedule,
    _migration_bounces,
    _migration_languages,
    _migration_signups,
    _migration_delivery_counts,
    _migration_content_hash,
)


def migrate(db: Database) -> None:
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
