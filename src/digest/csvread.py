"""Reading a subscriber CSV exported by another newsletter tool: rows and problems, one line at a time.

Forgiving about the file, strict about the addresses: a UTF-8 BOM, UTF-16
(Excel's "Unicode text"), CRLF line ends and a ``;`` or tab delimiter all
work; the header is matched against the column names other tools export (see
csvimport.py, which imports what this module reads); every address goes
through the same validation as ``digest subscribers add``. A bad row is a
``RowProblem`` with its line number; a file-level problem is an InputError.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path

from digest.csvcells import import_cell, parse_date
from digest.errors import InputError
from digest.store import to_text
from digest.subscribers import clean_name, normalise_email

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


def _header_key(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-.\t")


_DECODE_HINT = "save it as 'CSV UTF-8', or pass --encoding, e.g. --encoding cp1252"


def _lines(path: Path, stream: BufferedReader, encoding: str) -> Iterator[str]:
    """The file's physical lines as text, decoded one at a time, line ends kept (for the csv module)."""
    if stream.peek(2)[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 (Excel's "Unicode text"): not split on bytes
        number = 0
        try:
            with io.TextIOWrapper(stream, encoding="utf-16", newline="") as text:
                for number, line in enumerate(text, start=1):  # noqa: B007 - read after the loop on an error
                    yield line
        except UnicodeError:
            raise InputError(f"{path}: line {number + 1}: not valid utf-16 text", hint=_DECODE_HINT) from None
        return
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # strips the BOM Excel writes in "CSV UTF-8"
    decoder = codecs.getincrementaldecoder(encoding)()  # LookupError: checked by read_csv
    number = 0
    try:
        for number, raw in enumerate(stream, start=1):  # noqa: B007
            yield decoder.decode(raw)
        decoder.decode(b"", final=True)
    except UnicodeError:  # the utf-16 and utf-32 codecs raise UnicodeError itself for a missing BOM
        raise InputError(f"{path}: line {max(number, 1)}: not valid {encoding} text", hint=_DECODE_HINT) from None


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
    """Parse ``path`` as it is read: (columns used, delimiter, rows or problems with their line numbers).

    The file is read a line at a time, so its size does not matter. File-level
    problems (unreadable, not text, no email column, a broken quote) raise
    InputError: before the rows for the header, while they are read for the rest.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"--encoding: unknown encoding {encoding!r}") from None
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return _read(path, stream, encoding)
    except BaseException:
        stream.close()
        raise


Parsed = tuple[dict[str, str], str, Iterator[CsvRow | RowProblem]]


def _read(path: Path, stream: BufferedReader, encoding: str) -> Parsed:
    lines = _lines(path, stream, encoding)
    blank = []  # lines before the header, given back to the csv reader so line numbers stay right
    for line in lines:
        blank.append(line)
        if line.strip("\r\n"):
            break
    delimiter = _delimiter(blank[-1] if blank else "")
    reader = csv.reader(itertools.chain(blank, lines), delimiter=delimiter, strict=True)
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
        with stream:
            if not has_header:
                yield _parse_row(reader.line_num, header, layout)
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    # A broken quote swallows the rest of the file: stop with a
                    # file-level error rather than guess where rows end.
                    raise InputError(f"{path}: line {start}: {exc}") from None
                if any(c.strip() for c in row):
                    yield _parse_row(start, row, layout)

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
