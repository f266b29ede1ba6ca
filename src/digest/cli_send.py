"""``digest send``: a real send, a dry run (``--dry-run``) and a test send (``--to``) (click). Thin, like cli.py.

Each prints what the pipeline returns: lines for a person, or one JSON
object (``--json``); the exit code follows exitcodes.py.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import exitcodes
from digest.cli_app import App, pass_app
from digest.cli_check import elsewhere_note, feed_json
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest import feedcheck, pipeline
    from digest.config import Settings


@click.command(short_help="Check the feeds and send what is due to every subscriber.")
@click.option("--dry-run", is_flag=True, help="Render and preview only: no mail, no database change.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a dry run writes digest.html/.txt/.eml (default: a new, kept digest-preview-* folder in $TMPDIR).",
)
@click.option(
    "--to", "to_email", metavar="EMAIL", help="Send the current digest to this one address only (a test send)."
)
@click.option(
    "--digest",
    "digest_id",
    type=int,
    callback=lambda ctx, param, value: _digest_number(value),
    metavar="N",
    help="With --to: send digest N again (default: what is due, else the latest digest sent).",
)
@click.option("--open", "open_browser", is_flag=True, help="With --dry-run: open the HTML preview in a browser.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (see the README).")
@pass_app
def send(
    app: App,
    dry_run: bool,
    output: Path | None,
    to_email: str | None,
    digest_id: int | None,
    open_browser: bool,
    as_json: bool,
) -> None:
    """Check the feeds and send the digest of new entries to every active subscriber.

    First finishes any digest left unfinished (a crash, a stop, deferred
    recipients). --dry-run and --to record nothing. Exits 0 only when every
    feed was read and every owed message was accepted; see the README's exit
    code table.
    """
    settings = app.settings
    if dry_run:
        sys.exit(_dry_run_command(settings, output, open_browser, as_json))
    if output or open_browser:
        raise click.UsageError("--output and --open go with --dry-run")
    if digest_id is not None and not to_email:
        raise click.UsageError("--digest goes with --to")
    if to_email:
        _test_send(settings, to_email, digest_id, as_json)
        return
    sys.exit(_real_send(settings, as_json))


@dataclass(frozen=True)
class _Tally:
    """What a send run left undone, summed over its digests: the exit code follows it."""

    feeds_failed: int
    failed: int
    still_owed: int

    @classmethod
    def of(cls, outcome: pipeline.SendOutcome) -> _Tally:
        return cls(
            feeds_failed=sum(1 for feed in outcome.feeds if feed.failed),
            failed=sum(r.failed for r in outcome.digests),
            still_owed=sum(r.remaining for r in outcome.digests),
        )

    def reasons(self) -> str:
        reasons = []
        if self.feeds_failed:
            reasons.append(f"{self.feeds_failed} feed(s) could not be read")
        if self.failed:
            reasons.append(f"{self.failed} delivery(ies) failed")
        if self.still_owed:
            reasons.append(f"{self.still_owed} subscriber(s) still owed a digest")
        return "; ".join(reasons)


def _real_send(settings: Settings, as_json: bool) -> int:
    """Send what is due, print the outcome, and return the exit code."""
    from digest import pipeline, signals
    from digest.progress import SendProgress
    from digest.wiring import wire

    progress = SendProgress()
    with signals.stop_on_signals() as stop:
        try:
            outcome = pipeline.send(wire(settings), progress=progress, stop=stop.event)
        finally:
            progress.close()
    tally = _Tally.of(outcome)
    code = exitcodes.for_send(feeds_failed=tally.feeds_failed, failed=tally.failed, still_owed=tally.still_owed)
    if stop.signal is not None:
        code = stop.exit_code
    if as_json:
        click.echo(json.dumps(_send_json(outcome, code), indent=2))
        return code
    _echo_feed_notes(outcome.feeds, settings)
    _echo_digests(outcome, f"; interrupted by {stop.signal.name}" if stop.signal else "")
    if stop.signal is not None:
        if not outcome.digests:
            click.echo(f"Interrupted by {stop.signal.name} before any digest was sent.")
    elif code != exitcodes.OK:
        click.echo(f"Error: not everything was sent: {tally.reasons()} (exit {code})", err=True)
    return code


def _echo_digests(outcome: pipeline.SendOutcome, interrupted: str) -> None:
    if not outcome.digests:
        click.echo("Nothing new to send.")
    for r in outcome.digests:
        for line in _send_report_lines(r, interrupted):
            click.echo(line)
        for error in r.errors[:10]:
            click.echo(f"  failed: {error}", err=True)
        if len(r.errors) > 10:
            click.echo(f"  ... and {len(r.errors) - 10} more (see `digest status`)", err=True)


def _test_send(settings: Settings, to_email: str, digest_id: int | None, as_json: bool) -> None:
    from digest import preview
    from digest.wiring import wire

    plan, result = preview.send_to_one(wire(settings), to_email, digest_id=digest_id)
    if result.status != "sent":
        raise DigestError(f"test send to {to_email} failed: {result.error}")
    placeholder = not (settings.public_url and settings.secret)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "test_send": {
                        "to": result.recipient.email,
                        "digest": plan.id if plan.resumed else None,
                        "subject": plan.subject,
                        "entries": len(plan.entries),
                        "placeholder_unsubscribe": placeholder,
                    }
                },
                indent=2,
            )
        )
        return
    which = f"digest {plan.id} again" if plan.resent else "digest"
    click.echo(
        f"Sent {which} {plan.subject!r} ({len(plan.entries)} entries) to {result.recipient.email} only; "
        "nothing was recorded."
    )
    if placeholder:
        missing = " and ".join(
            k for k, v in (("DIGEST_PUBLIC_URL", settings.public_url), ("DIGEST_SECRET", settings.secret)) if not v
        )
        click.echo(
            f"Note: its unsubscribe link is a placeholder that works for nobody ({missing} not set); "
            "a real send is refused until it is set."
        )


def _echo_feed_notes(feeds: list[feedcheck.FeedReport], settings: Settings, *, dry_run: bool = False) -> None:
    for feed in feeds:
        if feed.failed:
            click.echo(f"Warning: feed {feed.url} failed: {feed.error}", err=True)
        if feed.elsewhere:
            click.echo(f"Note: {feed.name}: {elsewhere_note(feed)}")
        if not feed.failed and feed.first_run and feed.skipped:
            older = "1 older post" if feed.skipped == 1 else f"{feed.skipped} older posts"
            verb = "would be" if dry_run else ("was" if feed.skipped == 1 else "were")
            click.echo(
                f"Note: {feed.name}: first check: {older} {verb} marked as already sent; "
                f"DIGEST_FIRST_RUN={settings.first_run}"
            )


def _send_report_lines(r: pipeline.SendReport, interrupted: str = "") -> list[str]:
    verb = "Resumed" if r.resumed else "Sent"
    tally = f"{r.sent} sent, {r.failed} failed, {r.deferred} deferred"
    lines = [
        f"{verb} digest {r.digest_id} {r.subject!r} ({r.entries} entries): {tally}, "
        f"{r.skipped} skipped (had it already); {r.elapsed:.1f}s, {r.rate:.1f} msg/s{interrupted}"
    ]
    if r.bounced:
        lines.append(f"  {r.bounced} subscriber(s) marked bounced (permanent 5xx)")
    if not r.finished:
        reason = f"{r.deferred} deferred after temporary failures" if r.deferred else "stopped early"
        when = f" from {r.next_retry.isoformat(timespec='minutes')}" if r.next_retry else ""
        lines.append(
            f"  {r.remaining} subscriber(s) still owed this digest ({reason}); "
            f"`digest send` or the daemon retries them only{when}."
        )
    return lines


def _send_json(outcome: pipeline.SendOutcome, code: int) -> dict[str, Any]:
    return {
        "exit_code": code,
        "feeds": [feed_json(r) for r in outcome.feeds],
        "digests": [
            {
                "id": r.digest_id,
                "subject": r.subject,
                "entries": r.entries,
                "resumed": r.resumed,
                "sent": r.sent,
                "failed": r.failed,
                "deferred": r.deferred,
                "bounced": r.bounced,
                "skipped": r.skipped,
                "remaining": r.remaining,
                "finished": r.finished,
                "elapsed": round(r.elapsed, 3),
                "errors": r.errors,
            }
            for r in outcome.digests
        ],
    }


def _dry_run_command(settings: Settings, output: Path | None, open_browser: bool, as_json: bool) -> int:
    code = _dry_run(settings, output, open_browser, as_json)
    if code and not as_json:
        click.echo(f"Error: a feed could not be read, so this preview may lack its posts (exit {code})", err=True)
    return code


def _dry_run(settings: Settings, output: Path | None, open_browser: bool, as_json: bool = False) -> int:
    import tempfile
    import webbrowser

    from digest import preview
    from digest.render import html_size_report
    from digest.wiring import wire

    target = output or Path(tempfile.mkdtemp(prefix="digest-preview-"))
    result = preview.preview(wire(settings), target)
    code = exitcodes.FAILURE if any(feed.failed for feed in result.feeds) else exitcodes.OK
    if as_json:
        plan = result.plan
        click.echo(
            json.dumps(
                {
                    "exit_code": code,
                    "dry_run": True,
                    "feeds": [feed_json(r) for r in result.feeds],
                    "digest": None
                    if plan is None
                    else {
                        "resumes": plan.id if plan.resumed else None,
                        "subject": plan.subject,
                        "entries": [e.title for e in sorted(plan.entries, key=lambda e: e.sort_time, reverse=True)],
                        "notes": list(plan.notes),
                        "recipients": result.recipients,
                        "html_bytes": len(plan.html.encode("utf-8")),
                        "later": result.later,
                        "files": {kind: str(path) for kind, path in result.files.items()},
                    },
                },
                indent=2,
            )
        )
        return code
    _echo_feed_notes(result.feeds, settings, dry_run=True)
    if result.plan is None:
        click.echo("Nothing new to send: no digest would go out now.")
        return code
    plan = result.plan
    label = f"Resumes digest {plan.id}" if plan.resumed else "New digest"
    click.echo("Dry run: nothing was sent and the database is unchanged.")
    click.echo(f"{label}: {plan.subject}")
    click.echo(f"Entries: {len(plan.entries)}")
    for entry in sorted(plan.entries, key=lambda e: e.sort_time, reverse=True):
        click.echo(f"  - {entry.title}")
    for note in plan.notes:
        click.echo(f"Note: {note}")
    click.echo(f"Recipients: {result.recipients}")
    click.echo(f"HTML size: {html_size_report(plan.html)}")
    if result.later:
        click.echo(f"After it: {result.later} more digest(s) would go out in the same run.")
    click.echo(f"Preview: {target}")
    for path in result.files.values():
        click.echo(f"  {path}")
    if open_browser:
        webbrowser.open(result.files["html"].resolve().as_uri())
    return code


def _digest_number(value: int | None) -> int | None:
    """--digest N: a digest's id is a positive SQLite integer (64 bits); anything else is a usage error."""
    from digest.models import SQLITE_MAX_INTEGER  # only when --digest is given: --help stays light

    if value is not None and not 1 <= value <= SQLITE_MAX_INTEGER:
        raise click.BadParameter(f"no digest {value}: digests are numbered from 1")
    return value
