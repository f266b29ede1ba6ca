"""Import a subscriber list from a CSV file exported by another newsletter tool.

Reading is forgiving about the file and strict about the addresses: a UTF-8
BOM, UTF-16 (Excel's "Unicode text"), CRLF line ends and a ``;`` or tab
delimiter (Excel in many locales) all work, and the header is matched against
the column names Mailchimp, Substack, Buttondown (``subscriber_type``, ``type``),
listmonk, ConvertKit/Kit (``state``) and Ghost (``subscribed_to_emails``) export
(``Email Address``, ``email``, ``E-mail``; ``name`` or ``First Name`` +
``Last Name``; a status column, Mailchimp's ``UNSUB_TIME``/``CLEAN_TIME``,
Substack's ``email_disabled``). Every address goes through the same
validation as ``digest subscribers add``.

What happens to each row:

* a valid, subscribed address that is new is added (``source`` = ``import:<file>``);
* one already active here is left alone ("already present"), unless the file
  says they left (unsubscribed, cleaned, bounced, complained): that choice is
  applied ("unsubscribed"); an import never re-subscribes anyone;
* dates (sign-up, ``UNSUB_TIME``/``CLEAN_TIME``) are read in ISO 8601 and
  listmonk's Go format; an unreadable one is warned about with its line;
* one that unsubscribed or bounced here is never re-subscribed ("skipped");
* a row the file itself marks unsubscribed/bounced/cleaned is recorded with
  that status when the address is new ("recorded as not subscribed"), so a
  later ``add`` needs ``--resubscribe``: moving tools keeps everyone's choice;
* a bad row (no address, an invalid one, an unknown status) is reported with
  its line number and reason and nothing is written for it;
* a repeated address is counted once, at its first line.

All writes happen in ONE transaction, which the store owns
(``store.import_subscribers``): either every good row is imported or, on any
error (unreadable file, no email column, database busy), nothing is. This
module only plans what to write, so ``--dry-run`` runs the same plan and
skips only the write.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from digest import store
from digest.csvcells import import_cell, parse_date
from digest.errors import InputError
from digest.models import NewSubscriber, StatusChange
from digest.store import to_text, utcnow
from digest.subscribers import clean_name, normalise_email

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200

# Header names after _header_key(): lowercased, with spaces, "_", "-" and "." removed.
_EMAIL_COLUMNS = ("email", "emailaddress", "mail", "emailaddr", "subscriberemail", "useremail")
_NAME_COLUMNS = ("name", "fullname", "displayname", "subscribername")
_FIRST_NAME_COLUMNS = ("firstname", "first", "givenname", "fname")
_LAST_NAME_COLUMNS = ("lastname", "last", "surname", "familyname", "lname")
# "type": Buttondown's newer exports; "state": ConvertKit/Kit.
_STATUS_COLUMNS = ("status", "subscribertype", "subscriptionstatus", "subscriberstatus", "type", "state")
_CREATED_COLUMNS = ("created", "createdat", "optintime", "confirmtime", "creationdate", "subscribedat",
                    "dateadded", "signupdate", "subscribed")  # fmt: skip

_ACTIVE_VALUES = {"", "active", "subscribed", "subscriber", "confirmed", "enabled", "regular", "free", "paid",
                  "premium", "gifted", "trialed", "churning", "pastdue", "unpaid", "comp"}  # fmt: skip
_UNSUBSCRIBED_VALUES = {"unsubscribed", "unsubscribe", "optedout", "optout", "removed", "complained",
                        "spammy", "spam", "blocklisted", "blacklisted", "blocked", "disabled", "archived",
                        "inactive", "cancelled", "canceled"}  # fmt: skip
_COMPLAINED_VALUES = {"complained", "spammy", "spam"}
_BOUNCED_VALUES = {"bounced", "cleaned", "undeliverable", "hardbounce"}
_TRUE_VALUES = {"1", "true", "yes", "y", "t"}


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class CsvRow:
    line: int
    email: str
    name: str | None
    status: str  # active | unsubscribed | bounced
    created: str | None
    changed_at: str | None = None  # when the file says they left (UNSUB_TIME, CLEAN_TIME)
    reason: str | None = None  # unsubscribe_reason for a status that means less mail
    date_problem: str | None = None  # a date column that could not be read


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do)."""

    path: Path
    columns: dict[str, str]  # role -> header name used
    delimiter: str
    dry_run: bool = False
    rows: int = 0
    added: int = 0
    already_present: int = 0
    skipped_unsubscribed: int = 0  # unsubscribed or bounced here: never re-subscribed
    recorded_not_subscribed: int = 0  # marked unsubscribed/bounced in the file, new here
    duplicates: int = 0
    downgraded: int = 0  # active here, unsubscribed/bounced/cleaned/complained in the file: applied
    problems: list[RowProblem] = field(default_factory=list)
    date_warnings: list[RowProblem] = field(default_factory=list)  # unreadable dates (row still imported)

    @property
    def invalid(self) -> int:
        return len(self.problems)


