"""Bounce and complaint mail -> classified events (DSN, ARF, flufl.bounce, VERP).

``classify`` reads one message and says what it is:

* ``complaint``: an ARF feedback report (RFC 5965, ``multipart/report;
  report-type=feedback-report``).
* ``bounce``: an RFC 3464 delivery status notification with failed
  recipients, or a free-form bounce that one of flufl.bounce's detectors
  (GNU Mailman's, dozens of MTA formats) recognises. Status 5.x.x is hard,
  4.x.x soft, and a full mailbox (5.2.2, 552) is soft: it may empty.
* ``auto-reply``: a vacation or out-of-office notice (RFC 3834 and the
  common non-standard markers). Never a bounce. Real DSNs are also
  ``Auto-Submitted: auto-replied``, so the report structure and the
  detectors decide first; only the explicit vacation markers win over them.
* ``delayed``: a DSN that only warns (Action: delayed); nothing to do.
* ``unrecognised``: anything else, which the caller must leave untouched.

Which subscriber: a VERP token (verp.py) in the address the bounce was sent
to or in the quoted original headers names the digest and subscriber
exactly; without one, the failed recipient addresses name them.
Library code: no SQL here (store/bounces.py), no printing.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from digest import verp
from digest.errors import shown

log = logging.getLogger(__name__)


class _DetectorFailures(logging.Filter):
    """flufl.bounce logs a detector that raised on odd mail at ERROR, with its traceback: one DEBUG line here.

    A detector failing is flufl.bounce trying the next one, not an error of
    digest's: the record is dropped and said again as a DEBUG line of this
    module's logger, so the operator sees it only with -vv.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            failure = record.exc_info[1]
            log.debug("flufl.bounce: %s: %s: %s", record.getMessage(), type(failure).__name__, failure)
            return False
        return True


# flufl.bounce logs every detector it tries at INFO: noise in the daemon's log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)
logging.getLogger("flufl.bounce").addFilter(_DetectorFailures())

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"\b([45])(\d\d)[ :-]")
_FULL = re.compile(r"mailbox (is )?full|over quota|quota exceeded|insufficient storage", re.IGNORECASE)
_VACATION_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto:|out of (the )?office|vacation|away from|abwesenheit)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Failure:
    """One failed recipient of a bounce (or the complained-about one)."""

    kind: str  # hard | soft | complaint
    email: str | None
    status_code: str | None
    diagnostic: str


@dataclass(frozen=True)
class Classification:
    verdict: str  # bounce | complaint | auto-reply | delayed | unrecognised
    failures: tuple[Failure, ...] = ()
    token: tuple[int, int] | None = None  # (digest_id, subscriber_id) from a valid VERP token
    received: datetime | None = None
    key: str = ""  # identifies this message, so processing it twice changes nothing
    notes: list[str] = field(default_factory=list, compare=False)


