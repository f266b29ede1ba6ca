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

import errno
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from digest import store, unsubscribe_queue
from digest.bounceprocess import record_smtp_refusal
from digest.config import Settings
from digest.errors import DigestError, FeedError, FetchError, InputError
from digest.feeds import parse_feed
from digest.fetch import Fetcher, FetchResult, HttpFetcher, body_hash
from digest.lock import sender_lock
from digest.mailer import DeliveryOptions, DeliveryResult, SmtpTransport, TransportFactory, deliver, options_from
from digest.message import PreparedMessage, Signer, dkim_signer, prepare_message
from digest.models import Feed, StoredDigest, StoredEntry, Subscriber
from digest.placeholders import Placeholders
from digest.subscribers import new_token, normalise_email

log = logging.getLogger(__name__)

PREVIEW_SECRET = "preview-only-secret"  # noqa: S105 - dry runs never send; links are samples


# --- check ------------------------------------------------------------------


@dataclass
class FeedReport:
    """What one check of one feed found; ``digest check`` prints it."""

    url: str  # as configured in DIGEST_FEED_URL: the feed's name
    title: str | None = None
    new: list[StoredEntry] = field(default_factory=list)  # newest first
    status: str = "ok"  # ok | not-modified | error | gone
    error: str | None = None
    http_status: str | None = None  # what feeds.last_status recorded
    fetched_from: str | None = None  # set when the feed is fetched from a URL it moved to
    moved_to: str | None = None  # a permanent redirect found by this check
    warning: str | None = None  # ill-formed but readable
    first_run: bool = False
    skipped: int = 0  # entries the first-run policy recorded as already seen
    refreshed: int = 0  # pending entries whose content changed
    elsewhere: int = 0  # new to this feed, already known under another feed: never sent again

    @property
    def failed(self) -> bool:
        return self.status in ("error", "gone")


def check_feeds(
    db: Database, settings: Settings, fetcher: Fetcher | None = None, *, retry_gone: bool = False
) -> list[FeedReport]:
    """Check every configured feed, one after another; a failure never stops the others."""
    fetcher = fetcher or HttpFetcher(timeout=settings.fetch_timeout, max_bytes=settings.fetch_max_bytes)
    urls = dict.fromkeys(settings.require_feeds())  # a URL listed twice is checked once
    return [check_feed(db, settings, url, fetcher, retry_gone=retry_gone) for url in urls]


