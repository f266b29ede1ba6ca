"""Previewing: a dry run (``send --dry-run``) and a test send (``send --to``).

Both work on the database in a transaction that is never committed
(``store.open_snapshot``, store/dryrun.py): a dry run shows exactly what
``send`` would send and changes nothing on disk; a test send delivers that
digest (or an earlier one) to one address and records nothing.
"""

from __future__ import annotations

import errno
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from digest import store
from digest.errors import InputError
from digest.feedcheck import FeedReport, check_feeds
from digest.mailer import DeliveryResult, deliver
from digest.message import PreparedMessage
from digest.models import Subscriber
from digest.planning import DigestPlan, earlier_digest, planned_digests, prepared_for
from digest.subscribers import new_token, normalise_email
from digest.wiring import Wiring


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


def preview(wiring: Wiring, output_dir: Path | None) -> Preview:
    """What ``send`` would deliver now, computed in a transaction that is rolled back."""
    settings = wiring.settings
    settings.require_feeds()
    settings.sender_address  # noqa: B018 - a preview is a complete message: From is needed
    db = store.open_snapshot(settings.db_path)
    try:
        feeds = check_feeds(db, wiring)
        plans = list(planned_digests(db, wiring))
        if not plans:
            return Preview(None, feeds, 0, 0)
        plan = plans[0]
        recipients = store.count_undelivered(db, plan.id)
        first = next(store.undelivered_subscribers(db, plan.id, batch=1), None)
        recipient = SAMPLE_RECIPIENT if first is None else first
        prepared = prepared_for(plan, settings)
        message = prepared.personalise(recipient, datetime.now(UTC))
        result = Preview(plan, feeds, recipients, len(plans) - 1, message.data)
    finally:
        db.close()  # rolls back and releases the write lock before any file is written
    if output_dir is not None:
        result.files = write_preview(output_dir, message.data, prepared, recipient)
    return result


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


def send_to_one(wiring: Wiring, address: str, *, digest_id: int | None = None) -> tuple[DigestPlan, DeliveryResult]:
    """Send the digest ``send`` would send now to one address, touching no state.

    With nothing due, the latest digest that went out is sent again; with
    ``digest_id``, that digest. So SMTP settings can be tried at any time.
    Everything happens in a transaction that is rolled back. The message
    gets a fresh Message-ID: reusing the one the real send will carry would
    let a receiver drop the real copy as a duplicate of this test.
    """
    settings = wiring.settings
    email = normalise_email(address, allow_test_domains=settings.allow_test_domains)
    settings.sender_address  # noqa: B018 - validates DIGEST_FROM before any work
    db = store.open_snapshot(settings.db_path)
    try:
        plan = None
        if digest_id is None:
            check_feeds(db, wiring)
            plan = next(planned_digests(db, wiring), None)
        if plan is None:
            plan = earlier_digest(db, digest_id)
        prepared = replace(prepared_for(plan, settings), digest_key=secrets.token_hex(16))
        known = store.get_by_email(db, email)
    finally:
        db.close()
    # A subscriber gets exactly their own message (name, working unsubscribe
    # link); any other address gets a link that unsubscribes nobody.
    name, token = (known.name, known.token) if known else (None, new_token())
    status = known.status if known else "none"
    results: list[DeliveryResult] = []
    options = replace(wiring.delivery, connections=1, rate=0.0)  # one message
    recipient = Subscriber(id=0, email=email, name=name, status=status, token=token)
    deliver(prepared, [recipient], transport_factory=wiring.transport, options=options, on_result=results.append)
    return plan, results[0]
