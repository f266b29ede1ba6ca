"""The subscriber list: validation, add/remove, listing, one-click unsubscribe.

Addresses are validated and normalised with email-validator (syntax only, no
DNS), so ``Alice@Example.COM`` and ``alice@example.com`` are one subscriber.
Every subscriber gets a random, unguessable token at creation; it identifies
them in unsubscribe links (see web.py and mailer.py).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlite_utils import Database

from digest.errors import InputError
from digest.models import Subscriber
from digest.store import to_text, utcnow

STATUSES = ("active", "unsubscribed", "bounced")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def normalise_email(address: str) -> str:
    """The normalised form of ``address``; InputError saying why it is invalid."""
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {address!r}: {exc}") from None
    # email-validator keeps the local part's case (it can matter in theory);
    # every real provider ignores it, and duplicates by case are worse.
    return str(result.normalized).lower()


def clean_name(name: str | None) -> str | None:
    """A display name safe for headers and tables: no control characters (CR/LF)."""
    if name is None:
        return None
    cleaned = " ".join(_CONTROL.sub(" ", name).split())
    return cleaned or None


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class AddResult:
    subscriber: Subscriber
    outcome: str  # added | already-active | resubscribed


def get_by_email(db: Database, email: str) -> Subscriber | None:
    rows = list(db.query("SELECT id, email, name, status, token FROM subscribers WHERE email = ?", [email]))
    return Subscriber(**rows[0]) if rows else None


def get_by_token(db: Database, token: str) -> Subscriber | None:
    rows = list(db.query("SELECT id, email, name, status, token FROM subscribers WHERE token = ?", [token]))
    return Subscriber(**rows[0]) if rows else None


def add_subscriber(
    db: Database, address: str, name: str | None = None, *, resubscribe: bool = False, source: str = "cli"
) -> AddResult:
    email = normalise_email(address)
    name = clean_name(name)
    now = to_text(utcnow())
    with db.atomic():
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
        if not resubscribe:
            raise InputError(
                f"{email} is {existing.status}",
                hint="they chose to leave or bounced; pass --resubscribe only with their renewed consent",
            )
        db.execute(
            "UPDATE subscribers SET status = 'active', name = COALESCE(?, name), updated = ? WHERE id = ?",
            [name, now, existing.id],
        )
        again = get_by_email(db, email)
        assert again is not None
        return AddResult(again, "resubscribed")


def set_status(db: Database, subscriber_id: int, status: str) -> None:
    db.execute(
        "UPDATE subscribers SET status = ?, updated = ? WHERE id = ?", [status, to_text(utcnow()), subscriber_id]
    )


def remove_subscriber(db: Database, address: str, *, purge: bool = False) -> Subscriber:
    """Mark unsubscribed (kept for the record), or delete the row with ``purge``."""
    email = normalise_email(address)
    existing = get_by_email(db, email)
    if existing is None:
        raise InputError(f"no subscriber {email}")
    if purge:
        with db.atomic():
            db.execute("DELETE FROM deliveries WHERE subscriber_id = ?", [existing.id])
            db.execute("DELETE FROM subscribers WHERE id = ?", [existing.id])
    else:
        set_status(db, existing.id, "unsubscribed")
    return existing


def unsubscribe_token(db: Database, token: str) -> Subscriber | None:
    """One-click unsubscribe: the subscriber for ``token`` marked unsubscribed, or None."""
    subscriber = get_by_token(db, token)
    if subscriber is None:
        return None
    if subscriber.status == "active":
        set_status(db, subscriber.id, "unsubscribed")
    return subscriber


def iter_subscribers(db: Database, status: str = "all") -> Iterator[dict[str, Any]]:
    """Rows for listing and export, streamed in id order."""
    where, params = ("", []) if status == "all" else ("WHERE status = ?", [status])
    yield from db.query(
        f"SELECT id, email, name, status, created, updated, source FROM subscribers {where} ORDER BY id",  # noqa: S608
        params,
    )


def status_counts(db: Database) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in db.query("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"):
        counts[row["status"]] = row["n"]
    return counts