def check_feed(db: Database, settings: Settings, url: str, fetcher: Fetcher, *, retry_gone: bool = False) -> FeedReport:
    """Fetch one feed and record its new entries.

    A failure (network, HTTP error, not a feed) is recorded on the feed row
    (``last_status``, ``last_error``) and leaves its entries untouched. A 304,
    or a 200 whose body has the sha256 of the last one stored (a server
    without validators), is not parsed and writes nothing but ``last_checked``
    (and new validators). A 410 marks the feed ``gone``: it is not fetched
    again unless ``retry_gone``. A permanent redirect (301/308)
    makes the new URL the one fetched from now on (``fetch_url``).
    """
    row = store.feed_row(db, url)
    now = store.to_text(store.utcnow())
    source = row.fetch_url or url
    report = FeedReport(url=url, title=row.title, http_status=row.last_status, fetched_from=row.fetch_url)
    if row.status == "gone" and not retry_gone:
        report.status = "gone"
        report.error = f"{source}: gone (HTTP 410 by {row.last_checked}); no longer fetched"
        return report
    try:
        result = fetcher(source, etag=row.etag, last_modified=row.last_modified)
        content_hash = body_hash(result)
        unchanged = result.not_modified or (content_hash is not None and content_hash == row.content_hash)
        if not unchanged:
            parsed = parse_feed(result)
    except FeedError as exc:
        status = exc.status if isinstance(exc, FetchError) else "error"
        gone = isinstance(exc, FetchError) and exc.gone
        store.update_feed(
            db,
            row.id,
            last_checked=now,
            last_status=status,
            last_error=str(exc),
            **({"status": "gone"} if gone else {}),
        )
        # Debug only: callers report failures (the CLI prints them, the daemon logs state changes).
        log.debug("feed %s: %s", url, exc)
        report.status, report.error, report.http_status = ("gone" if gone else "error"), str(exc), status
        return report
    moved = _moved(row, url, result.permanent_redirect)
    if moved:
        report.moved_to = report.fetched_from = moved
    if unchanged:
        _record_unchanged(db, row, result, now, moved)
        report.status = "not-modified"
        return report
    if parsed.warning:
        log.warning("feed %s is ill-formed but readable: %s", url, parsed.warning)
        report.warning = parsed.warning
    with store.transaction(db):
        # Entries and the validators that vouch for them commit together: a
        # crash between the two must not leave an ETag for unrecorded entries.
        recorded = store.record_entries(db, row.id, parsed.entries, settings.first_run)
        store.update_feed(
            db,
            row.id,
            title=parsed.title,
            site_url=parsed.site_url,
            subtitle=parsed.subtitle,
            language=parsed.language,
            etag=result.etag,
            last_modified=result.last_modified,
            content_hash=content_hash,
            last_checked=now,
            last_status=str(result.status),
            last_error=None,
            status="active",
            **({"fetch_url": moved} if moved else {}),
        )
    if recorded.refreshed:
        log.info("feed %s: %d pending entries changed and were refreshed", url, recorded.refreshed)
    report.title, report.http_status = parsed.title, str(result.status)
    report.first_run, report.skipped, report.refreshed = recorded.first_run, recorded.skipped, recorded.refreshed
    report.elsewhere = recorded.elsewhere
    report.new = store.entries_by_id(db, recorded.new_ids)
    return report


def _record_unchanged(db: Database, row: Feed, result: FetchResult, now: str | None, moved: str | None) -> None:
    """A 304, or a 200 with the bytes last stored: only the check's time (and any new validators) change."""
    changes: dict[str, Any] = {"last_checked": now}
    if row.last_error or row.status != "active":
        changes.update(last_status=str(result.status), last_error=None, status="active")
    if not result.not_modified and (result.etag, result.last_modified) != (row.etag, row.last_modified):
        changes.update(etag=result.etag, last_modified=result.last_modified)  # they vouch for the same bytes
    store.update_feed(db, row.id, **changes, **({"fetch_url": moved} if moved else {}))


def _moved(row: Feed, url: str, permanent_redirect: str | None) -> str | None:
    """The new fetch URL after a permanent redirect, or None when nothing moved."""
    if not permanent_redirect or permanent_redirect == (row.fetch_url or url):
        return None
    log.warning(
        "feed %s moved permanently to %s: fetching from there from now on; update DIGEST_FEED_URL to match",
        url,
        permanent_redirect,
    )
    return permanent_redirect


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
    placeholder_nonce: str = ""  # the digest's personal placeholders (placeholders.py)
    resent: bool = False  # an earlier digest sent again by a test send (`send --to`)


def create_next_digest(db: Database, settings: Settings) -> DigestPlan | None:
    """Render pending entries (up to the cap) and record the digest; None when nothing is new."""
    entries = store.pending_entries(db, limit=settings.max_entries)
    if not entries:
        return None
    # Imported here: rendering pulls in Jinja, premailer and cssutils, which
    # `digest check` (and the daemon's checks) never need.
    from digest import render

    digest_id = store.next_digest_id(db)  # its archive page is named in the email it renders
    digest = render.render_digest(entries, settings, archive_url=archive_url(settings, digest_id))
    digest_id = store.create_digest(
        db, digest.subject, digest.html, digest.text, digest.entry_ids, digest.placeholder_nonce, digest_id
    )
    row = store.digest_row(db, digest_id)
    assert row is not None  # created just now, in this connection
    return DigestPlan(
        digest_id,
        digest.subject,
        digest.html,
        digest.text,
        entries,
        row.created,
        False,
        digest.notes,
        digest.placeholder_nonce,
    )


