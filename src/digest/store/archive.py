"""The public archive's reads: digests that went out, newest first, and the next digest's id."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from digest.store.connection import guarded, one_row

# A digest is public once it has started going out: status IN ('sending', 'sent').


@guarded
def archived_digests(db: Database, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """One page of published digests, newest first (id, subject, when it went out)."""
    return list(
        db.query(
            "SELECT id, subject, entry_count, COALESCE(started_at, created) AS published, "
            "COALESCE(finished_at, started_at, created) AS updated FROM digests "
            "WHERE status IN ('sending', 'sent') ORDER BY id DESC LIMIT ? OFFSET ?",
            [limit, offset],
        )
    )


@guarded
def archived_count(db: Database) -> int:
    row = db.execute("SELECT COUNT(*) FROM digests WHERE status IN ('sending', 'sent')").fetchone()
    return int(row[0])


@guarded
def archived_digest(db: Database, digest_id: int) -> dict[str, Any] | None:
    """A published digest with its stored HTML and placeholder nonce; None when absent or unpublished."""
    return one_row(
        db,
        "SELECT id, subject, html, placeholder_nonce, COALESCE(started_at, created) AS published "
        "FROM digests WHERE id = ? AND status IN ('sending', 'sent')",
        [digest_id],
    )


@guarded
def next_digest_id(db: Database) -> int:
    """The id the next digest will get (digests are never deleted; creation holds the sender lock)."""
    row = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM digests").fetchone()
    return int(row[0])
