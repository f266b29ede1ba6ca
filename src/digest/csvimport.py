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

The file is read a line at a time and staged a batch at a time (memory does
not grow with the file); all writes happen in ONE transaction at the end,
which the store owns (``store.apply_import``): either every good row is
imported or, on any error (unreadable file, a bad byte or a broken quote on
any line, no email column, database busy), nothing is. ``--dry-run`` stages
and counts the same way and skips only the write.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from digest import store
from digest.csvread import CsvRow, RowProblem, read_csv
from digest.store import to_text, utcnow

log = logging.getLogger(__name__)


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
    left_pending: int = 0  # pending here, subscribed in the file: still theirs to confirm
    invalid: int = 0
    refused: bool = False  # --strict and an invalid row: nothing was imported
    problems: list[RowProblem] = field(default_factory=list)  # the first MAX_KEPT_PROBLEMS of them
    date_warnings: list[RowProblem] = field(default_factory=list)  # unreadable dates (row still imported)


# --- planning and writing -------------------------------------------------------------


IMPORT_BATCH = 1000  # rows staged per statement
MAX_KEPT_PROBLEMS = 1000  # a broken million-row file is counted in full, listed in part


def import_csv(
    db: Database, path: Path, *, dry_run: bool = False, encoding: str = "utf-8", strict: bool = False
) -> ImportReport:
    """Import the subscribers in ``path`` in one transaction (or only count it, with ``dry_run``).

    With ``strict``, a file with any invalid row imports nothing: the report
    lists the problems and ``report.refused`` is set (the file is read once).

    The file is read and validated a batch at a time into the store's staging
    table (store/imports.py), then written in ONE transaction: memory stays
    the same for ten rows or a million, and a file-level error anywhere (a
    broken quote, a bad byte on the last line) imports nothing.
    """
    columns, delimiter, parsed = read_csv(path, encoding)
    report = ImportReport(path=path, columns=columns, delimiter=delimiter, dry_run=dry_run)
    now = to_text(utcnow()) or ""
    source = f"import:{path.name}"
    store.start_import(db)
    try:
        for batch in _batches(parsed):
            _stage(db, report, batch)
    except BaseException:
        store.drop_import(db)
        raise
    if strict and report.invalid and not dry_run:
        store.drop_import(db)
        report.refused = True
        return report
    counts = store.apply_import(db, path=path, source=source, now=now, dry_run=dry_run)
    report.added, report.recorded_not_subscribed = counts.added, counts.recorded_not_subscribed
    report.already_present, report.skipped_unsubscribed = counts.already_present, counts.skipped_unsubscribed
    report.downgraded, report.left_pending = counts.downgraded, counts.left_pending
    log.info("import %s: %d added, %d invalid", path, report.added, report.invalid)
    return report


def _batches(items: Iterator[CsvRow | RowProblem]) -> Iterator[tuple[CsvRow | RowProblem, ...]]:
    while batch := tuple(itertools.islice(items, IMPORT_BATCH)):
        yield batch


def _stage(db: Database, report: ImportReport, batch: tuple[CsvRow | RowProblem, ...]) -> None:
    good: list[CsvRow] = []
    for item in batch:
        report.rows += 1
        if isinstance(item, RowProblem):
            report.invalid += 1
            if len(report.problems) < MAX_KEPT_PROBLEMS:
                report.problems.append(item)
        else:
            good.append(item)
    rows = [(r.line, r.email, r.name, r.status, r.created, r.changed_at, r.reason) for r in good]
    staged = store.stage_rows(db, rows)
    report.duplicates += len(good) - staged
    for row in good:
        # Warned at an address's first line only, like every other count.
        if not row.date_problem or len(report.date_warnings) >= MAX_KEPT_PROBLEMS:
            continue
        if store.staged_line(db, row.email) == row.line:
            report.date_warnings.append(RowProblem(row.line, f"{row.email}: {row.date_problem}"))