def archive_url(settings: Settings, digest_id: int) -> str | None:
    """The digest's page in the web archive (DIGEST_ARCHIVE, on a DIGEST_PUBLIC_URL), or None."""
    return f"{settings.public_url}/archive/{digest_id}" if settings.archive and settings.public_url else None


def planned_digests(db: Database, settings: Settings, *, new_digest: bool = True) -> Iterator[DigestPlan]:
    """Unfinished digests first (oldest first), then (unless ``new_digest`` is off) a new one."""
    for row in store.unfinished_digests(db):
        yield _stored_plan(db, row)
    if not new_digest:  # the daemon resumes between scheduled sends without starting a new digest
        return
    plan = create_next_digest(db, settings)
    if plan is not None:
        yield plan


def signer_for(settings: Settings) -> Signer | None:
    """The DKIM signer the settings ask for; InputError when the key is unusable."""
    if not (settings.dkim_selector and settings.dkim_domain and settings.dkim_key_file):
        return None
    try:
        return dkim_signer(settings.dkim_selector, settings.dkim_domain, settings.dkim_key_file)
    except OSError as exc:
        raise InputError(f"DIGEST_DKIM_KEY_FILE: cannot read {settings.dkim_key_file}: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"DIGEST_DKIM_KEY_FILE: {settings.dkim_key_file}: {exc}") from None


def prepared_for(plan: DigestPlan, settings: Settings) -> PreparedMessage:
    signer = signer_for(settings)
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
        secret=settings.secret or PREVIEW_SECRET,
        reply_to=settings.reply_to_address,
        mailto=settings.unsubscribe_mailto,
        signer=signer,
        placeholders=Placeholders(plan.placeholder_nonce),
        bounce_address=settings.bounce_address,
        digest_id=plan.id,
    )


# --- send -------------------------------------------------------------------


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
    signer_for(settings)  # a bad DKIM key fails here, before a digest is made
    db = store.open_db(settings.db_path)
    try:
        with sender_lock(settings.db_path):
            return send_locked(
                db,
                settings,
                fetcher=fetcher,
                transport_factory=transport_factory,
                delivery=delivery,
                progress=progress,
                stop=stop,
                check=check,
            )
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
    feeds = check_feeds(db, settings, fetcher) if check else []
    factory = transport_factory or (lambda: SmtpTransport(settings))
    options = delivery or options_from(settings)
    reports = []
    for plan in planned_digests(db, settings, new_digest=new_digest):
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
    """Deliver one digest to every subscriber still owed it; commit each outcome as it comes."""
    prepared = prepared_for(plan, settings)
    unsubscribe_queue.apply(db, settings.db_path)  # one-click unsubscribes that met a locked database
    total = store.count_undelivered(db, plan.id, due_only=True)
    report = SendReport(plan.id, plan.subject, len(plan.entries), plan.resumed, total=total)
    report.skipped = store.delivery_counts(db, plan.id)["sent"]
    store.set_digest_status(db, plan.id, "sending")
    log.info("digest %d: sending %r to %d subscribers", plan.id, plan.subject, total)
    started = time.monotonic()

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
            if (
                result.refused
                and settings.bounce_on_5xx
                and record_smtp_refusal(db, settings, subscriber_id, plan.id, result.error or "")
            ):
                report.bounced += 1
        report.elapsed = time.monotonic() - started
        if progress:
            progress(report, total)

    recipients = store.undelivered_subscribers(db, plan.id)
    try:
        deliver(prepared, recipients, transport_factory=factory, options=options, on_result=on_result, stop=stop)
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


# --- preview and test send --------------------------------------------------------


@dataclass
class Preview:
    plan: DigestPlan | None
    feeds: list[FeedReport]
    recipients: int
    later: int  # further digests send would deliver after this one
    message: bytes | None = None
    files: dict[str, Path] = field(default_factory=dict)


