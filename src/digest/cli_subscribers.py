"""``digest subscribers ...``: the subscriber-list commands (click). Thin, like cli.py.

Like cli.py, each command imports the database layer in its own body, so
`digest --help` does not load it.

Registered on the main group by cli.py. Logic lives in store/subscribers.py and
csvimport.py; this module parses options, calls one function, prints. Errors
raise DigestError, which the main group turns into one line and exit 2 (bad
input) or 1 (runtime).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from digest.errors import InputError
from digest.models import EXPORT_FIELDS, STATUSES, SubscriberRecord

if TYPE_CHECKING:
    from sqlite_utils import Database

    from digest.csvimport import ImportReport

MAX_REPORTED_PROBLEMS = 50  # a broken 100,000-row file should not flood the terminal


@contextmanager
def _database(ctx: click.Context) -> Iterator[Database]:
    from digest import store

    # ctx.obj is cli.App; read through ``settings`` so this module need not import cli.
    with store.opened(ctx.obj.settings.db_path) as db:
        yield db


@click.group("subscribers", short_help="Manage the subscriber list.")
def subscribers_group() -> None:
    """Manage the subscriber list (add, remove, list, import, export)."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", help="The subscriber's name, for the To header.")
@click.option(
    "--resubscribe",
    is_flag=True,
    help="For an address that unsubscribed: mail it a confirmation link (double opt-in; with their consent).",
)
@click.pass_context
def add(ctx: click.Context, email: str, name: str | None, resubscribe: bool) -> None:
    """Add a subscriber (validated and normalised, no DNS lookup).

    An address that unsubscribed comes back only by confirming: --resubscribe
    mails it a confirmation link, and it is active once its owner presses the
    button behind that link (the web app must be reachable at DIGEST_PUBLIC_URL).
    """
    from digest import resubscribe as resubscription
    from digest import store

    with _database(ctx) as db:
        allow = ctx.obj.settings.allow_test_domains
        result = store.add_subscriber(db, email, name, allow_test_domains=allow)
        address, status = result.subscriber.email, result.subscriber.status
        if result.outcome == "not-active":
            if not resubscribe:
                raise InputError(f"{address} is {status}", hint=_NOT_ACTIVE_HINTS.get(status))
            resubscription.by_owner(ctx.obj.settings, db, result.subscriber)
            click.echo(
                f"Mailed a confirmation link to {address}: subscribed again once they press its button "
                f"(until then {status})"
            )
            return
    messages = {"added": "Added", "already-active": "Already subscribed (nothing changed):"}
    click.echo(f"{messages[result.outcome]} {address}")


_NOT_ACTIVE_HINTS = {
    "unsubscribed": "they chose to leave; pass --resubscribe only with their renewed consent: it mails them a "
    "confirmation link",
    "bounced": "mail to it bounced; `digest subscribers reactivate` undoes a bounce",
    "pending": "it signed up and has not confirmed yet; --resubscribe mails it a new confirmation link",
}


@subscribers_group.command("remove", short_help="Unsubscribe an address (or --purge it).")
@click.argument("email")
@click.option("--purge", is_flag=True, help="Delete the subscriber and their send log entirely (right to erasure).")
@click.pass_context
def remove(ctx: click.Context, email: str, purge: bool) -> None:
    """Unsubscribe an address: kept on record, never mailed again (or erased with --purge)."""
    from digest import store

    with _database(ctx) as db:
        result = store.remove_subscriber(db, email, purge=purge)
    address = result.subscriber.email
    if result.outcome == "purged":
        click.echo(
            f"Purged {address}: deleted the subscriber and {result.deliveries_deleted} delivery record(s). "
            "Nothing about this address is left; a later import or add would subscribe it again."
        )
    elif result.outcome == "already-unsubscribed":
        click.echo(f"Already unsubscribed (nothing changed): {address}")
    else:
        click.echo(f"Unsubscribed {address}")


@subscribers_group.command("list")
@click.option(
    "--status",
    type=click.Choice([*STATUSES, "all"]),
    default="active",
    show_default=True,
    help="Which subscribers to list.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    help="Output format. Default: table on a terminal, csv otherwise.",
)
@click.pass_context
def list_(ctx: click.Context, status: str, output_format: str | None) -> None:
    """List subscribers (streamed in the order they were added)."""
    from digest import store

    stdout = sys.stdout
    output_format = output_format or ("table" if stdout.isatty() else "csv")
    with _database(ctx) as db:
        rows = store.iter_subscribers(db, status)
        if output_format == "csv":
            _write_csv(stdout, rows)
        elif output_format == "json":
            _write_json(stdout, rows)
        else:
            _write_table(db, status, rows)


def _write_csv(stream: IO[str], rows: Iterator[SubscriberRecord]) -> int:
    from digest.csvcells import export_cell

    writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({key: export_cell(value) for key, value in row.export_values().items()})  # no formula runs
        count += 1
    return count


def _write_json(stream: IO[str], rows: Iterator[SubscriberRecord]) -> None:
    # Streamed as a JSON array, one object per line, so a long list never sits in memory.
    stream.write("[")
    for index, row in enumerate(rows):
        stream.write(("\n" if index == 0 else ",\n") + json.dumps(row.export_values()))
    stream.write("\n]\n")


