"""The deliveries table: the per (digest, subscriber) send log, and the retry schedule.

Each outcome is committed as it happens: it is the checkpoint a resumed send
starts from, so no subscriber gets a digest twice and none is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from digest.models import FailedDelivery, Subscriber
from digest.store.connection import guarded, guarded_iter, one_row
from digest.store.times import from_text, to_text, utcnow

# An active subscriber still owed digest ``:digest``: no delivery row, or a
# deferred one; ``sent`` and ``failed`` (permanent) rows are final.
_OWED = """s.status = 'active' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = :digest
           AND d.subscriber_id = s.id AND d.status IN ('sent', 'failed'))"""
# Owed and due now: a deferred delivery waits for its next_attempt.
_DUE = """s.status = 'active' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = :digest
          AND d.subscriber_id = s.id AND (d.status IN ('sent', 'failed')
          OR (d.status = 'deferred' AND d.next_attempt > :now)))"""

# Waits between deliveries deferred on successive runs: greylisting (which
# typically asks for 1 to 15 minutes) passes on the first or second retry, a
# server down for hours is tried a few times an hour, then every few hours.
RETRY_SPACING = (60, 300, 900, 3600, 7200, 14400, 28800)


@guarded_iter
def undelivered_subscribers(
    db: Database, digest_id: int, batch: int = 500, *, now: datetime | None = None
) -> Iterator[Subscriber]:
    """Active subscribers still owed ``digest_id``, streamed.

    Owed: no delivery row, or a ``deferred`` one (temporary failures) whose
    next attempt is due by ``now`` (default: now). ``sent`` and ``failed``
    (permanent) rows are final.
    Keyset pagination reads one batch at a time, so a million subscribers never
    sit in memory, and each batch re-reads status: an address unsubscribed
    during a long send is skipped from the next batch on.
    """
    due = to_text(now or utcnow())
    last_id = 0
    while True:
        rows = list(
            db.query(
                f"""SELECT s.id, s.email, s.name, s.status, s.token FROM subscribers s
                    WHERE {_DUE} AND s.id > :last_id ORDER BY s.id LIMIT :batch""",  # noqa: S608 - fixed text
                {"digest": digest_id, "last_id": last_id, "batch": batch, "now": due},
            )
        )
        if not rows:
            return
        for row in rows:
            yield Subscriber(**row)
        last_id = rows[-1]["id"]


@guarded
def count_undelivered(db: Database, digest_id: int, *, due_only: bool = False) -> int:
    """How many active subscribers are still owed ``digest_id`` (with ``due_only``: owed and due now)."""
    sql = f"SELECT COUNT(*) FROM subscribers s WHERE {_DUE if due_only else _OWED}"  # noqa: S608 - fixed text
    row = db.execute(sql, {"digest": digest_id, "now": to_text(utcnow())}).fetchone()
    return int(row[0])


@guarded
def next_retry(db: Database, digest_id: int | None = None) -> datetime | None:
    """When the earliest deferred delivery (of ``digest_id``, or of any unfinished digest) is due."""
    sql = """SELECT MIN(d.next_attempt) FROM deliveries d JOIN digests g ON g.id = d.digest_id
             WHERE d.status = 'deferred' AND g.status IN ('pending', 'sending')"""
    params: list[Any] = []
    if digest_id is not None:
        sql += " AND d.digest_id = ?"
        params.append(digest_id)
    return from_text(db.execute(sql, params).fetchone()[0])


@guarded
def record_delivery(
    db: Database,
    digest_id: int,
    subscriber_id: int,
    *,
    status: str,
    attempts: int,
    message_id: str | None,
    error: str | None = None,
    retry_for: float | None = None,
) -> str:
    """Commit one delivery outcome at once (autocommit): the resume checkpoint.

    ``status`` is sent, failed (permanent) or deferred (retried on a later
    run, once its next attempt is due: see RETRY_SPACING). A delivery that has
    been deferred for ``retry_for`` seconds is recorded as failed instead, so
    a dead address is not retried forever. Returns the status recorded.
    """
    if status == "deferred":
        return _record_deferral(db, digest_id, subscriber_id, attempts, error, retry_for)
    rows = db.execute(
        """INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, last_error, message_id, sent_at)
           VALUES (:digest, :subscriber, :status, :attempts, :error, :message_id, :sent_at)
           ON CONFLICT (digest_id, subscriber_id) DO UPDATE SET
             status = excluded.status, next_attempt = NULL,
             attempts = deliveries.attempts + excluded.attempts, last_error = excluded.last_error,
             message_id = excluded.message_id, sent_at = excluded.sent_at
           RETURNING status""",
        {"digest": digest_id, "subscriber": subscriber_id, "status": status, "attempts": attempts,
         "error": error, "message_id": message_id, "sent_at": to_text(utcnow()) if status == "sent" else None,
        },
    ).fetchall()  # fmt: skip
    # fetchall, not fetchone: the statement must run to completion for the
    # autocommit transaction to end (and the checkpoint to be on disk).
    recorded: str = rows[0][0]
    return recorded


def _record_deferral(
    db: Database, digest_id: int, subscriber_id: int, attempts: int, error: str | None, retry_for: float | None
) -> str:
    now = utcnow()
    previous = one_row(db, "SELECT attempts, first_deferred, deferrals FROM deliveries "
                        "WHERE digest_id = ? AND subscriber_id = ?", [digest_id, subscriber_id])  # fmt: skip
    first = (from_text(previous["first_deferred"]) if previous else None) or now
    deferrals = (previous["deferrals"] if previous else 0) + 1
    wait = RETRY_SPACING[min(deferrals, len(RETRY_SPACING)) - 1]
    status = "deferred"
    if retry_for is not None and (now - first).total_seconds() >= retry_for:
        status = "failed"
        error = f"{error} (still failing after {deferrals} tries over {_span(now - first)}: gave up)"
    db.execute(
        """INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, last_error, next_attempt,
                                   first_deferred, deferrals)
           VALUES (:digest, :subscriber, :status, :attempts, :error, :next, :first, :deferrals)
           ON CONFLICT (digest_id, subscriber_id) DO UPDATE SET
             status = excluded.status, attempts = deliveries.attempts + excluded.attempts,
             last_error = excluded.last_error, next_attempt = excluded.next_attempt,
             first_deferred = excluded.first_deferred, deferrals = excluded.deferrals""",
        {"digest": digest_id, "subscriber": subscriber_id, "status": status, "attempts": attempts, "error": error,
         "next": to_text(now + timedelta(seconds=wait)) if status == "deferred" else None,
         "first": to_text(first), "deferrals": deferrals},
    )  # fmt: skip
    return status


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours" if hours >= 1 else "under an hour"


@guarded
def delivery_counts(db: Database, digest_id: int) -> dict[str, int]:
    counts = {"sent": 0, "failed": 0, "deferred": 0}
    for row in db.query(
        "SELECT status, COUNT(*) AS n FROM deliveries WHERE digest_id = ? GROUP BY status", [digest_id]
    ):
        counts[row["status"]] = row["n"]
    return counts


@guarded
def failed_deliveries(db: Database, digest_id: int, limit: int = 20) -> list[FailedDelivery]:
    """Failed and deferred deliveries of a digest with the server's last reply."""
    return [
        FailedDelivery(**row)
        for row in db.query(
            """SELECT s.email, d.status, d.attempts, d.last_error FROM deliveries d
               JOIN subscribers s ON s.id = d.subscriber_id
               WHERE d.digest_id = ? AND d.status IN ('failed', 'deferred')
               ORDER BY d.status, s.email LIMIT ?""",
            [digest_id, limit],
        )
    ]
