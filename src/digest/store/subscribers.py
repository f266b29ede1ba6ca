"""The subscribers table: add, remove, look up, list (a CSV import: imports.py).

Addresses arrive raw and are normalised here with the rules of subscribers.py,
so ``Alice@Example.COM`` and ``alice@example.com`` are one subscriber.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

from sqlite_utils import Database

from digest.errors import InputError
from digest.models import EXPORT_FIELDS, STATUSES, Subscriber, SubscriberRecord
from digest.store.connection import guarded, guarded_iter, write_transaction
from digest.store.times import to_text, utcnow
from digest.subscribers import clean_name, new_token, normalise_email


@dataclass(frozen=True)
class AddResult:
    subscriber: Subscriber
    outcome: str  # added | already-active | not-active (unsubscribed, bounced or pending: left unchanged)


_SUBSCRIBER_COLUMNS = ", ".join(field.name for field in fields(Subscriber))


def _subscriber_where(db: Database, condition: str, value: object) -> Subscriber | None:
    sql = f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE {condition}"  # noqa: S608 - fixed text
    rows = list(db.query(sql, [value]))
    return Subscriber(**rows[0]) if rows else None


@guarded
def get_by_email(db: Database, email: str) -> Subscriber | None:
    """The subscriber with this (normalised) address; addresses are stored lowercased."""
    return _subscriber_where(db, "email = ?", email.lower())


@guarded
def get_by_token(db: Database, token: str) -> Subscriber | None:
    return _subscriber_where(db, "token = ?", token)


@guarded
def get_by_id(db: Database, subscriber_id: int) -> Subscriber | None:
    return _subscriber_where(db, "id = ?", subscriber_id)


@guarded
def add_subscriber(
    db: Database,
    address: str,
    name: str | None = None,
    *,
    source: str = "cli",
    allow_test_domains: bool = False,
) -> AddResult:
    """Add ``address`` as active; an address already known is never changed here.

    Only a confirmation brings back an address that is not active
    (digest.resubscribe): the outcome ``not-active`` says so.
    """
    email = normalise_email(address, allow_test_domains=allow_test_domains)
    name = clean_name(name)
    now = to_text(utcnow())
    with write_transaction(db):  # waits for a busy database like every other command
        existing = get_by_email(db, email)
        if existing is None:
            db.execute(
                "INSERT INTO subscribers (email, name, status, token, created, updated, source) "
                "VALUES (?, ?, 'active', ?, ?, ?, ?)",
                [email, name, new_token(), now, now, source],
            )
            added = get_by_email(db, email)
            assert added is not None
            return AddResult(added, "added")
        if existing.status == "active":
            return AddResult(existing, "already-active")
        return AddResult(existing, "not-active")


@guarded
def set_subscriber_status(db: Database, subscriber_id: int, status: str, reason: str | None = None) -> None:
    """Set ``status``; ``reason`` says how an address became unsubscribed (UNSUBSCRIBE_REASONS)."""
    db.execute(
        "UPDATE subscribers SET status = ?, unsubscribe_reason = ?, updated = ? WHERE id = ?",
        [status, reason, to_text(utcnow()), subscriber_id],
    )


@dataclass(frozen=True)
class RemoveResult:
    subscriber: Subscriber
    outcome: str  # unsubscribed | already-unsubscribed | purged
    deliveries_deleted: int = 0


@guarded
def remove_subscriber(db: Database, address: str, *, purge: bool = False) -> RemoveResult:
    """Mark unsubscribed (kept for the record), or with ``purge`` delete the row and its send log."""
    email = normalise_email(address)
    existing = get_by_email(db, email)
    if existing is None:
        raise InputError(f"no subscriber {email}")
    if purge:
        with db.atomic():
            deleted = db.execute("DELETE FROM deliveries WHERE subscriber_id = ?", [existing.id]).rowcount
            db.execute("DELETE FROM subscribers WHERE id = ?", [existing.id])
        return RemoveResult(existing, "purged", deleted)
    if existing.status == "unsubscribed":
        return RemoveResult(existing, "already-unsubscribed")
    set_subscriber_status(db, existing.id, "unsubscribed", _leaving_reason(existing, "cli"))
    return RemoveResult(existing, "unsubscribed")


def _leaving_reason(subscriber: Subscriber, reason: str) -> str:
    # A bounced address that is then unsubscribed keeps "bounce" as its reason:
    # no page may offer it a way back, whoever pressed the button.
    return "bounce" if subscriber.status == "bounced" else reason


@guarded
def unsubscribe_token(db: Database, token: str, reason: str = "one-click") -> Subscriber | None:
    """Unsubscribe by link (``reason``: one-click or page): the subscriber for ``token``, or None.

    One UPDATE decides from the row as it is then, so a bounce processed
    between reading the row and writing it is respected: a bounced address
    becomes unsubscribed with reason ``bounce`` (they asked to leave, so
    plain ``reactivate`` no longer applies, and no page offers a way back).
    An address already unsubscribed keeps the reason it left with.
    """
    subscriber = get_by_token(db, token)
    if subscriber is None:
        return None
    db.execute(
        "UPDATE subscribers SET status = 'unsubscribed', updated = ?, "
        "unsubscribe_reason = CASE WHEN status = 'bounced' THEN 'bounce' ELSE ? END "
        "WHERE token = ? AND status != 'unsubscribed'",
        [to_text(utcnow()), reason, token],
    )
    return subscriber


@guarded_iter
def iter_subscribers(db: Database, status: str = "all") -> Iterator[SubscriberRecord]:
    """Subscribers for listing and export, streamed in id order."""
    where, params = ("", []) if status == "all" else ("WHERE status = ?", [status])
    for row in db.query(
        f"SELECT id, {', '.join(EXPORT_FIELDS)} FROM subscribers {where} ORDER BY id",  # noqa: S608
        params,
    ):
        yield SubscriberRecord(**row)


@guarded
def column_widths(db: Database, status: str = "all") -> dict[str, int]:
    """Longest email and name among the rows ``iter_subscribers`` yields, for aligned tables."""
    where, params = ("", []) if status == "all" else ("WHERE status = ?", [status])
    row = db.execute(
        f"SELECT MAX(LENGTH(email)), MAX(LENGTH(name)) FROM subscribers {where}",  # noqa: S608
        params,
    ).fetchone()
    return {"email": int(row[0] or 0), "name": int(row[1] or 0)}


@guarded
def status_counts(db: Database) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in db.query("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"):
        counts[row["status"]] = row["n"]
    return counts


@guarded
def count_subscribers(db: Database) -> int:
    """How many subscriber rows there are, whatever their status (a read that fails on an unusable database)."""
    return int(db.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0])