def _write_table(db: Database, status: str, rows: Iterator[SubscriberRecord]) -> None:
    from digest import store

    widths = store.column_widths(db, status)
    email_width = max(5, widths["email"])
    name_width = min(30, max(4, widths["name"]))
    click.echo(f"{'EMAIL':<{email_width}}  {'NAME':<{name_width}}  {'STATUS':<12}  SINCE")
    shown = 0
    for row in rows:
        shown += 1
        name = row.name or ""
        if len(name) > name_width:
            name = name[: name_width - 1] + "…"
        click.echo(f"{row.email:<{email_width}}  {name:<{name_width}}  {row.status:<12}  {row.created[:10]}")
    counts = store.status_counts(db)
    click.echo("")
    click.echo(f"{shown} listed. Total: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


@subscribers_group.command("import", short_help="Import subscribers from a CSV export.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and show what would happen; change nothing.")
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="Text encoding of FILE (a BOM is honoured; e.g. cp1252 for old Excel files).",
)
@click.option("--strict", is_flag=True, help="Import nothing (exit 2) if any row is invalid.")
@click.pass_context
def import_(ctx: click.Context, file: Path, dry_run: bool, encoding: str, strict: bool) -> None:
    """Import subscribers from a CSV export (Mailchimp, Substack, Buttondown, listmonk...).

    The header row names the columns: email / Email Address / E-mail, and
    optionally name or First Name + Last Name, a status and a sign-up date.
    Invalid rows are reported by line number and skipped; the valid rows are
    imported in one transaction. Addresses that unsubscribed or bounced here
    are never re-subscribed. Exit status: 0 when the import ran (even with
    invalid rows, which are listed on stderr); 2 when the file cannot be used,
    or with --strict when any row is invalid; nothing is imported then.
    """
    from digest.csvimport import import_csv

    with _database(ctx) as db:
        report = import_csv(db, file, dry_run=dry_run, encoding=encoding, strict=strict)
    _print_problems(report)
    if report.refused:
        raise InputError(f"{file}: {report.invalid} invalid row(s); nothing was imported (--strict)")
    _print_report(report)


def _print_problems(report: ImportReport) -> None:
    for problem in report.problems[:MAX_REPORTED_PROBLEMS]:
        click.echo(f"{report.path}: {problem}", err=True)
    hidden = report.invalid - MAX_REPORTED_PROBLEMS
    if hidden > 0:
        click.echo(f"{report.path}: ... and {hidden} more invalid row(s)", err=True)
    for warning in report.date_warnings[:MAX_REPORTED_PROBLEMS]:
        click.echo(f"{report.path}: warning: {warning} (imported, with the import time)", err=True)


def _print_report(report: ImportReport) -> None:
    delimiter = {"\t": "tab"}.get(report.delimiter, report.delimiter)
    columns = ", ".join(f"{role}={name!r}" for role, name in report.columns.items()) or "no header (email, name)"
    click.echo(f"Read {report.rows} row(s) from {report.path} (delimiter {delimiter!r}; columns {columns}).")
    verb = "Would add" if report.dry_run else "Added"
    lines = [
        f"{verb}: {report.added}",
        f"Already present: {report.already_present}",
        f"Skipped (unsubscribed or bounced here, not re-subscribed): {report.skipped_unsubscribed}",
    ]
    if report.recorded_not_subscribed:
        verb2 = "Would record" if report.dry_run else "Recorded"
        lines.append(f"{verb2} as unsubscribed/bounced (so they are never mailed): {report.recorded_not_subscribed}")
    if report.left_pending:
        lines.append(f"Left pending (signed up here, not confirmed yet; only they can confirm): {report.left_pending}")
    if report.downgraded:
        verb3 = "Would unsubscribe" if report.dry_run else "Unsubscribed"
        lines.append(f"{verb3} (left or bounced in the file, active here): {report.downgraded}")
    if report.duplicates:
        lines.append(f"Duplicates within the file (counted once): {report.duplicates}")
    lines.append(f"Invalid (see above): {report.invalid}")
    for line in lines:
        click.echo(f"  {line}")
    if report.dry_run:
        click.echo("Dry run: nothing was imported.")


@subscribers_group.command("export", short_help="Export subscribers as CSV.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--status",
    type=click.Choice([*STATUSES, "all"]),
    default="all",
    show_default=True,
    help="Which subscribers to export.",
)
@click.pass_context
def export(ctx: click.Context, file: Path | None, status: str) -> None:
    """Export subscribers as CSV (to FILE, or stdout): email, name, status, created, updated, source.

    Unsubscribed and bounced addresses are included by default, so the next
    tool keeps honouring them; `digest subscribers import` reads this file back.
    """
    from digest import store

    with _database(ctx) as db:
        rows = store.iter_subscribers(db, status)
        if file is None:
            _write_csv(sys.stdout, rows)
            return
        partial = file.with_name(file.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                count = _write_csv(stream, rows)
            partial.replace(file)  # never leave a half-written export under the real name
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise InputError(f"cannot write {file}: {exc.strerror}") from None
    click.echo(f"Exported {count} subscriber(s) to {file}", err=True)