# --- reading ----------------------------------------------------------------------


def _header_key(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-.\t")


def _decode(path: Path, data: bytes, encoding: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # strips the BOM Excel writes in "CSV UTF-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: line {line}: not valid {encoding} text",
            hint="save it as 'CSV UTF-8', or pass --encoding, e.g. --encoding cp1252",
        ) from None
    except LookupError:
        raise InputError(f"--encoding: unknown encoding {encoding!r}") from None


def _delimiter(first_line: str) -> str:
    """The delimiter of the header line: the most frequent of , ; tab | (comma on a tie)."""
    counts = {d: 0 for d in ",;\t|"}
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _find(header: list[str], candidates: tuple[str, ...]) -> int | None:
    keys = [_header_key(h) for h in header]
    for candidate in candidates:
        if candidate in keys:
            return keys.index(candidate)
    return None


@dataclass(frozen=True)
class _Layout:
    email: int
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    status: int | None = None
    email_disabled: int | None = None
    unsub_time: int | None = None
    clean_time: int | None = None
    created: int | None = None
    subscribed_to_emails: int | None = None  # Ghost: false means unsubscribed


def _layout(path: Path, header: list[str]) -> tuple[_Layout, bool]:
    """Column positions, and whether ``header`` is really a header (False: headerless file)."""
    email = _find(header, _EMAIL_COLUMNS)
    if email is None:
        if header and "@" in header[0]:
            # A bare list (address[, name]) without a header row.
            # The name column is there even when the first row leaves it out.
            return _Layout(email=0, name=1), False
        found = ", ".join(repr(h) for h in header[:8]) or "nothing"
        raise InputError(
            f"{path}: no email column in the header row (found {found})",
            hint="name the column 'email' or 'Email Address'",
        )
    return (
        _Layout(
            email=email,
            name=_find(header, _NAME_COLUMNS),
            first_name=_find(header, _FIRST_NAME_COLUMNS),
            last_name=_find(header, _LAST_NAME_COLUMNS),
            status=_find(header, _STATUS_COLUMNS),
            email_disabled=_find(header, ("emaildisabled",)),
            unsub_time=_find(header, ("unsubtime",)),
            clean_time=_find(header, ("cleantime",)),
            created=_find(header, _CREATED_COLUMNS),
            subscribed_to_emails=_find(header, ("subscribedtoemails",)),
        ),
        True,
    )


def _cell(row: list[str], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    return import_cell(row[index].strip())


def _row_status(row: list[str], layout: _Layout) -> str | None:
    """active, unsubscribed or bounced; None when the status value is unknown."""
    if _cell(row, layout.clean_time):
        return "bounced"
    if _cell(row, layout.unsub_time) or _cell(row, layout.email_disabled).lower() in _TRUE_VALUES:
        return "unsubscribed"
    if _cell(row, layout.subscribed_to_emails).lower() in ("false", "0", "no", "n", "f"):
        return "unsubscribed"
    value = _header_key(_cell(row, layout.status))
    if value in _ACTIVE_VALUES:
        return "active"
    if value in _UNSUBSCRIBED_VALUES:
        return "unsubscribed"
    if value in _BOUNCED_VALUES:
        return "bounced"
    return None


def _row_name(row: list[str], layout: _Layout) -> str | None:
    name = _cell(row, layout.name)
    if not name:
        name = " ".join(p for p in (_cell(row, layout.first_name), _cell(row, layout.last_name)) if p)
    cleaned = clean_name(name)
    return cleaned[:MAX_NAME_LENGTH] if cleaned else None


def _row_date(row: list[str], index: int | None, problems: list[str]) -> str | None:
    value = _cell(row, index)
    if not value:
        return None
    moment = parse_date(value)
    if moment is None:
        problems.append(f"unreadable date {value!r}")
        return None
    return to_text(moment)


def _row_reason(row: list[str], layout: _Layout, status: str) -> str | None:
    if status == "active":
        return None
    return "complaint" if _header_key(_cell(row, layout.status)) in _COMPLAINED_VALUES else "import"


def read_csv(path: Path, encoding: str = "utf-8") -> tuple[dict[str, str], str, Iterator[CsvRow | RowProblem]]:
    """Parse ``path``: (columns used, delimiter, rows or problems with their line numbers).

    File-level problems (unreadable, not text, no email column) raise InputError.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    text = _decode(path, data, encoding)
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = _delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next((r for r in reader if any(c.strip() for c in r)), None)
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num}: {exc}") from None
    if header is None:
        raise InputError(f"{path}: the file is empty")
    layout, has_header = _layout(path, header)
    columns = {}
    if has_header:
        for role in ("email", "name", "first_name", "last_name", "status", "created"):
            index = getattr(layout, role)
            if index is not None:
                columns[role] = header[index].strip()

    def rows() -> Iterator[CsvRow | RowProblem]:
        pending = [] if has_header else [(reader.line_num, header)]
        line = reader.line_num
        while True:
            if pending:
                line, row = pending.pop()
            else:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    # A broken quote swallows the rest of the file: stop with a
                    # file-level error rather than guess where rows end.
                    raise InputError(f"{path}: line {start}: {exc}") from None
                line = start
            if not any(c.strip() for c in row):
                continue
            yield _parse_row(line, row, layout)

    return columns, delimiter, rows()


def _parse_row(line: int, row: list[str], layout: _Layout) -> CsvRow | RowProblem:
    raw = _cell(row, layout.email)
    if not raw:
        return RowProblem(line, "no email address")
    try:
        email = normalise_email(raw)
    except InputError as exc:
        return RowProblem(line, exc.message)
    status = _row_status(row, layout)
    if status is None:
        value = _cell(row, layout.status)
        return RowProblem(line, f"{email}: status {value!r} is not a confirmed subscription; not imported")
    dates: list[str] = []
    created = _row_date(row, layout.created, dates)
    changed = _row_date(row, layout.unsub_time, dates) or _row_date(row, layout.clean_time, dates)
    return CsvRow(line, email, _row_name(row, layout), status, created, changed, _row_reason(row, layout, status),
                  "; ".join(dates) or None)  # fmt: skip


# --- planning and writing -------------------------------------------------------------


def import_csv(db: Database, path: Path, *, dry_run: bool = False, encoding: str = "utf-8") -> ImportReport:
    """Import the subscribers in ``path`` in one transaction (or only plan it, with ``dry_run``)."""
    columns, delimiter, parsed = read_csv(path, encoding)
    report = ImportReport(path=path, columns=columns, delimiter=delimiter, dry_run=dry_run)
    first_line: dict[str, int] = {}
    rows: list[CsvRow] = []
    for item in parsed:
        report.rows += 1
        if isinstance(item, RowProblem):
            report.problems.append(item)
        elif item.email in first_line:
            report.duplicates += 1
        else:
            first_line[item.email] = item.line
            rows.append(item)
            if item.date_problem:
                report.date_warnings.append(RowProblem(item.line, f"{item.email}: {item.date_problem}"))

    def plan(existing: dict[str, str]) -> tuple[list[NewSubscriber], list[StatusChange]]:
        now = to_text(utcnow()) or ""
        source = f"import:{path.name}"
        inserts: list[NewSubscriber] = []
        downgrades: list[StatusChange] = []
        for row in rows:
            status = existing.get(row.email)
            if status is None:
                inserts.append(NewSubscriber(row.email, row.name, row.status, row.created or now,
                                             row.changed_at or now, source, row.reason))  # fmt: skip
                if row.status == "active":
                    report.added += 1
                else:
                    report.recorded_not_subscribed += 1
            elif status == "active" and row.status != "active":
                # The reader left in the other tool: that choice wins; an import
                # only ever means less mail, never more.
                downgrades.append(StatusChange(row.email, row.status, row.reason, row.changed_at or now))
                report.downgraded += 1
            elif status == "active" or row.status != "active":
                report.already_present += 1
            else:
                report.skipped_unsubscribed += 1
        return inserts, downgrades

    store.import_subscribers(db, [r.email for r in rows], plan, path=path, dry_run=dry_run)
    log.info("import %s: %d added, %d invalid", path, report.added, report.invalid)
    return report
