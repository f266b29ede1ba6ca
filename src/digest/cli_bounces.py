"""``digest bounces ...`` and ``digest subscribers reactivate`` (click). Thin, like cli.py.

Registered on the main group by cli.py. Logic lives in bounceprocess.py and
store/bounces.py; this module parses options, calls one function, prints.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.errors import InputError

if TYPE_CHECKING:
    from sqlite_utils import Database

    from digest.bounceprocess import ProcessReport


@contextmanager
def _database(ctx: click.Context, *, dry_run: bool = False) -> Iterator[Database]:
    from digest import store

    with store.opened(ctx.obj.settings.db_path, snapshot=dry_run) as db:
        yield db


@click.group("bounces", short_help="Process and list bounces and complaints.")
def bounces_group() -> None:
    """Process bounce and complaint mail, and list what was recorded."""


@bounces_group.command("process")
@click.argument("stdin", required=False, metavar="[-]")
@click.option("--maildir", type=click.Path(path_type=Path), help="Read the messages of this Maildir.")
@click.option("--mbox", type=click.Path(path_type=Path), help="Read the messages of this mbox file (never rewritten).")
@click.option("--imap", is_flag=True, help="Read the IMAP mailbox of the DIGEST_BOUNCE_IMAP_* settings.")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.pass_context
def process(
    ctx: click.Context, stdin: str | None, maildir: Path | None, mbox: Path | None, imap: bool, dry_run: bool
) -> None:
    """Classify bounce mail and record bounces and complaints.

    `-` reads one message from standard input, for an MTA alias such as
    bounces: "|/usr/local/bin/digest bounces process -". Classified messages
    in a Maildir move to its .processed folder; unrecognised mail is left
    untouched. Processing the same mail twice changes nothing.
    """
    from digest import bounceimap, bounceprocess

    chosen = [
        name for name, value in (("-", stdin), ("--maildir", maildir), ("--mbox", mbox), ("--imap", imap)) if value
    ]
    if stdin not in (None, "-"):
        raise InputError(f"unexpected argument {stdin!r}: use - for standard input")
    if len(chosen) != 1:
        raise InputError("give exactly one of -, --maildir DIR, --mbox FILE or --imap")
    settings = ctx.obj.settings
    with _database(ctx, dry_run=dry_run) as db:
        if maildir is not None:
            report = bounceprocess.process_maildir(db, settings, maildir, dry_run=dry_run)
        elif imap:
            report = bounceimap.process_imap(db, settings, dry_run=dry_run)
        elif mbox is not None:
            report = bounceprocess.process_mbox(db, settings, mbox, dry_run=dry_run)
        else:
            data = sys.stdin.buffer.read()
            report = bounceprocess.ProcessReport(
                [bounceprocess.process_bytes(db, settings, data, "stdin", dry_run=dry_run)]
            )
    _print_report(report, dry_run)


def _print_report(report: ProcessReport, dry_run: bool) -> None:
    would = "would become" if dry_run else "now"
    for outcome in report.outcomes:
        for change in outcome.changes:
            if change.duplicate:
                continue
            state = f"{would} {change.status}" if change.changed else f"still {change.status}"
            click.echo(f"{outcome.where}: {change.email}: {change.kind} (score {change.score:g}), {state}")
    verdicts = ("bounce", "complaint", "auto-reply", "delayed", "unrecognised")
    counts = ", ".join(f"{report.count(v)} {v}" for v in verdicts)
    prefix = "Dry run, nothing changed: " if dry_run else ""
    click.echo(f"{prefix}{len(report.outcomes)} message(s): {counts}; {len(report.changed)} subscriber(s) changed")


@bounces_group.command("list")
@click.option("--email", help="Only this subscriber's bounces.")
@click.pass_context
def list_bounces(ctx: click.Context, email: str | None) -> None:
    """List recorded bounces and complaints, newest first."""
    from digest import store, subscribers

    address = subscribers.normalise_email(email) if email else None
    with _database(ctx) as db:
        rows = store.list_bounces(db, address)
    for row in rows:
        code = row.status_code or "-"
        click.echo(
            f"{row.received}  {row.email}  {row.kind}  {code}  digest {row.digest_id or '-'}"
            f"  {row.source}  {row.diagnostic[:100]}"
        )
    if not rows:
        click.echo("No bounces recorded.")


@click.command("reactivate")
@click.argument("email")
@click.option("--force", is_flag=True, help="After a spam complaint: mail a confirmation link (with their consent).")
@click.pass_context
def reactivate(ctx: click.Context, email: str, force: bool) -> None:
    """Undo a bounce: make a bounced subscriber active again, score reset.

    Only a bounce is undone directly (the reader never chose it). An address
    that reported the digest as spam comes back only by confirming: with
    --force it is mailed a confirmation link. One that unsubscribed needs
    `digest subscribers add --resubscribe`.
    """
    from digest import resubscribe, store, subscribers

    address = subscribers.normalise_email(email)
    with _database(ctx) as db:
        row = store.get_by_email(db, address)
        if row is None:
            raise InputError(f"{address} is not a subscriber")
        if row.status == "active":
            click.echo(f"{address} is already active (nothing changed)")
            return
        if row.unsubscribe_reason == "complaint":
            if not force:
                raise InputError(f"{address} reported the digest as spam", hint="use --force only with their consent")
            resubscribe.by_owner(ctx.obj.settings, db, row, after_complaint=True)
            click.echo(f"Mailed a confirmation link to {address}: subscribed again once they press its button")
            return
        if row.status != "bounced":
            raise InputError(
                f"{address} is {row.status}", hint="`digest subscribers add --resubscribe` mails them a confirmation"
            )
        store.reactivate(db, row.id)
    click.echo(f"Reactivated {address}")
