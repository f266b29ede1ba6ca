"""Sending: under the single-sender lock, check the feeds, then deliver every digest that is due.

``send`` opens the database and takes the lock; ``send_locked`` is the same
for a caller that already holds both (the daemon). Each digest is delivered
by ``deliver_digest``, which commits every recipient's outcome as it comes.
The steps live beside it: feedcheck.py (checking feeds), planning.py (which
digests are due, and their messages), preview.py (dry run and test send).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from digest import store, unsubscribe_queue
from digest.feedcheck import FeedReport, check_feeds
from digest.lock import sender_lock
from digest.planning import DigestPlan, planned_digests, prepared_for, signer_for
from digest.wiring import Wiring

if TYPE_CHECKING:
    from digest.mailer import DeliveryResult

log = logging.getLogger(__name__)


@dataclass
class SendReport:
    digest_id: int
    subject: str
    entries: int
    resumed: bool
    total: int = 0  # recipients owed this digest when the run started
    sent: int = 0
    failed: int = 0  # permanently (5xx), or temporary failures past the retry bound
    deferred: int = 0  # temporary failures: retried by the next run
    bounced: int = 0
    skipped: int = 0  # had it already before this run
    remaining: int = 0  # still owed after the run (deferred, or left by a stop)
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)
    finished: bool = False  # the digest is complete (status sent)
    next_retry: datetime | None = None  # when the earliest deferred recipient is due again

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.deferred

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class SendOutcome:
    feeds: list[FeedReport]
    digests: list[SendReport]


ProgressCallback = Callable[[SendReport, int], None]  # (report so far, total recipients)


def send(
    wiring: Wiring,
    *,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    check: bool = True,
) -> SendOutcome:
    """Check feeds, then deliver every digest that is due. Holds the sender lock."""
    settings = wiring.settings
    settings.require_sending()
    if check:
        settings.require_feeds()
    signer_for(settings)  # a bad DKIM key fails here, before a digest is made
    db = wiring.open_store()
    try:
        with sender_lock(settings.db_path):
            return send_locked(db, wiring, progress=progress, stop=stop, check=check)
    finally:
        db.close()


def send_locked(
    db: Database,
    wiring: Wiring,
    *,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    check: bool = True,
    new_digest: bool = True,
) -> SendOutcome:
    """``send`` for a caller that already holds the lock and the database (the daemon).

    Unfinished digests (a crash, a stop, deferred recipients) are resumed
    first, oldest first; then a new digest is made from pending entries.
    When ``stop`` is set, no new message starts; those in flight finish and
    are recorded, and the digest stays ``sending`` for the next run. With
    ``new_digest=False`` only unfinished digests are resumed.
    """
    stop = stop or threading.Event()
    feeds = check_feeds(db, wiring) if check else []
    reports = []
    for plan in planned_digests(db, wiring, new_digest=new_digest):
        if stop.is_set():
            break
        reports.append(deliver_digest(db, wiring, plan, progress, stop))
    return SendOutcome(feeds=feeds, digests=reports)


def deliver_digest(
    db: Database,
    wiring: Wiring,
    plan: DigestPlan,
    progress: ProgressCallback | None,
    stop: threading.Event,
) -> SendReport:
    """Deliver one digest to every subscriber still owed it; commit each outcome as it comes."""
    settings = wiring.settings
    prepared = prepared_for(plan, settings)
    unsubscribe_queue.apply(db, settings.db_path)  # one-click unsubscribes that met a locked database
    total = store.count_undelivered(db, plan.id, due_only=True)
    report = SendReport(plan.id, plan.subject, len(plan.entries), plan.resumed, total=total)
    report.skipped = store.delivery_counts(db, plan.id)["sent"]
    store.set_digest_status(db, plan.id, "sending")
    log.info("digest %d: sending %r to %d subscribers", plan.id, plan.subject, total)
    started = time.monotonic()

    from digest.mailer import deliver

    def on_result(result: DeliveryResult) -> None:
        subscriber_id = result.recipient.id
        recorded = store.record_delivery(
            db,
            plan.id,
            subscriber_id,
            status=result.status,
            attempts=result.attempts,
            message_id=result.message_id,
            error=result.error,
            retry_for=settings.retry_for,
        )
        if recorded == "sent":
            report.sent += 1
        else:
            setattr(report, recorded, getattr(report, recorded) + 1)
            report.errors.append(f"{result.recipient.email}: {result.error}")
            log.warning("digest %d: %s %s: %s", plan.id, result.recipient.email, recorded, result.error)
            if result.refused and settings.bounce_on_5xx:
                from digest.bounceprocess import record_smtp_refusal  # the bounce rules load on the first refusal

                if record_smtp_refusal(db, settings, subscriber_id, plan.id, result.error or ""):
                    report.bounced += 1
        report.elapsed = time.monotonic() - started
        if progress:
            progress(report, total)

    recipients = store.undelivered_subscribers(db, plan.id)
    try:
        deliver(
            prepared,
            recipients,
            transport_factory=wiring.transport,
            options=wiring.delivery,
            on_result=on_result,
            stop=stop,
        )
    finally:
        report.elapsed = time.monotonic() - started
    # Deferred recipients (and any a stop left out) keep the digest open: the
    # next run resumes it for them alone. Subscribers who left meanwhile do
    # not count, so a digest cannot stay open forever for them.
    report.remaining = store.count_undelivered(db, plan.id)
    if report.remaining == 0:
        store.set_digest_status(db, plan.id, "sent")
        report.finished = True
    else:
        report.next_retry = store.next_retry(db, plan.id)
    log.info(
        "digest %d: %d sent, %d failed, %d deferred, %d still owed; %.1fs",
        plan.id,
        report.sent,
        report.failed,
        report.deferred,
        report.remaining,
        report.elapsed,
    )
    return report
