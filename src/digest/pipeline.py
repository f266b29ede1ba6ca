"""The use cases, composed from feeds, store, render and mailer.

* ``check_feeds``: fetch every feed, record new entries (one failing feed is
  recorded on its row and the others still run).
* ``send``: under the single-sender lock, check, resume unfinished digests,
  create a digest from pending entries (one transaction), deliver it.
* ``preview``: the same check and digest creation on an in-memory copy of the
  database, so a dry run shows exactly what ``send`` would send and changes
  nothing on disk.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from digest import render, store
from digest.config import Settings
from digest.errors import DigestError, FeedError, InputError
from digest.feeds import Fetcher, HttpFetcher, parse_feed
from digest.lock import sender_lock
from digest.mailer import DeliveryOptions, DeliveryResult, SmtpTransport, TransportFactory, deliver, options_from
from digest.message import PreparedMessage, Recipient, dkim_signer, prepare_message
from digest.models import StoredEntry
from digest.subscribers import normalise_email, set_status

log = logging.getLogger(__name__)

PREVIEW_SECRET = "preview-only-secret"  # noqa: S105 - dry runs never send; links are samples


# --- check ------------------------------------------------------------------


@dataclass
class FeedReport:
    url: str
    title: str | None = None
    new: list[StoredEntry] = field(default_factory=list)
    status: str = "ok"  # ok | not-modified | error | gone
    error: str | None = None


def check_feeds(db: Database, settings: Settings, fetcher: Fetcher | None = None) -> list[FeedReport]:
    fetcher = fetcher or HttpFetcher(timeout=settings.fetch_timeout, max_bytes=settings.fetch_max_bytes)
    return [check_feed(db, settings, url, fetcher) for url in settings.require_feeds()]


def check_feed(db: Database, settings: Settings, url: str, fetcher: Fetcher) -> FeedReport:
    row = store.feed_row(db, url)
    now = store.to_text(store.utcnow())
    report = FeedReport(url=url, title=row["title"])
    try:
        result = fetcher(url, etag=row["etag"], last_modified=row["last_modified"])
        if result.not_modified:
            store.update_feed(db, row["id"], last_checked=now, last_status="304", last_error=None)
            report.status = "not-modified"
            return report
        parsed = parse_feed(result)
    except FeedError as exc:
        store.update_feed(db, row["id"], last_checked=now, last_status="error", last_error=str(exc))
        log.warning("feed %s: %s", url, exc)
        report.status, report.error = "error", str(exc)
        return report
    if parsed.warning:
        log.warning("feed %s is ill-formed but readable: %s", url, parsed.warning)
    new_ids = store.record_entries(db, row["id"], parsed.entries, settings.first_run)
    store.update_feed(
        db, row["id"], title=parsed.title, site_url=parsed.site_url, etag=result.etag,
        last_modified=result.last_modified, last_checked=now, last_status=str(result.status), last_error=None,
    )  # fmt: skip
    report.title = parsed.title
    wanted = set(new_ids)
    report.new = [e for e in store.pending_entries(db) if e.id in wanted]
    return report


# --- digests -------------------------------------------------------------------


@dataclass
class DigestPlan:
    """One digest that ``send`` would deliver now."""

    id: int
    subject: str
    html: str
    text: str
    entries: list[StoredEntry]
    created: str
    resumed: bool
    notes: tuple[str, ...] = ()


def create_next_digest(db: Database, settings: Settings) -> DigestPlan | None:
    """Render pending entries (up to the cap) and record the digest; None when nothing is new."""
    entries = store.pending_entries(db, limit=settings.max_entries)
    if not entries:
        return None
    digest = render.render_digest(entries, settings)
    digest_id = store.create_digest(db, digest.subject, digest.html, digest.text, digest.entry_ids)
    row = next(db.query("SELECT created FROM digests WHERE id = ?", [digest_id]))
    return DigestPlan(digest_id, digest.subject, digest.html, digest.text, entries, row["created"], False, digest.notes)


def planned_digests(db: Database, settings: Settings) -> Iterator[DigestPlan]:
    """Unfinished digests first (oldest first), then a new one from pending entries."""
    for row in store.unfinished_digests(db):
        yield DigestPlan(row["id"], row["subject"], row["html"], row["text"],
                         store.digest_entries(db, row["id"]), row["created"], True)  # fmt: skip
    plan = create_next_digest(db, settings)
    if plan is not None:
        yield plan


def prepared_for(plan: DigestPlan, settings: Settings, *, secret: str | None = None) -> PreparedMessage:
    signer = None
    if settings.dkim_selector and settings.dkim_domain and settings.dkim_key_file:
        try:
            signer = dkim_signer(settings.dkim_selector, settings.dkim_domain, settings.dkim_key_file)
        except OSError as exc:
            raise InputError(f"DIGEST_DKIM_KEY_FILE: cannot read {settings.dkim_key_file}: {exc.strerror}") from None
    sender = settings.sender_address
    list_name = plan.entries[0].feed_title if plan.entries else sender.display_name
    return prepare_message(
        subject=plan.subject,
        html=plan.html,
        text=plan.text,
        sender=sender,
        digest_key=hashlib.sha256(f"{plan.id}\0{plan.created}".encode()).hexdigest(),
        list_name=list_name or sender.domain,
        public_url=settings.public_url,
        secret=secret or settings.secret or PREVIEW_SECRET,
        reply_to=settings.reply_to_address,
        mailto=settings.unsubscribe_mailto,
        signer=signer,
    )


# --- send -------------------------------------------------------------------


@dataclass
class SendReport:
    digest_id: int
    subject: str
    entries: int
    resumed: bool
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    skipped: int = 0  # already delivered before this run
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class SendOutcome:
    feeds: list[FeedReport]
    digests: list[SendReport]


ProgressCallback = Callable[[SendReport, int], None]  # (report so far, total recipients)


def count_undelivered(db: Database, digest_id: int) -> int:
    row = db.execute(
        """SELECT COUNT(*) FROM subscribers s WHERE s.status = 'active' AND NOT EXISTS
           (SELECT 1 FROM deliveries d WHERE d.digest_id = ? AND d.subscriber_id = s.id AND d.status = 'sent')""",
        [digest_id],
    ).fetchone()
    return int(row[0])


def send(
    settings: Settings,
    *,
    fetcher: Fetcher | None = None,
    transport_factory: TransportFactory | None = None,
    delivery: DeliveryOptions | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    check: bool = True,
) -> SendOutcome:
    """Check feeds, then deliver every digest that is due. Holds the sender lock."""
    settings.require_sending()
    if check:
        settings.require_feeds()
    db = store.open_db(settings.db_path)
    try:
        with sender_lock(settings.db_path):
            return send_locked(db, settings, fetcher=fetcher, transport_factory=transport_factory,
                               delivery=delivery, progress=progress, stop=stop, check=check)  # fmt: skip
    finally:
        db.close()


def send_locked(
    db: Database,
    settings: Settings,
    *,
    fetcher: Fetcher | None = None,
    transport_factory: TransportFactory | None = None,
    delivery: DeliveryOptions | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    check: bool = True,
) -> SendOutcome:
    """``send`` for a caller that already holds the lock and the database (the daemon)."""
    stop = stop or threading.Event()
    feeds = check_feeds(db, settings, fetcher) if check else []
    factory = transport_factory or (lambda: SmtpTransport(settings))
    options = delivery or options_from(settings)
    reports = []
    for plan in planned_digests(db, settings):
        if stop.is_set():
            break
        reports.append(deliver_digest(db, settings, plan, factory, options, progress, stop))
    return SendOutcome(feeds=feeds, digests=reports)


def deliver_digest(
    db: Database,
    settings: Settings,
    plan: DigestPlan,
    factory: TransportFactory,
    options: DeliveryOptions,
    progress: ProgressCallback | None,
    stop: threading.Event,
) -> SendReport:
    prepared = prepared_for(plan, settings)
    report = SendReport(plan.id, plan.subject, len(plan.entries), plan.resumed)
    total = count_undelivered(db, plan.id)
    report.skipped = int(db.execute("SELECT COUNT(*) FROM deliveries WHERE digest_id = ? AND status = 'sent'",
                                    [plan.id]).fetchone()[0])  # fmt: skip
    store.set_digest_status(db, plan.id, "sending")
    log.info("digest %d: sending %r to %d subscribers", plan.id, plan.subject, total)
    started = time.monotonic()

    def on_result(result: DeliveryResult) -> None:
        subscriber_id = result.recipient.id
        store.record_delivery(db, plan.id, subscriber_id, status=result.status, attempts=result.attempts,
                              message_id=result.message_id, error=result.error)  # fmt: skip
        if result.status == "sent":
            report.sent += 1
        else:
            report.failed += 1
            report.errors.append(f"{result.recipient.email}: {result.error}")
            log.warning("digest %d: %s failed: %s", plan.id, result.recipient.email, result.error)
            if result.permanent and settings.bounce_on_5xx:
                set_status(db, subscriber_id, "bounced")
                report.bounced += 1
        report.elapsed = time.monotonic() - started
        if progress:
            progress(report, total)

    recipients = (
        Recipient(email=s.email, name=s.name, token=s.token, id=s.id)
        for s in store.undelivered_subscribers(db, plan.id)
    )
    try:
        deliver(prepared, recipients, transport_factory=factory, options=options, on_result=on_result, stop=stop)
    finally:
        report.elapsed = time.monotonic() - started
    if not stop.is_set():
        store.set_digest_status(db, plan.id, "sent")
        log.info("digest %d: %d sent, %d failed in %.1fs", plan.id, report.sent, report.failed, report.elapsed)
    return report


# --- preview and test send --------------------------------------------------------


@dataclass
class Preview:
    plan: DigestPlan | None
    feeds: list[FeedReport]
    recipients: int
    later: int  # further digests send would deliver after this one
    message: bytes | None = None
    files: dict[str, Path] = field(default_factory=dict)


SAMPLE_RECIPIENT = Recipient(email="subscriber@example.com", name="Sample Subscriber", token="x" * 32)


def preview(settings: Settings, output_dir: Path | None, *, fetcher: Fetcher | None = None) -> Preview:
    """What ``send`` would deliver now, computed on an in-memory copy of the database."""
    settings.require_feeds()
    settings.sender_address  # noqa: B018 - a preview is a complete message: From is needed
    db = store.open_snapshot(settings.db_path)
    try:
        feeds = check_feeds(db, settings, fetcher)
        plans = list(planned_digests(db, settings))
        if not plans:
            return Preview(None, feeds, 0, 0)
        plan = plans[0]
        recipients = count_undelivered(db, plan.id)
        first = next(store.undelivered_subscribers(db, plan.id, batch=1), None)
        recipient = SAMPLE_RECIPIENT if first is None else Recipient(first.email, first.name, first.token, first.id)
        prepared = prepared_for(plan, settings)
        message = prepared.personalise(recipient, datetime.now(UTC))
        result = Preview(plan, feeds, recipients, len(plans) - 1, message.data)
        if output_dir is not None:
            result.files = write_preview(output_dir, plan, message.data, prepared, recipient)
        return result
    finally:
        db.close()


def write_preview(
    output_dir: Path, plan: DigestPlan, eml: bytes, prepared: PreparedMessage, recipient: Recipient
) -> dict[str, Path]:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        url = prepared.unsubscribe_url(recipient.token)
        files = {
            "html": output_dir / "digest.html",
            "text": output_dir / "digest.txt",
            "eml": output_dir / "digest.eml",
        }
        personal = {render.UNSUBSCRIBE_PLACEHOLDER: url, render.RECIPIENT_PLACEHOLDER: recipient.email}
        html, text = plan.html, plan.text
        for placeholder, value in personal.items():
            html, text = html.replace(placeholder, value), text.replace(placeholder, value)
        files["html"].write_text(html, encoding="utf-8")
        files["text"].write_text(text, encoding="utf-8")
        files["eml"].write_bytes(eml)
    except OSError as exc:
        raise InputError(f"--output: cannot write to {output_dir}: {exc.strerror}") from None
    return files


def send_to_one(
    settings: Settings,
    address: str,
    *,
    fetcher: Fetcher | None = None,
    transport_factory: TransportFactory | None = None,
) -> tuple[DigestPlan, DeliveryResult]:
    """Send the digest ``send`` would send now to one address, touching no state."""
    email = normalise_email(address)
    settings.sender_address  # noqa: B018
    db = store.open_snapshot(settings.db_path)
    try:
        check_feeds(db, settings, fetcher)
        plan = next(planned_digests(db, settings), None)
        if plan is None:
            raise DigestError("nothing to send: no new entries and no unfinished digest")
        prepared = prepared_for(plan, settings)
    finally:
        db.close()
    results: list[DeliveryResult] = []
    factory = transport_factory or (lambda: SmtpTransport(settings))
    options = DeliveryOptions(attempts=settings.send_attempts, connections=1)
    recipient = Recipient(email=email, name=None, token="t" * 32)
    deliver(prepared, [recipient], transport_factory=factory, options=options, on_result=results.append)
    return plan, results[0]


def summary_rows(db: Database, limit: int = 10) -> list[dict[str, Any]]:
    """Recent digests with their delivery counts, newest first (for `digest status`)."""
    return list(
        db.query(
            """SELECT d.id, d.created, d.subject, d.status, d.entry_count,
                 (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = d.id AND x.status = 'sent') AS sent,
                 (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = d.id AND x.status = 'failed') AS failed
               FROM digests d ORDER BY d.id DESC LIMIT ?""",
            [limit],
        )
    )