def parse_message(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def classify(data: bytes, secret: str | None = None) -> Classification:
    """What ``data`` (one RFC 5322 message) is; never raises for malformed mail.

    Mail that trips something unforeseen is ``unrecognised``: left where it
    is for a person to read, as any mail digest cannot classify.
    """
    try:
        return _classify(data, secret)
    except Exception as exc:  # the email package and the detectors meet whatever an MTA hands on
        log.debug("mail digest could not classify (%s: %s)", type(exc).__name__, exc, exc_info=True)
        return Classification("unrecognised", key=hashlib.sha256(data).hexdigest())


def _classify(data: bytes, secret: str | None) -> Classification:
    msg = parse_message(data)
    key = str(msg.get("Message-ID") or "").strip() or hashlib.sha256(data).hexdigest()
    token = verp.find_token(secret, data.decode("latin-1")) if secret else None
    received = _date(msg)

    def result(verdict: str, failures: list[Failure] | tuple[Failure, ...] = ()) -> Classification:
        return Classification(verdict, tuple(failures), token, received, key)

    report_type = (msg.get_param("report-type") or "") if msg.get_content_type() == "multipart/report" else ""
    if str(report_type).lower() == "feedback-report":
        return result("complaint", [_complaint(msg)])
    statuses = [part for part in msg.walk() if part.get_content_type() == "message/delivery-status"]
    if statuses:
        failures, delayed = _dsn_failures(statuses)
        if failures:
            return result("bounce", failures)
        if delayed:
            return result("delayed")
    if _is_vacation(msg):
        return result("auto-reply")
    # Imported here: flufl.bounce compiles some hundred patterns on import,
    # and `digest send` loads this module only to score an SMTP refusal.
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        temporary, permanent = frozenset(), frozenset()
    if temporary or permanent:
        text = _text_of(msg)
        failures = [_free_form(address, "hard", text) for address in sorted(permanent)]
        failures += [_free_form(address, "soft", text) for address in sorted(temporary - permanent)]
        return result("bounce", failures)
    if _auto_submitted(msg):
        return result("auto-reply")
    return result("unrecognised")


def _date(msg: Message) -> datetime | None:
    try:
        moment = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_vacation(msg: Message) -> bool:
    if msg.get("X-Autoreply") or msg.get("X-Autorespond"):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    subject = str(msg.get("Subject", ""))
    return bool(_VACATION_SUBJECT.match(subject)) and _auto_submitted(msg)


def _auto_submitted(msg: Message) -> bool:
    return str(msg.get("Auto-Submitted", "no")).strip().lower().startswith("auto-replied")


def kind_of(status: str | None, diagnostic: str) -> str:
    """hard or soft from an enhanced status (``5.1.1``), a basic code (``552``) or the text."""
    if status in ("5.2.2", "552") or _FULL.search(diagnostic):
        return "soft"
    if status and status.startswith("4"):
        return "soft"
    return "hard"


def status_in(text: str) -> str | None:
    """The first failure status code named in ``text``: enhanced first, else a basic reply code."""
    for match in _ENHANCED.finditer(text):
        if match.group(1) in "45":
            return match.group(0)
    basic = _BASIC.search(text)
    return basic.group(1) + basic.group(2) if basic else None


def _one_line(text: str, limit: int = 300) -> str:
    """A remote server's words as one line: its controls shown as escapes (``bounces list`` prints them)."""
    return shown(" ".join(text.split()), limit)


def _address(value: str) -> str | None:
    # "rfc822; alice@example.com" (DSN) or a bare address
    address = value.split(";", 1)[-1].strip().strip("<>").strip()
    return address.lower() if "@" in address else None


def _dsn_failures(parts: list[Message]) -> tuple[list[Failure], bool]:
    failures: list[Failure] = []
    delayed = False
    for part in parts:
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            recipient = block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            if action == "delayed":
                delayed = True
            if action != "failed":
                continue
            diagnostic = _one_line(str(block.get("Diagnostic-Code", "")))
            status = str(block.get("Status", "")).strip() or None
            basic = _BASIC.search(diagnostic + " ")
            if status in ("5.0.0", None) and basic:  # a vague status: the server's reply says more
                status = status_in(diagnostic) or status
            if basic and basic.group(0).startswith("552") and status and status.startswith("5.2"):
                status = "5.2.2"
            kind = kind_of(status, diagnostic)
            failures.append(Failure(kind, _address(str(recipient)), status, diagnostic))
    return failures, delayed


def _text_of(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "latin-1", "replace")
    return ""


def _free_form(address: bytes, kind: str, text: str) -> Failure:
    email_address = address.decode("utf-8", "replace").lower()
    lines = [line for line in text.splitlines() if line.strip()]
    near = [i for i, line in enumerate(lines) if email_address in line.lower()]
    start = near[0] if near else 0
    diagnostic = _one_line(" ".join(lines[start : start + 4]))
    status = status_in(diagnostic) or status_in(text)
    if kind == "hard" and kind_of(status, diagnostic) == "soft":
        kind = "soft"
    return Failure(kind, email_address, status, diagnostic)


def _complaint(msg: Message) -> Failure:
    recipient: str | None = None
    feedback = ""
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        fields = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(fields, Message):
            recipient = _address(str(fields.get("Original-Rcpt-To", "")))
            feedback = str(fields.get("Feedback-Type", "abuse")).strip()
        elif isinstance(payload, str):
            found = re.search(r"^Original-Rcpt-To:\s*(.+)$", payload, re.MULTILINE | re.IGNORECASE)
            recipient = _address(found.group(1)) if found else None
    if recipient is None:  # no Original-Rcpt-To: the To of the returned original message
        for part in msg.walk():
            if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
                inner = part.get_payload()
                original = inner[0] if isinstance(inner, list) and inner else None
                if isinstance(original, Message) and original.get("To"):
                    recipient = _address(email.utils.parseaddr(str(original["To"]))[1])
    return Failure("complaint", recipient, None, f"feedback report: {feedback or 'abuse'}")
