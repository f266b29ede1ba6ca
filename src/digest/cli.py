"""The ``digest`` command line (click). Thin: parse options, call, print.

Every DigestError becomes one ``Error: ...`` line on stderr and its exit code
(2 for configuration and input, 1 for runtime failures).

Each command imports the stages it uses inside its own body, so `digest
--help` costs little more than click itself and `subscribers list` never
loads feedparser, Jinja, premailer or APScheduler (tests/test_startup.py
pins which modules each command may import).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import __version__, exitcodes
from digest.cli_bounces import bounces_group, reactivate
from digest.cli_feeds import feeds_group
from digest.cli_signup import form_snippet
from digest.cli_subscribers import subscribers_group
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest import pipeline
    from digest.config import Settings


@dataclass
class App:
    env_file: Path | None
    db_path: Path | None
    verbose: int
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from digest.config import load_settings

            self._settings = load_settings(self.env_file).with_db(self.db_path)
            _configure_logging(self._settings, self.verbose)
            for warning in self._settings.warnings:
                click.echo(f"Warning: {warning}", err=True)
        return self._settings


def _configure_logging(settings: Settings, verbose: int, *, daemon: bool = False) -> None:
    if verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        # One-shot commands stay quiet (their output is the report) unless
        # DIGEST_LOG_LEVEL asks for more; the daemon logs its events.
        level = getattr(logging, settings.log_level or ("INFO" if daemon else "WARNING"))
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


class DigestGroup(click.Group):
    """Turns DigestError (a failing database included: DatabaseError) into one clean line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env",
    "env_file",
    type=click.Path(path_type=Path),
    help="Read settings from this env file (default: ./.env when present).",
)
@click.option("--db", "db_path", type=click.Path(path_type=Path), help="SQLite database (overrides DIGEST_DB).")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None, db_path: Path | None, verbose: int) -> None:
    """Send a blog's new posts to its subscribers as one email digest."""
    ctx.obj = App(env_file, db_path, verbose)


pass_app = click.make_pass_decorator(App)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (one object, a `feeds` list).")
@click.option("--retry-gone", is_flag=True, help="Fetch feeds marked gone (HTTP 410) again.")
@pass_app
def check(app: App, as_json: bool, retry_gone: bool) -> None:
    """Fetch the feeds and record new entries; list what is new.

    Exits 1 when any feed failed or is gone (after checking all of them).
    """
    from digest import pipeline, store

    settings = app.settings
    with store.opened(settings.db_path) as db:
        reports = pipeline.check_feeds(db, settings, retry_gone=retry_gone)
    if as_json:
        click.echo(json.dumps({"feeds": [_feed_json(r) for r in reports]}, indent=2))
    else:
        for report in reports:
            for line in _feed_lines(report, settings):
                click.echo(line)
    failed = [r for r in reports if r.failed]
    if failed:
        click.echo(f"Error: {len(failed)} of {len(reports)} feed(s) failed; the others were checked", err=True)
        sys.exit(1)


def _feed_lines(report: pipeline.FeedReport, settings: Settings) -> list[str]:
    name = report.title or report.url
    # Failure messages begin with the URL; prefix the title only when there is one.
    prefix = f"{report.title}: " if report.title else ""
    if report.status == "gone":
        return [f"{prefix}GONE: {report.error}", "  remove it from DIGEST_FEED_URL (or `digest check --retry-gone`)"]
    if report.status == "error":
        return [f"{prefix}FAILED: {report.error}"]
    count = f"{len(report.new)} new" if report.new else "nothing new"
    if report.status == "not-modified":
        lines = [f"{name}: not modified"]
    elif report.first_run and report.skipped:
        older = f"{report.skipped} older entr{'y' if report.skipped == 1 else 'ies'}"
        lines = [
            f"{name}: first check: {count}; {older} marked seen, never to be sent"
            f" (DIGEST_FIRST_RUN={settings.first_run})"
        ]
    else:
        lines = [f"{name}: {count}"]
    if report.elsewhere:
        lines.append(f"  {_posts(report.elsewhere)} already known under another feed address: not sent again")
    if report.moved_to:
        lines.append(f"  moved permanently to {report.moved_to}: fetched from there now; update DIGEST_FEED_URL")
    if report.warning:
        lines.append(f"  warning: ill-formed feed, read anyway: {report.warning}")
    for entry in report.new:
        when = entry.published.astimezone(settings.zone).date().isoformat() if entry.published else "undated   "
        lines.append(f"  {when}  {entry.title}")
        lines.append(f"              {entry.link or (entry.enclosures[0].url if entry.enclosures else '(no link)')}")
    return lines


