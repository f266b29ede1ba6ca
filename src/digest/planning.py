"""Planning digests: which digests a send delivers now, and the message each one becomes.

Unfinished digests (a crash, a stop, deferred recipients) come first, oldest
first; then a new digest rendered from pending entries and recorded in one
transaction. ``prepared_for`` turns a plan into the message every
subscriber's copy is personalised from (DKIM, List-* headers, placeholders).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlite_utils import Database

from digest import store
from digest.config import Settings
from digest.errors import DigestError, InputError
from digest.message import PreparedMessage, Signer, dkim_signer, prepare_message
from digest.models import StoredDigest, StoredEntry
from digest.placeholders import Placeholders
from digest.wiring import Wiring

PREVIEW_SECRET = "preview-only-secret"  # noqa: S105 - dry runs never send; links are samples


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


def create_next_digest(db: Database, wiring: Wiring) -> DigestPlan | None:
    """Render pending entries (up to the cap) and record the digest; None when nothing is new."""
    settings = wiring.settings
    entries = store.pending_entries(db, limit=settings.max_entries)
    if not entries:
        return None
    digest_id = store.next_digest_id(db)  # its archive page is named in the email it renders
    digest = wiring.render(entries, archive_url(settings, digest_id))
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


def planned_digests(db: Database, wiring: Wiring, *, new_digest: bool = True) -> Iterator[DigestPlan]:
    """Unfinished digests first (oldest first), then (unless ``new_digest`` is off) a new one."""
    for row in store.unfinished_digests(db):
        yield stored_plan(db, row)
    if not new_digest:  # the daemon resumes between scheduled sends without starting a new digest
        return
    plan = create_next_digest(db, wiring)
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


def earlier_digest(db: Database, digest_id: int | None) -> DigestPlan:
    row = store.digest_row(db, digest_id)
    if row is None:
        if digest_id is not None:
            raise InputError(f"--digest: no digest {digest_id} in this database", hint="`digest status` lists them")
        raise DigestError(
            "nothing to send: no new entries and no digest sent yet", hint="`digest status` shows what is pending"
        )
    return stored_plan(db, row, resent=True)


def stored_plan(db: Database, row: StoredDigest, *, resent: bool = False) -> DigestPlan:
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
