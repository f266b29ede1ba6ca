"""A CSV import's staging table and its one transaction.

csvimport.py reads and validates the file a batch at a time and stages each
good row here, in a TEMP table (on disk, private to the connection; the
database file is not touched and no lock is taken). The first line of an
address wins: a repeat is counted as a duplicate by the table's primary key,
so a million addresses never sit in a Python set. Only when the whole file
has been read does :func:`apply_import` decide and write, with set-based SQL,
in ONE transaction that takes the write lock first: every good row is
imported or, on any error, none is. A dry run runs the same counting query
and skips the two writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from digest.errors import StoreError
from digest.store.connection import guarded, write_transaction
from digest.subscribers import new_token

_TABLE = "temp.digest_import"


@guarded
def start_import(db: Database) -> None:
    """An empty staging table (one import at a time per connection)."""
    db.execute(f"DROP TABLE IF EXISTS {_TABLE}")
    db.execute(
        f"""CREATE TABLE {_TABLE} (email TEXT PRIMARY KEY, line INTEGER NOT NULL, name TEXT,
            status TEXT NOT NULL, created TEXT, changed TEXT, reason TEXT)"""
    )


# What is staged of one valid row: (line, email, name, status, created, changed, reason); the
# dates as stored, None when the file has none (the import's own time is used then).
StagedRow = tuple[int, str, str | None, str, str | None, str | None, str | None]


@guarded
def stage_rows(db: Database, rows: list[StagedRow]) -> int:
    """Stage one batch of valid rows; returns how many were new to this import (the rest repeat an address)."""
    before = db.conn.total_changes
    with db.atomic():  # one temp-table transaction per batch; the database file is not involved
        db.conn.executemany(
            f"INSERT INTO {_TABLE} (line, email, name, status, created, changed, reason) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
            rows,
        )
    return db.conn.total_changes - before


@guarded
def staged_line(db: Database, email: str) -> int | None:
    """The line at which ``email`` was staged (its first line in the file)."""
    row = db.execute(f"SELECT line FROM {_TABLE} WHERE email = ?", [email]).fetchone()  # noqa: S608
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class ImportCounts:
    added: int = 0  # new here and subscribed in the file
    recorded_not_subscribed: int = 0  # new here, marked unsubscribed/bounced in the file
    already_present: int = 0
    skipped_unsubscribed: int = 0  # unsubscribed or bounced here: never re-subscribed
    downgraded: int = 0  # active here, left in the file: their choice is applied
    left_pending: int = 0  # pending here (a sign-up not confirmed yet), subscribed in the file: left to confirm


_COUNT = f"""SELECT
    COALESCE(SUM(s.status IS NULL AND i.status = 'active'), 0),
    COALESCE(SUM(s.status IS NULL AND i.status != 'active'), 0),
    COALESCE(SUM(s.status IS NOT NULL AND (s.status = 'active') = (i.status = 'active')), 0),
    COALESCE(SUM(s.status NOT IN ('active', 'pending') AND i.status = 'active'), 0),
    COALESCE(SUM(s.status = 'active' AND i.status != 'active'), 0),
    COALESCE(SUM(s.status = 'pending' AND i.status = 'active'), 0)
    FROM {_TABLE} i LEFT JOIN main.subscribers s ON s.email = i.email"""  # noqa: S608 - fixed text
# Staged in file order (first lines only), so rowid order is file order, with no sort.
_INSERT = f"""INSERT INTO main.subscribers (email, name, status, token, created, updated, source, unsubscribe_reason)
    SELECT i.email, i.name, i.status, digest_new_token(), COALESCE(i.created, :now), COALESCE(i.changed, :now),
    :source, i.reason FROM {_TABLE} i
    WHERE NOT EXISTS (SELECT 1 FROM main.subscribers s WHERE s.email = i.email) ORDER BY i.rowid"""  # noqa: S608
# The reader left in the other tool: that choice wins; an import only ever means less mail, never more.
_DOWNGRADE = f"""UPDATE main.subscribers SET status = i.status, unsubscribe_reason = i.reason,
    updated = COALESCE(i.changed, :now)
    FROM {_TABLE} i WHERE main.subscribers.email = i.email AND main.subscribers.status = 'active'
    AND i.status != 'active'"""  # noqa: S608


@guarded
def apply_import(db: Database, *, path: Path, source: str, now: str, dry_run: bool = False) -> ImportCounts:
    """Decide and write the staged import in ONE transaction (with ``dry_run``, only count); drops the stage.

    The transaction takes the write lock first (BEGIN IMMEDIATE), so the
    counts cannot go stale between reading and writing; on a database error
    nothing is imported (StoreError).
    """
    try:
        if dry_run:
            return ImportCounts(*db.execute(_COUNT).fetchone())
        # Tokens only for the rows inserted, made by secrets like every other token.
        db.conn.create_function("digest_new_token", 0, new_token)
        with write_transaction(db):
            counts = ImportCounts(*db.execute(_COUNT).fetchone())
            db.execute(_INSERT, {"now": now, "source": source})
            db.execute(_DOWNGRADE, {"now": now})
        return counts
    except sqlite3.OperationalError as exc:
        raise StoreError(f"import of {path} failed, nothing was imported: {exc}") from None
    finally:
        drop_import(db)


@guarded
def drop_import(db: Database) -> None:
    db.execute(f"DROP TABLE IF EXISTS {_TABLE}")
