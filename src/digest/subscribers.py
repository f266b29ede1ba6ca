"""The subscriber list: validation, add/remove, listing, one-click unsubscribe.

Addresses are validated and normalised with email-validator (syntax only, no
DNS), so ``Alice@Example.COM`` and ``alice@example.com`` are one subscriber.
Every subscriber gets a random, unguessable token at creation; it identifies
them in unsubscribe links, signed with DIGEST_SECRET (tokens.py, message.py),
and web.py turns a signed token back into an unsubscribe. CSV import lives in
csvimport.py; the CLI commands in cli_subscribers.py.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlite_utils import Database

from digest.errors import InputError
from digest.models import EXPORT_FIELDS, STATUSES, Subscriber
from digest.store import to_text, utcnow, write_transaction

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


# Special-use names (RFC 2606, RFC 6761, RFC 6762) that only exist on a test
# network or one machine: refused unless DIGEST_ALLOW_TEST_DOMAINS is on.
_TEST_SUFFIXES = ("test", "localhost", "invalid", "example", "local")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def is_test_domain(domain: str) -> bool:
    labels = domain.lower().rstrip(".").split(".")
    return labels[-1] in _TEST_SUFFIXES


def normalise_email(address: str, *, allow_test_domains: bool = False) -> str:
    """The normalised form of ``address``; InputError saying why it is invalid.

    ``allow_test_domains`` also accepts addresses at special-use names such as
    ``localhost`` or ``*.test`` (for a local relay), which are otherwise refused.
    """
    stripped = address.strip()
    local, at, domain = stripped.rpartition("@")
    if allow_test_domains and at and is_test_domain(domain):
        labels = domain.lower().split(".")
        if not all(_HOST_LABEL.match(label) for label in labels):
            raise InputError(f"invalid email address {address!r}: not a valid host name after the @")
        # The local part is checked as at any real domain.
        return normalise_email(f"{local}@example.com").rpartition("@")[0] + "@" + ".".join(labels)
    try:
        plain = at and domain.isascii() and len(local) <= _MAX_LOCAL and len(stripped) <= _MAX_ADDRESS
        if plain and _DOT_ATOM.match(local):
            # The common case, a plain ASCII address: only the domain needs
            # email-validator's full (IDNA) check, and domains repeat across a
            # list, so it is cached. 10x faster on a 100,000-row import; the
            # same verdicts (tests/test_subscribers_validation.py).
            normalised = f"{local}@{_normalised_domain(domain)}"
        else:
            normalised = str(validate_email(stripped, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {address!r}: {exc}") from None
    # email-validator keeps the local part's case (it can matter in theory);
    # every real provider ignores it, and duplicates by case are worse.
    return normalised.lower()


# RFC 5321/5322 dot-atom: what email-validator accepts unquoted in ASCII.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_MAX_LOCAL = 64
_MAX_ADDRESS = 254


@functools.lru_cache(maxsize=4096)
def _normalised_domain(domain: str) -> str:
    return str(validate_email(f"x@{domain}", check_deliverability=False).domain)


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
    db: Database,
    address: str,
    name: str | None = None,
    *,
    resubscribe: bool = False,
    source: str = "cli",
    allow_test_domains: bool = False,
) -> AddResult:
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


@dataclass(frozen=True)
class RemoveResult:
    subscriber: Subscriber
    outcome: str  # unsubscribed | already-unsubscribed | purged
    deliveries_deleted: int = 0


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
    set_status(db, existing.id, "unsubscribed")
    return RemoveResult(existing, "unsubscribed")


def unsubscribe_token(db: Database, token: str) -> Subscriber | None:
    """One-click unsubscribe: the subscriber for ``token`` marked unsubscribed, or None.

    A bounced address is marked unsubscribed too: the person asked to leave,
    which is the stronger record. One UPDATE, so the write lock is held for
    microseconds even while a send is running.
    """
    subscriber = get_by_token(db, token)
    if subscriber is None:
        return None
    if subscriber.status != "unsubscribed":
        set_status(db, subscriber.id, "unsubscribed")
    return subscriber


def mask_email(email: str) -> str:
    """``alice@example.com`` -> ``a***e@example.com``: recognisable by its owner, not quotable."""
    local, _, domain = email.rpartition("@")
    if len(local) <= 2:
        return f"{local[:1]}***@{domain}"
    return f"{local[0]}***{local[-1]}@{domain}"


def iter_subscribers(db: Database, status: str = "all") -> Iterator[dict[str, Any]]:
    """Rows for listing and export, streamed in id order."""
    where, params = ("", []) if status == "all" else ("WHERE status = ?", [status])
    yield from db.query(
        f"SELECT id, {', '.join(EXPORT_FIELDS)} FROM subscribers {where} ORDER BY id",  # noqa: S608
        params,
    )


def column_widths(db: Database, status: str = "all") -> dict[str, int]:
    """Longest email and name among the rows ``iter_subscribers`` yields, for aligned tables."""
    where, params = ("", []) if status == "all" else ("WHERE status = ?", [status])
    row = db.execute(
        f"SELECT MAX(LENGTH(email)), MAX(LENGTH(name)) FROM subscribers {where}",  # noqa: S608
        params,
    ).fetchone()
    return {"email": int(row[0] or 0), "name": int(row[1] or 0)}


def status_counts(db: Database) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in db.query("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"):
        counts[row["status"]] = row["n"]
    return counts
