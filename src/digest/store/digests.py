"""The digests table: a digest is created with its entries in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime

from sqlite_utils import Database

from digest.errors import StoreError
from digest.models import DigestSummary, StoredDigest
from digest.store.connection import guarded, one_row
from digest.store.times import from_text, to_text, utcnow

_DIGEST_COLUMNS = ", ".join(field.name for field in fields(StoredDigest))


@guarded
def create_digest(
    db: Database,
    subject: str,
    html: str,
    text: str,
    entry_ids: Iterable[int],
    placeholder_nonce: str = "",
    digest_id: int | None = None,
) -> int:
    """Insert a pending digest and assign its entries, in one transaction.

    ``digest_id``: the id it was rendered for (its archive link names it);
    a StoreError if another digest took it meanwhile. Raises StoreError too if
    any entry was assigned elsewhere meanwhile, so an entry can never end up
    in two digests.
    """
    ids = list(entry_ids)
    with db.atomic():
        if digest_id is not None and one_row(db, "SELECT id FROM digests WHERE id = ?", [digest_id]):
            raise StoreError(f"digest {digest_id} was created by another process meanwhile")
        cursor = db.execute(
            "INSERT INTO digests (id, created, subject, status, html, text, entry_count, placeholder_nonce)"
            " VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
            [digest_id, to_text(utcnow()), subject, html, text, len(ids), placeholder_nonce or None],
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


@guarded
def digest_row(db: Database, digest_id: int | None = None) -> StoredDigest | None:
    """Digest ``digest_id``, or the latest one that has started going out; None when there is none."""
    if digest_id is not None:
        row = one_row(db, f"SELECT {_DIGEST_COLUMNS} FROM digests WHERE id = ?", [digest_id])  # noqa: S608
    else:
        latest = f"SELECT {_DIGEST_COLUMNS} FROM digests WHERE status IN ('sending', 'sent') ORDER BY id DESC LIMIT 1"  # noqa: S608
        row = one_row(db, latest, [])
    return None if row is None else StoredDigest(**row)


@guarded
def unfinished_digests(db: Database) -> list[StoredDigest]:
    """Digests created but not completely sent, oldest first."""
    sql = f"SELECT {_DIGEST_COLUMNS} FROM digests WHERE status IN ('pending', 'sending') ORDER BY id"  # noqa: S608
    return [StoredDigest(**row) for row in db.query(sql)]


@guarded
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


@guarded
def last_digest_activity(db: Database) -> list[datetime]:
    """When the latest digest was created and when the latest one finished (those known)."""
    row = db.execute("SELECT MAX(created), MAX(finished_at) FROM digests").fetchone()
    return [moment for moment in map(from_text, row) if moment is not None]


@guarded
def recent_digests(db: Database, limit: int) -> list[DigestSummary]:
    """The latest digests, newest first, with their delivery counts by status."""
    rows = list(
        db.query(
            """SELECT id, created, subject, status, entry_count, started_at, finished_at
               FROM digests ORDER BY id DESC LIMIT ?""",
            [limit],
        )
    )
    tallies = delivery_tallies(db, [row["id"] for row in rows])
    summaries = []
    for row in rows:
        counts = tallies[row["id"]]
        summaries.append(
            DigestSummary(**row, sent=counts["sent"], failed=counts["failed"], deferred=counts["deferred"])
        )
    return summaries


@guarded
def delivery_tallies(db: Database, digest_ids: list[int]) -> dict[int, dict[str, int]]:
    """Deliveries by status for each digest, from the counts the triggers keep (schema.py)."""
    tallies = {digest_id: {"sent": 0, "failed": 0, "deferred": 0} for digest_id in digest_ids}
    if digest_ids:
        marks = ", ".join("?" * len(digest_ids))
        counted = db.execute(
            f"SELECT digest_id, status, n FROM delivery_tallies WHERE digest_id IN ({marks})",  # noqa: S608
            digest_ids,
        )
        for digest_id, status, count in counted:
            tallies[digest_id][status] = count
    return tallies
