"""The ``digest bounces process`` use case: read bounce mail, classify, record.

Sources: a Maildir, an mbox file, or one message (standard input, for an MTA
alias). Never destroy what is not ours: a message that was classified
(bounce, complaint, auto-reply, delayed) is moved to the Maildir's
``.processed`` folder; an mbox is never rewritten, and stdin is one message.
Unrecognised mail stays where it was, untouched. Recording is idempotent
(each message is recorded once per subscriber), so a second run over the
same mail changes nothing. A dry run classifies and reports, and changes
neither the database nor the mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlite_utils import Database

from digest import store
from digest.bounces import Classification, classify, kind_of, status_in
from digest.config import Settings
from digest.errors import InputError
from digest.store import AppliedBounce, BouncePolicy

log = logging.getLogger(__name__)

PROCESSED_FOLDER = "processed"


@dataclass
class MessageOutcome:
    where: str  # e.g. "maildir:1700000000.M1.host"
    verdict: str
    changes: list[AppliedBounce] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # failed addresses that are nobody here


@dataclass
class ProcessReport:
    outcomes: list[MessageOutcome] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.verdict == verdict)

    @property
    def changed(self) -> list[AppliedBounce]:
        return [change for outcome in self.outcomes for change in outcome.changes if change.changed]


def policy_from(settings: Settings) -> BouncePolicy:
    return BouncePolicy(
        settings.bounce_threshold, settings.bounce_hard == "immediate", timedelta(seconds=settings.bounce_reset)
    )


def record(
    db: Database, settings: Settings, found: Classification, source: str, *, dry_run: bool = False
) -> MessageOutcome:
    """Apply one classified message to the subscribers it names."""
    outcome = MessageOutcome(source, found.verdict)
    if found.verdict not in ("bounce", "complaint"):
        return outcome
    policy = policy_from(settings)
    digest_id: int | None = None
    by_token = None
    if found.token is not None:
        digest_id, subscriber_id = found.token
        by_token = store.get_by_id(db, subscriber_id)
        if not store.digest_exists(db, digest_id):
            digest_id = None
    failures = list(found.failures)
    if by_token is not None and len(failures) > 1:
        # The token names exactly one delivery; a report listing several
        # addresses still concerns only it.
        own = [f for f in failures if f.email == by_token.email]
        failures = own or failures[:1]
    for failure in failures:
        subscriber = by_token or (store.get_by_email(db, failure.email) if failure.email else None)
        if subscriber is None:
            outcome.unknown.append(failure.email or "?")
            continue
        outcome.changes.append(
            store.apply_event(
                db,
                subscriber,
                kind=failure.kind,
                digest_id=digest_id,
                status_code=failure.status_code,
                diagnostic=failure.diagnostic,
                source=source.split(":", 1)[0],
                message_key=found.key,
                policy=policy,
                when=found.received,
                dry_run=dry_run,
            )
        )
    if not outcome.changes:
        outcome.verdict = "unrecognised"  # about nobody on this list: not ours to move
    return outcome


def process_bytes(
    db: Database, settings: Settings, data: bytes, source: str, *, dry_run: bool = False
) -> MessageOutcome:
    return record(db, settings, classify(data, settings.secret), source, dry_run=dry_run)


def process_maildir(db: Database, settings: Settings, path: Path, *, dry_run: bool = False) -> ProcessReport:
    """Each message in the Maildir's new/ and cur/; classified ones move to its ``.processed`` folder."""
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        raise InputError(f"--maildir: not a Maildir (no cur/ and new/): {path}")
    import mailbox  # only the bounce commands read mailboxes; `digest send` imports this module too

    box = mailbox.Maildir(path, factory=None, create=False)
    report = ProcessReport()
    for key in list(box.iterkeys()):
        try:
            data = box.get_bytes(key)
        except KeyError:  # gone meanwhile (another reader)
            continue
        outcome = process_bytes(db, settings, data, f"maildir:{key}", dry_run=dry_run)
        report.outcomes.append(outcome)
        if outcome.verdict != "unrecognised" and not dry_run:
            target = (
                box.add_folder(PROCESSED_FOLDER)
                if PROCESSED_FOLDER not in box.list_folders()
                else box.get_folder(PROCESSED_FOLDER)
            )
            target.add(data)  # its bytes as they came: re-serialising a parsed message can fail on odd mail
            box.remove(key)
    return report


def process_mbox(db: Database, settings: Settings, path: Path, *, dry_run: bool = False) -> ProcessReport:
    """Each message of an mbox file; the file itself is only read, never rewritten."""
    if not path.is_file():
        raise InputError(f"--mbox: no such file: {path}")
    report = ProcessReport()
    for index, data in enumerate(_mbox_messages(path)):
        report.outcomes.append(process_bytes(db, settings, data, f"mbox:{index + 1}", dry_run=dry_run))
    return report


def _mbox_messages(path: Path) -> Iterator[bytes]:
    import mailbox

    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()


def record_smtp_refusal(db: Database, settings: Settings, subscriber_id: int, digest_id: int, reply: str) -> bool:
    """A 5xx the relay gave during the SMTP session, scored like a mailed bounce; True if now bounced."""
    subscriber = store.get_by_id(db, subscriber_id)
    if subscriber is None:
        return False
    code = status_in(reply + " ")
    applied = store.apply_event(
        db,
        subscriber,
        kind=kind_of(code, reply),
        digest_id=digest_id,
        status_code=code,
        diagnostic=reply[:300],
        source="smtp",
        message_key=None,
        policy=policy_from(settings),
    )
    return applied.changed and applied.status == "bounced"


# Gmail/Yahoo bulk-sender rules (2024): spam complaints below 0.3 %. For
# bounces no number is published; 2 % of hard bounces is the usual advice.
COMPLAINT_LIMIT = 0.003
BOUNCE_LIMIT = 0.02


def rate_lines(db: Database, limit: int = 5) -> list[str]:
    """For `digest status`: per recent digest, bounce and complaint rates against those limits."""
    lines = []
    for row in store.digest_rates(db, limit):
        if not row.sent:
            continue
        bounce, complaint = row.bounces / row.sent, row.complaints / row.sent
        line = (
            f"  #{row.id}: {row.bounces} hard bounce(s) {bounce:.1%} (limit {BOUNCE_LIMIT:.0%}), "
            f"{row.complaints} complaint(s) {complaint:.2%} (limit {COMPLAINT_LIMIT:.1%})"
        )
        warnings = [
            name
            for name, rate, cap in (("bounce", bounce, BOUNCE_LIMIT), ("complaint", complaint, COMPLAINT_LIMIT))
            if rate > cap
        ]
        if warnings:
            line += f"  WARNING: {' and '.join(warnings)} rate over the Gmail/Yahoo limit"
        lines.append(line)
    return ["Bounces and complaints:", *lines] if lines else []
