"""Web sign-ups: pending subscribers, their confirmation, and what the limits count.

Every decision about *whether* to send a confirmation is made in
:mod:`digest.signup`; this module records and reads the facts it needs, each
write in one short ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from digest.models import Subscriber
from digest.store.connection import guarded, write_transaction
from digest.store.times import from_text, to_text
from digest.subscribers import new_token

_COLUMNS = "id, email, name, status, token"


@dataclass(frozen=True)
class SignupState:
    """A subscriber as the sign-up sees it: who, in which state, when last sent a confirmation."""

    subscriber: Subscriber  # with its unsubscribe_reason
    created: bool  # the row was made by this request
    confirm_sent: datetime | None


@guarded
def request_signup(db: Database, email: str, name: str | None, now: datetime) -> SignupState:
    """Find ``email`` or create it as ``pending`` (source ``form``); a pending row gets the new name."""
    stamp = to_text(now)
    with write_transaction(db):
        row = db.execute(
            "SELECT id, status, confirm_sent, unsubscribe_reason FROM subscribers WHERE email = ?", [email]
        ).fetchone()
        created = row is None
        if created:
            db.execute(
                "INSERT INTO subscribers (email, name, status, token, created, updated, source) "
                "VALUES (?, ?, 'pending', ?, ?, ?, 'form')",
                [email, name, new_token(), stamp, stamp],
            )
        elif row[1] == "pending" and name:
            db.execute("UPDATE subscribers SET name = ?, updated = ? WHERE id = ?", [name, stamp, row[0]])
        found = db.execute(
            f"SELECT {_COLUMNS}, confirm_sent, unsubscribe_reason FROM subscribers WHERE email = ?",  # noqa: S608
            [email],
        ).fetchone()
    subscriber = Subscriber(found[0], found[1], found[2], found[3], found[4], unsubscribe_reason=found[6])
    return SignupState(subscriber, created, from_text(found[5]))


@guarded
def start_confirmation(db: Database, subscriber: Subscriber, nonce: str, now: datetime) -> bool:
    """Record that a confirmation with ``nonce`` is being mailed now (only that link will work).

    Only while the row is still in the state ``subscriber`` was read in: a
    complaint or bounce processed since then makes this False and nothing is
    recorded, so the caller mails nothing (the decision to mail was taken on
    a state that no longer holds).
    """
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE subscribers SET confirm_nonce = ?, confirm_sent = ? "
            "WHERE id = ? AND status = ? AND COALESCE(unsubscribe_reason, '') = ?",
            [nonce, to_text(now), subscriber.id, subscriber.status, subscriber.unsubscribe_reason or ""],
        )
        if cursor.rowcount != 1:
            return False
        db.execute("INSERT INTO signup_events (kind, client, at) VALUES ('mail', '', ?)", [to_text(now)])
    return True


@guarded
def cancel_confirmation(db: Database, subscriber_id: int) -> None:
    """The mail did not go out: no live link, and the next attempt is not held back."""
    with write_transaction(db):
        db.execute("UPDATE subscribers SET confirm_nonce = NULL, confirm_sent = NULL WHERE id = ?", [subscriber_id])
        db.execute("DELETE FROM signup_events WHERE id = (SELECT MAX(id) FROM signup_events WHERE kind = 'mail')")


# A live link never reactivates an address that bounced in the meantime, whatever the link says.
# A complaint or a bounce clears the nonce (store.bounces.apply_event), so only a link mailed
# after it (the owner's `reactivate --force` or `add --resubscribe`) can bring that address back.
_CONFIRMABLE = "status IN ('pending', 'unsubscribed')"


@guarded
def confirm(db: Database, token: str, nonce: str, now: datetime) -> Subscriber | None:
    """Make the subscriber whose link this is active, once: the nonce is spent. None if it is not live.

    ``confirm_sent`` is cleared too: the per-address interval between
    confirmation mails protects an address that never asked; one that has
    just confirmed may ask again at once (a mistaken unsubscribe, undone).
    """
    with write_transaction(db):
        row = db.execute(
            f"SELECT {_COLUMNS} FROM subscribers WHERE token = ? AND confirm_nonce = ? AND {_CONFIRMABLE}",  # noqa: S608
            [token, nonce],
        ).fetchone()
        if row is None:
            return None
        stamp = to_text(now)
        db.execute(
            "UPDATE subscribers SET status = 'active', confirmed = ?, confirm_nonce = NULL, confirm_sent = NULL, "
            "unsubscribe_reason = NULL, bounce_score = 0, updated = ? WHERE id = ?",
            [stamp, stamp, row[0]],
        )
    return Subscriber(row[0], row[1], row[2], "active", row[4])


@guarded
def confirmation_is_live(db: Database, token: str, nonce: str) -> bool:
    row = db.execute(
        f"SELECT 1 FROM subscribers WHERE token = ? AND confirm_nonce = ? AND {_CONFIRMABLE}",  # noqa: S608
        [token, nonce],
    ).fetchone()
    return row is not None


@guarded
def count_events(db: Database, kind: str, since: datetime, client: str = "") -> int:
    row = db.execute(
        "SELECT COUNT(*) FROM signup_events WHERE kind = ? AND client = ? AND at > ?", [kind, client, to_text(since)]
    ).fetchone()
    return int(row[0])


@guarded
def record_request(db: Database, client: str, now: datetime) -> None:
    with write_transaction(db):
        db.execute("INSERT INTO signup_events (kind, client, at) VALUES ('request', ?, ?)", [client, to_text(now)])


@guarded
def spend_form_token(db: Database, nonce: str, now: datetime) -> bool:
    """True the first time ``nonce`` is presented, False ever after (a replayed form token)."""
    with write_transaction(db):
        cursor = db.execute("INSERT OR IGNORE INTO used_form_tokens (nonce, at) VALUES (?, ?)", [nonce, to_text(now)])
        return cursor.rowcount == 1


@guarded
def spend_challenge(db: Database, challenge: str, now: datetime) -> bool:
    """True the first time a solved proof-of-work ``challenge`` is presented, False ever after.

    Kept with the spent form tokens (under its own prefix, so the two never
    meet) and forgotten with them: a challenge expires with its form token.
    """
    return bool(spend_form_token(db, f"challenge:{challenge}", now))


@guarded
def purge(db: Database, now: datetime, confirm_ttl: float) -> int:
    """Forget what has expired: pending sign-ups never confirmed, old counters and spent tokens.

    Returns the number of pending subscribers deleted. Rows of people who had
    been subscribed before (unsubscribed, asking to come back) only lose
    their dead confirmation link.
    """
    expired = to_text(now - timedelta(seconds=confirm_ttl))
    day_ago = to_text(now - timedelta(days=2))
    with write_transaction(db):
        deleted = db.execute(
            "DELETE FROM subscribers WHERE status = 'pending' AND COALESCE(confirm_sent, created) < ?", [expired]
        ).rowcount
        db.execute(
            "UPDATE subscribers SET confirm_nonce = NULL WHERE confirm_nonce IS NOT NULL AND confirm_sent < ?",
            [expired],
        )
        db.execute("DELETE FROM signup_events WHERE at < ?", [day_ago])
        db.execute("DELETE FROM used_form_tokens WHERE at < ?", [day_ago])
    return int(deleted)
