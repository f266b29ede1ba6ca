"""The feeds table: one row per configured feed, found again after it moved."""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from digest.errors import InputError
from digest.models import Feed, FeedOverview, FeedStatus
from digest.store.connection import guarded, one_row
from digest.store.times import from_text

log = logging.getLogger("digest.store")  # one name for the whole store, as in its log lines before the split

_FEED_COLUMNS = ", ".join(f"feeds.{field.name}" for field in fields(Feed))


@guarded
def peek_feed_row(db: Database, url: str) -> Feed | None:
    """What ``feed_row`` would return, without creating or changing anything (None for a feed never seen)."""
    row = one_row(db, f"SELECT {_FEED_COLUMNS} FROM feeds WHERE url = ?", [url])  # noqa: S608 - fixed columns
    if row is None:
        row = one_row(db, f"SELECT {_FEED_COLUMNS} FROM feeds WHERE fetch_url = ? ORDER BY id LIMIT 1", [url])  # noqa: S608
        if row is not None:
            row.update(url=url, fetch_url=None)
    return None if row is None else Feed(**row)


@guarded
def feed_row(db: Database, url: str) -> Feed:
    """The feed row for the configured ``url``, created on first sight.

    A feed is named by the URL in DIGEST_FEED_URL, even after it moved
    (``fetch_url`` then says where it is fetched from). When the configuration
    is changed to name the new URL, this adopts the old row, so the feed keeps
    its entries and is not treated as new (which would re-send its latest posts).
    """
    select = f"SELECT {_FEED_COLUMNS} FROM feeds WHERE url = ?"  # noqa: S608 - fixed column names
    row = one_row(db, select, [url])
    if row is not None and row["status"] == "removed":
        # Configured again after `digest feeds remove`: its history still counts.
        db.execute("UPDATE feeds SET status = 'active' WHERE id = ?", [row["id"]])
        row["status"] = "active"
    if row is not None:
        return Feed(**row)
    with db.atomic():
        moved = one_row(db, "SELECT * FROM feeds WHERE fetch_url = ? ORDER BY id LIMIT 1", [url])
        if moved is not None:
            db.execute("UPDATE feeds SET url = ?, fetch_url = NULL WHERE id = ?", [url, moved["id"]])
            log.info("feed %s is now configured by its new URL %s", moved["url"], url)
        else:
            db.execute("INSERT OR IGNORE INTO feeds (url) VALUES (?)", [url])  # a concurrent check may win
    row = one_row(db, select, [url])
    assert row is not None
    return Feed(**row)


@guarded
def update_feed(db: Database, feed_id: int, **fields: Any) -> None:
    if not fields:
        return
    assignments = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE feeds SET {assignments} WHERE id = ?", [*fields.values(), feed_id])  # noqa: S608


@guarded
def feed_rows(db: Database) -> list[FeedStatus]:
    """Every feed with its pending-entry count, for `digest status`."""
    return [
        FeedStatus(**row)
        for row in db.query(
            f"""SELECT {_FEED_COLUMNS}, (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id
                                AND e.status = 'pending' AND e.digest_id IS NULL) AS pending
               FROM feeds WHERE status != 'removed' ORDER BY id"""  # noqa: S608 - fixed column names
        )
    ]


@guarded
def feeds_overview(db: Database, *, include_removed: bool = False) -> list[FeedOverview]:
    """Every feed with its entry counts (all, pending, sent in a digest), for `digest feeds list`."""
    where = "" if include_removed else "WHERE status != 'removed'"
    return [
        FeedOverview(**row)
        for row in db.query(
            f"""SELECT feeds.id, url, fetch_url, title, status, last_checked, last_status, last_error,
                  (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id) AS entries,
                  (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id
                     AND e.status = 'pending' AND e.digest_id IS NULL) AS pending,
                  (SELECT COUNT(*) FROM entries e WHERE e.feed_id = feeds.id AND e.digest_id IS NOT NULL) AS in_digests
               FROM feeds {where} ORDER BY id"""  # noqa: S608 - a fixed clause
        )
    ]


@guarded
def remove_feed(db: Database, url: str) -> tuple[str, int]:
    """Forget the feed named ``url``: ``("deleted" | "removed", pending entries dropped)``.

    A feed that never recorded an entry is deleted. Otherwise its pending
    entries (not yet in any digest) are dropped and the row is kept as
    ``removed``: the entries it already sent or skipped still stop the same
    posts being sent again under another address, and configuring the URL
    again brings it back without a first run. InputError when there is no such feed.
    """
    with db.atomic():
        row = one_row(db, "SELECT id FROM feeds WHERE url = ? AND status != 'removed'", [url])
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


@guarded
def move_feed(db: Database, old: str, new: str) -> None:
    """Name the feed ``old`` by ``new`` from now on, keeping its entries (so no first run happens).

    An empty row already named ``new`` (a check that failed) is replaced; one
    with entries is refused: both feeds have history, and entries seen under
    either are never sent again anyway. InputError on a refusal.
    """
    with db.atomic():
        row = one_row(db, "SELECT id FROM feeds WHERE url = ?", [old])
        if row is None:
            raise InputError(f"no feed {old!r} in this database", hint="see `digest feeds list`")
        target = one_row(db, "SELECT id FROM feeds WHERE url = ?", [new])
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
            """UPDATE feeds SET url = ?, fetch_url = NULL, etag = NULL, last_modified = NULL, content_hash = NULL,
               status = 'active' WHERE id = ?""",
            [new, row["id"]],
        )


@guarded
def last_feed_check(db: Database) -> datetime | None:
    return from_text(db.execute("SELECT MAX(last_checked) FROM feeds").fetchone()[0])
