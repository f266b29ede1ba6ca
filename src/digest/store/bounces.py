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
from digest.store.connection import guarded
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
    with db.atomic():
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
        score = float(subscriber.bounce_score or 0)
        last_time = from_text(last)
        if last_time is not None and when - last_time > policy.reset:
            score = 0.0
        counted = kind in ("hard", "soft") and counted_today is None
        if counted:
            score += 1.0 if kind == "hard" else 0.5
        # A complaint or a bounce ends every way back but the owner's (a complaint's live
        # link dies too): whatever the state, not only for an active address. A complaint
        # about a bounced address wins too (it reached them, and `reactivate` must not
        # bring them back without their consent); a bounce never overwrites a complaint.
        old_reason = subscriber.unsubscribe_reason
        new_status, reason = status, old_reason
        if kind == "complaint":
            new_status, reason = "unsubscribed", "complaint"
        elif (
            counted
            and status != "bounced"
            and old_reason != "complaint"
            and (score >= policy.threshold or (kind == "hard" and policy.hard_immediate))
        ):
            new_status, reason = "bounced", "bounce"
        changed = (new_status, reason) != (status, old_reason)
        if not dry_run:
            db.execute(
                """INSERT INTO bounces (subscriber_id, digest_id, kind, status_code, diagnostic, received,
                   source, message_key, counted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [sid, digest_id, kind, status_code, diagnostic, to_text(when), source, message_key, int(counted)],
            )
            db.execute("UPDATE subscribers SET bounce_score = ? WHERE id = ?", [score, sid])
            if changed:
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