def _feed_json(report: pipeline.FeedReport) -> dict[str, Any]:
    return {
        "url": report.url,
        "title": report.title,
        "status": report.status,
        "http_status": report.http_status,
        "error": report.error,
        "fetched_from": report.fetched_from,
        "moved_to": report.moved_to,
        "warning": report.warning,
        "first_run": report.first_run,
        "skipped": report.skipped,
        "elsewhere": report.elsewhere,
        "new": [
            {
                "title": e.title,
                "link": e.link,
                "published": e.published.isoformat() if e.published else None,
                "first_seen": e.first_seen.isoformat(),
                "author": e.author,
                "enclosures": [{"url": m.url, "type": m.type, "length": m.length} for m in e.enclosures],
            }
            for e in report.new
        ],
    }


@cli.command(short_help="Check the feeds and send what is due to every subscriber.")
@click.option("--dry-run", is_flag=True, help="Render and preview only: no mail, no database change.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a dry run writes digest.html/.txt/.eml (default: a new temporary folder).",
)
@click.option(
    "--to", "to_email", metavar="EMAIL", help="Send the current digest to this one address only (a test send)."
)
@click.option(
    "--digest",
    "digest_id",
    type=int,
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
    from digest import pipeline, signals
    from digest.progress import SendProgress

    settings = app.settings
    if dry_run:
        code = _dry_run(settings, output, open_browser, as_json)
        if code and not as_json:
            click.echo(f"Error: a feed could not be read, so this preview may lack its posts (exit {code})", err=True)
        sys.exit(code)
    if output or open_browser:
        raise click.UsageError("--output and --open go with --dry-run")
    if digest_id is not None and not to_email:
        raise click.UsageError("--digest goes with --to")
    if to_email:
        _test_send(settings, to_email, digest_id, as_json)
        return
    progress = SendProgress()
    with signals.stop_on_signals() as stop:
        try:
            outcome = pipeline.send(settings, progress=progress, stop=stop.event)
        finally:
            progress.close()
    interrupted = f"; interrupted by {stop.signal.name}" if stop.signal else ""
    feeds_failed = sum(1 for feed in outcome.feeds if feed.failed)
    code = exitcodes.for_send(
        feeds_failed=feeds_failed,
        failed=sum(r.failed for r in outcome.digests),
        still_owed=sum(r.remaining for r in outcome.digests),
    )
    if stop.signal is not None:
        code = stop.exit_code
    if as_json:
        click.echo(json.dumps(_send_json(outcome, code), indent=2))
        sys.exit(code)
    _echo_feed_notes(outcome.feeds, settings)
    if not outcome.digests:
        click.echo("Nothing new to send.")
    for r in outcome.digests:
        for line in _send_report_lines(r, interrupted):
            click.echo(line)
        for error in r.errors[:10]:
            click.echo(f"  failed: {error}", err=True)
        if len(r.errors) > 10:
            click.echo(f"  ... and {len(r.errors) - 10} more (see `digest status`)", err=True)
    if stop.signal is not None:
        if not outcome.digests:
            click.echo(f"Interrupted by {stop.signal.name} before any digest was sent.")
        sys.exit(code)
    if code != exitcodes.OK:
        reasons = []
        if feeds_failed:
            reasons.append(f"{feeds_failed} feed(s) could not be read")
        failed = sum(r.failed for r in outcome.digests)
        if failed:
            reasons.append(f"{failed} delivery(ies) failed")
        owed = sum(r.remaining for r in outcome.digests)
        if owed:
            reasons.append(f"{owed} subscriber(s) still owed a digest")
        click.echo(f"Error: not everything was sent: {'; '.join(reasons)} (exit {code})", err=True)
    sys.exit(code)


def _test_send(settings: Settings, to_email: str, digest_id: int | None, as_json: bool) -> None:
    from digest import pipeline

    plan, result = pipeline.send_to_one(settings, to_email, digest_id=digest_id)
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


def _echo_feed_notes(feeds: list[pipeline.FeedReport], settings: Settings, *, dry_run: bool = False) -> None:
    for feed in feeds:
        if feed.failed:
            click.echo(f"Warning: feed {feed.url} failed: {feed.error}", err=True)
        if feed.elsewhere:
            click.echo(
                f"Note: {feed.title or feed.url}: {_posts(feed.elsewhere)} already known under another "
                "feed address: not sent again"
            )
        if not feed.failed and feed.first_run and feed.skipped:
            posts = "1 older post" if feed.skipped == 1 else f"{feed.skipped} older posts"
            verb = "would be" if dry_run else ("was" if feed.skipped == 1 else "were")
            click.echo(
                f"Note: {feed.title or feed.url}: first check: {posts} {verb} marked as already sent; "
                f"DIGEST_FIRST_RUN={settings.first_run}"
            )


def _posts(count: int) -> str:
    return "1 post" if count == 1 else f"{count} posts"


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
        "feeds": [_feed_json(r) for r in outcome.feeds],
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


def _dry_run(settings: Settings, output: Path | None, open_browser: bool, as_json: bool = False) -> int:
    import tempfile
    import webbrowser

    from digest import pipeline
    from digest.render import html_size_report

    target = output or Path(tempfile.mkdtemp(prefix="digest-preview-"))
    result = pipeline.preview(settings, target)
    code = exitcodes.FAILURE if any(feed.failed for feed in result.feeds) else exitcodes.OK
    if as_json:
        plan = result.plan
        click.echo(
            json.dumps(
                {
                    "exit_code": code,
                    "dry_run": True,
                    "feeds": [_feed_json(r) for r in result.feeds],
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


@cli.command(short_help="Run the daemon: scheduled checks and sends.")
@pass_app
def run(app: App) -> None:
    """Run the daemon: check the feeds every DIGEST_CHECK_INTERVAL, send on DIGEST_SCHEDULE.

    Logs to stderr. Stops cleanly on SIGTERM or Ctrl-C: the messages in flight
    finish and the rest of an interrupted digest goes out at the next start.
    Holds the database's sender lock while it runs, so `digest send` (or a
    second `digest run`) on the same database is refused meanwhile.
    """
    from digest import daemon
    from digest.config import load_settings

    settings = app.settings
    _configure_logging(settings, app.verbose, daemon=True)
    daemon.run_daemon(settings, reload=lambda: load_settings(app.env_file).with_db(app.db_path))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object (see the README).")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Show feeds, pending entries, subscribers and recent digests."""
    from digest.status import build_status

    report = build_status(app.settings)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, default=str))
        return
    for line in report.lines():
        click.echo(line)


cli.add_command(subscribers_group)
cli.add_command(feeds_group)
cli.add_command(bounces_group)
cli.add_command(form_snippet)
subscribers_group.add_command(reactivate)


@cli.command(short_help="Serve the web app alone.")
@pass_app
def serve(app: App) -> None:
    """Serve the web app (sign-up, confirm, archive, subscriber's page, unsubscribe) alone, until Ctrl-C or SIGTERM.

    For owners who send from cron; `digest run` serves it beside the scheduler.
    Needs DIGEST_HTTP_LISTEN and DIGEST_SECRET.
    """
    from digest.web import served_pages
    from digest.web.server import WebServer, serve_until_signalled

    settings = app.settings
    _configure_logging(settings, app.verbose, daemon=True)
    server = WebServer(settings)

    def ready(host: str, port: int) -> None:
        click.echo(f"Serving the web app on http://{host}:{port}: {served_pages(settings)} (Ctrl-C to stop)", err=True)

    signal_name = serve_until_signalled(server, ready)
    click.echo(f"Stopped ({signal_name or 'done'}).", err=True)


def main() -> None:
    cli(prog_name="digest")
