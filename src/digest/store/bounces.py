"""The bounces table and the subscriber bounce score.

Scoring as GNU Mailman does it: a hard bounce adds 1, a soft one 0.5, at most
once per subscriber per day; the score starts again from zero after
DIGEST_BOUNCE_RESET without a bounce; at DIGEST_BOUNCE_THRESHOLD (or at once
for a hard bounce with DIGEST_BOUNCE_HARD=immediate) an active subscriber
becomes ``bounced``. A complaint unsubscribes at once, reason ``complaint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from digest.models import BounceRecord, DigestRates, Subscriber
from digest.store.connection import guarded, write_transaction
from digest.store.digests import delivery_tallies
from digest.store.times import from_text, to_text, utcnow


@dataclass(frozen=True)
class BouncePolicy:
    threshold: float = 3.0
    hard_immediate: bool = True
    reset: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class AppliedBounce:
    subscriber_id: int
    email: str
    kind: str
    score: float
    status: str  # the subscriber's status afterwards
    changed: bool  # the status changed
    duplicate: bool = False  # this message was recorded before: nothing done


@guarded
def digest_exists(db: Database, digest_id: int) -> bool:
    return db.execute("SELECT 1 FROM digests WHERE id = ?", [digest_id]).fetchone() is not None


@guarded
def apply_event(
    db: Database,
    subscriber: Subscriber,
    *,
    kind: str,
    digest_id: int | None,
    status_code: str | None,
    diagnostic: str,
    source: str,
    message_key: str | None,
    policy: BouncePolicy,
    when: datetime | None = None,
    dry_run: bool = False,
) -> AppliedBounce:
    """Record one bounce or complaint for ``subscriber`` and update score and status, in one transaction."""
    when = when or utcnow()
    sid, status = subscriber.id, subscriber.status
    with db.atomic() if dry_run else write_transaction(db):
        if message_key is not None:
            seen = db.execute("SELECT 1 FROM bounces WHERE subscriber_id = ? AND message_key = ?",
                              [sid, message_key]).fetchone()  # fmt: skip
            if seen:
                return AppliedBounce(sid, subscriber.email, kind, subscriber.bounce_score, status, False, True)
        last = db.execute("SELECT MAX(received) FROM bounces WHERE subscriber_id = ? AND kind != 'complaint'",
                          [sid]).fetchone()[0]  # fmt: skip
        counted_today = db.execute(
            "SELECT 1 FROM bounces WHERE subscriber_id = ? AND counted = 1 AND substr(received, 1, 10) = ?",
            [sid, to_text(when)[:10]],  # type: ignore[index]
        ).fetchone()
        # The row as it is now, inside the write lock: the caller's copy may be older than a
        # complaint or bounce another process (the daemon's send, a piped `bounces process`) just recorded.
        status, old_reason, stored_score = db.execute(
            "SELECT status, unsubscribe_reason, bounce_score FROM subscribers WHERE id = ?", [sid]
        ).fetchone()
        score = float(stored_score or 0)
        last_time = from_text(last)
        if last_time is not None and when - last_time > policy.reset:
            score = 0.0
        counted = kind in ("hard", "soft") and counted_today is None
        if counted:
            score += 1.0 if kind == "hard" else 0.5
        # A complaint unsubscribes whatever the state (a bounced address too: it reached them,
        # and plain `reactivate` must not bring it back) and kills any live confirmation link.
        # A bounce past the threshold makes only an active address `bounced` (`reactivate`
        # undoes exactly that: they had chosen to be on the list); a pending or unsubscribed
        # address keeps its state and loses its live link. A bounce never overwrites a complaint.
        new_status, reason, kill_link = status, old_reason, False
        if kind == "complaint":
            new_status, reason, kill_link = "unsubscribed", "complaint", True
        elif counted and (score >= policy.threshold or (kind == "hard" and policy.hard_immediate)):
            kill_link = True
            if status == "active":
                new_status, reason = "bounced", "bounce"
        changed = (new_status, reason) != (status, old_reason)
        if not dry_run:
            db.execute(
                """INSERT INTO bounces (subscriber_id, digest_id, kind, status_code, diagnostic, received,
                   source, message_key, counted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [sid, digest_id, kind, status_code, diagnostic, to_text(when), source, message_key, int(counted)],
            )
            db.execute("UPDATE subscribers SET bounce_score = ? WHERE id = ?", [score, sid])
            if changed or kill_link:
                db.execute("UPDATE subscribers SET status = ?, unsubscribe_reason = ?, confirm_nonce = NULL, "
                           "updated = ? WHERE id = ?", [new_status, reason, to_text(utcnow()), sid])  # fmt: skip
    return AppliedBounce(sid, subscriber.email, kind, score, new_status, changed)


@guarded
def list_bounces(db: Database, email: str | None = None, limit: int = 200) -> list[BounceRecord]:
    """Recorded bounces and complaints (of ``email`` only, when given), newest first."""
    where, params = ("WHERE s.email = ?", [email.lower()]) if email else ("", [])
    return [
        BounceRecord(**row)
        for row in db.query(
            f"""SELECT b.received, s.email, b.kind, b.status_code, b.diagnostic, b.digest_id, b.source,
                       s.status AS subscriber_status, s.bounce_score
                FROM bounces b JOIN subscribers s ON s.id = b.subscriber_id {where}
                ORDER BY b.received DESC, b.id DESC LIMIT ?""",  # noqa: S608 - fixed text
            [*params, limit],
        )
    ]


@guarded
def reactivate(db: Database, subscriber_id: int) -> None:
    db.execute(
        "UPDATE subscribers SET status = 'active', bounce_score = 0, unsubscribe_reason = NULL, updated = ? "
        "WHERE id = ?",
        [to_text(utcnow()), subscriber_id],
    )


@guarded
def digest_rates(db: Database, limit: int = 5) -> list[DigestRates]:
    """Per recent digest: messages sent, bounces and complaints traced to it."""
    rows = list(
        db.query(
            """SELECT d.id, d.subject,
                 (SELECT COUNT(DISTINCT subscriber_id) FROM bounces b WHERE b.digest_id = d.id
                   AND b.kind = 'hard') AS bounces,
                 (SELECT COUNT(DISTINCT subscriber_id) FROM bounces b WHERE b.digest_id = d.id
                   AND b.kind = 'complaint') AS complaints
               FROM digests d ORDER BY d.id DESC LIMIT ?""",
            [limit],
        )
    )
    tallies = delivery_tallies(db, [row["id"] for row in rows])
    return [DigestRates(**row, sent=tallies[row["id"]]["sent"] + tallies[row["id"]]["failed"]) for row in rows]