SAMPLE_RECIPIENT = Subscriber(
    id=0, email="subscriber@example.com", name="Sample Subscriber", status="active", token="x" * 32
)


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
        recipients = store.count_undelivered(db, plan.id)
        first = next(store.undelivered_subscribers(db, plan.id, batch=1), None)
        recipient = SAMPLE_RECIPIENT if first is None else first
        prepared = prepared_for(plan, settings)
        message = prepared.personalise(recipient, datetime.now(UTC))
        result = Preview(plan, feeds, recipients, len(plans) - 1, message.data)
        if output_dir is not None:
            result.files = write_preview(output_dir, message.data, prepared, recipient)
        return result
    finally:
        db.close()


def write_preview(output_dir: Path, eml: bytes, prepared: PreparedMessage, recipient: Subscriber) -> dict[str, Path]:
    """digest.html, digest.txt and digest.eml: ``recipient``'s copy, as ``send`` would deliver it."""
    text, html = prepared.personal_bodies(recipient)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        files = {
            "html": output_dir / "digest.html",
            "text": output_dir / "digest.txt",
            "eml": output_dir / "digest.eml",
        }
        files["html"].write_text(html, encoding="utf-8")
        files["text"].write_text(text, encoding="utf-8")
        files["eml"].write_bytes(eml)
    except OSError as exc:
        hint = "the disk is full: free some space, or choose another --output" if exc.errno == errno.ENOSPC else None
        raise InputError(f"--output: cannot write to {output_dir}: {exc.strerror}", hint=hint) from None
    return files


def send_to_one(
    settings: Settings,
    address: str,
    *,
    digest_id: int | None = None,
    fetcher: Fetcher | None = None,
    transport_factory: TransportFactory | None = None,
) -> tuple[DigestPlan, DeliveryResult]:
    """Send the digest ``send`` would send now to one address, touching no state.

    With nothing due, the latest digest that went out is sent again; with
    ``digest_id``, that digest. So SMTP settings can be tried at any time.
    Everything happens on an in-memory copy of the database. The message
    gets a fresh Message-ID: reusing the one the real send will carry would
    let a receiver drop the real copy as a duplicate of this test.
    """
    email = normalise_email(address, allow_test_domains=settings.allow_test_domains)
    settings.sender_address  # noqa: B018 - validates DIGEST_FROM before any work
    db = store.open_snapshot(settings.db_path)
    try:
        plan = None
        if digest_id is None:
            check_feeds(db, settings, fetcher)
            plan = next(planned_digests(db, settings), None)
        if plan is None:
            plan = _earlier_digest(db, digest_id)
        prepared = replace(prepared_for(plan, settings), digest_key=secrets.token_hex(16))
        known = store.get_by_email(db, email)
    finally:
        db.close()
    # A subscriber gets exactly their own message (name, working unsubscribe
    # link); any other address gets a link that unsubscribes nobody.
    name, token = (known.name, known.token) if known else (None, new_token())
    status = known.status if known else "none"
    results: list[DeliveryResult] = []
    factory = transport_factory or (lambda: SmtpTransport(settings))
    options = DeliveryOptions(attempts=settings.send_attempts, connections=1, rate=0.0)  # one message
    recipient = Subscriber(id=0, email=email, name=name, status=status, token=token)
    deliver(prepared, [recipient], transport_factory=factory, options=options, on_result=results.append)
    return plan, results[0]


def _earlier_digest(db: Database, digest_id: int | None) -> DigestPlan:
    row = store.digest_row(db, digest_id)
    if row is None:
        if digest_id is not None:
            raise InputError(f"--digest: no digest {digest_id} in this database", hint="`digest status` lists them")
        raise DigestError(
            "nothing to send: no new entries and no digest sent yet", hint="`digest status` shows what is pending"
        )
    return _stored_plan(db, row, resent=True)


def _stored_plan(db: Database, row: StoredDigest, *, resent: bool = False) -> DigestPlan:
    """A digest already recorded, as a plan: its rendered parts and its own placeholders."""
    return DigestPlan(
        row.id,
        row.subject,
        row.html,
        row.text,
        store.digest_entries(db, row.id),
        row.created,
        True,
        placeholder_nonce=row.placeholder_nonce or "",
        resent=resent,
    )
