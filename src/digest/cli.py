"""The ``digest`` command line (click). Thin: parse options, call, print.

Every DigestError becomes one ``Error: ...`` line on stderr and its exit code
(2 for configuration and input, 1 for runtime failures).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from digest import __version__, pipeline, store, subscribers
from digest.config import Settings, load_settings
from digest.errors import DigestError
from digest.progress import SendProgress
from digest.render import html_size_report


@dataclass
class App:
    env_file: Path | None
    db_path: Path | None
    verbose: int
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.env_file).with_db(self.db_path)
            _configure_logging(self._settings, self.verbose)
        return self._settings


def _configure_logging(settings: Settings, verbose: int, *, daemon: bool = False) -> None:
    if verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    elif daemon:
        level = getattr(logging, settings.log_level)
    else:
        level = max(logging.WARNING, getattr(logging, settings.log_level))
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


class DigestGroup(click.Group):
    """Turns DigestError into one clean line and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env", "env_file", type=click.Path(path_type=Path), help="Read settings from this env file (default: ./.env)."
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
@click.option("--json", "as_json", is_flag=True, help="Print the new entries as JSON.")
@pass_app
def check(app: App, as_json: bool) -> None:
    """Fetch the feeds and record new entries; list what is new."""
    settings = app.settings
    db = store.open_db(settings.db_path)
    try:
        reports = pipeline.check_feeds(db, settings)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps([_feed_json(r) for r in reports], indent=2))
    else:
        for report in reports:
            name = report.title or report.url
            if report.status == "error":
                click.echo(f"{name}: failed: {report.error}")
                continue
            state = "not modified" if report.status == "not-modified" else f"{len(report.new)} new"
            click.echo(f"{name}: {state}")
            for entry in report.new:
                when = entry.published.date().isoformat() if entry.published else "undated"
                click.echo(f"  {when}  {entry.title}\n              {entry.link or '(no link)'}")
    if any(r.status == "error" for r in reports):
        sys.exit(1)


def _feed_json(report: pipeline.FeedReport) -> dict[str, Any]:
    return {
        "url": report.url,
        "title": report.title,
        "status": report.status,
        "error": report.error,
        "new": [
            {"title": e.title, "link": e.link, "published": e.published.isoformat() if e.published else None,
             "author": e.author}
            for e in report.new
        ],
    }  # fmt: skip


@cli.command()
@click.option("--dry-run", is_flag=True, help="Render and preview only: no mail, no database change.")
@click.option(
    "--output", type=click.Path(file_okay=False, path_type=Path), help="Where a dry run writes digest.html/.txt/.eml."
)
@click.option(
    "--to", "to_email", metavar="EMAIL", help="Send the current digest to this one address only (a test send)."
)
@click.option("--open", "open_browser", is_flag=True, help="With --dry-run: open the HTML preview in a browser.")
@pass_app
def send(app: App, dry_run: bool, output: Path | None, to_email: str | None, open_browser: bool) -> None:
    """Check the feeds and send the digest of new entries to every active subscriber."""
    settings = app.settings
    if dry_run:
        _dry_run(settings, output, open_browser)
        return
    if output or open_browser:
        raise click.UsageError("--output and --open go with --dry-run")
    if to_email:
        plan, result = pipeline.send_to_one(settings, to_email)
        if result.status != "sent":
            raise DigestError(f"test send to {to_email} failed: {result.error}")
        click.echo(f"Sent digest {plan.subject!r} ({len(plan.entries)} entries) to {to_email} only.")
        return
    progress = SendProgress()
    try:
        outcome = pipeline.send(settings, progress=progress)
    finally:
        progress.close()
    for feed in outcome.feeds:
        if feed.status == "error":
            click.echo(f"Warning: feed {feed.url} failed: {feed.error}", err=True)
    if not outcome.digests:
        click.echo("Nothing new to send.")
    for r in outcome.digests:
        verb = "Resumed" if r.resumed else "Sent"
        click.echo(
            f"{verb} digest {r.digest_id} {r.subject!r}: {r.entries} entries; {r.sent} sent, {r.failed} failed, "
            f"{r.skipped} already had it; {r.elapsed:.1f}s ({r.rate:.1f} msg/s)"
        )
        for error in r.errors[:10]:
            click.echo(f"  failed: {error}", err=True)


def _dry_run(settings: Settings, output: Path | None, open_browser: bool) -> None:
    target = output or Path(tempfile.mkdtemp(prefix="digest-preview-"))
    result = pipeline.preview(settings, target)
    for feed in result.feeds:
        if feed.status == "error":
            click.echo(f"Warning: feed {feed.url} failed: {feed.error}", err=True)
    if result.plan is None:
        click.echo("Nothing new to send: no digest would go out now.")
        return
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


@cli.command()
@pass_app
def status(app: App) -> None:
    """Show feeds, pending entries, subscribers and recent digests."""
    settings = app.settings
    if not settings.db_path.exists():
        click.echo(f"No database yet at {settings.db_path}: run `digest check` or `digest send` first.")
        return
    db = store.open_db(settings.db_path)
    try:
        click.echo(f"Database: {settings.db_path}")
        click.echo("Feeds:")
        for feed in db.query("SELECT * FROM feeds ORDER BY id"):
            problem = f" - {feed['last_error']}" if feed["last_error"] else ""
            click.echo(f"  {feed['title'] or feed['url']}: last checked {feed['last_checked'] or 'never'}"
                       f" ({feed['last_status'] or '-'}){problem}")  # fmt: skip
        click.echo(f"Pending entries: {store.pending_count(db)}")
        counts = subscribers.status_counts(db)
        click.echo("Subscribers: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        click.echo("Recent digests:")
        rows = pipeline.summary_rows(db)
        if not rows:
            click.echo("  none yet")
        for row in rows:
            click.echo(f"  #{row['id']} {row['created']} {row['status']}: {row['subject']!r} "
                       f"({row['entry_count']} entries; {row['sent']} sent, {row['failed']} failed)")  # fmt: skip
    finally:
        db.close()


@cli.group("subscribers")
def subscribers_group() -> None:
    """Manage the subscriber list."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", help="The subscriber's name, for the To header.")
@click.option("--resubscribe", is_flag=True, help="Reactivate an address that unsubscribed or bounced.")
@pass_app
def subscribers_add(app: App, email: str, name: str | None, resubscribe: bool) -> None:
    """Add a subscriber (validated and normalised)."""
    db = store.open_db(app.settings.db_path)
    try:
        result = subscribers.add_subscriber(db, email, name, resubscribe=resubscribe)
    finally:
        db.close()
    messages = {
        "added": "Added",
        "already-active": "Already subscribed (nothing changed):",
        "resubscribed": "Resubscribed",
    }
    click.echo(f"{messages[result.outcome]} {result.subscriber.email}")


@subscribers_group.command("remove")
@click.argument("email")
@pass_app
def subscribers_remove(app: App, email: str) -> None:
    """Unsubscribe an address (kept on record, never mailed again)."""
    db = store.open_db(app.settings.db_path)
    try:
        removed = subscribers.remove_subscriber(db, email)
    finally:
        db.close()
    click.echo(f"Unsubscribed {removed.email}")


@subscribers_group.command("list")
@click.option("--status", type=click.Choice(["active", "unsubscribed", "bounced", "all"]), default="active",
              show_default=True, help="Which subscribers to list.")  # fmt: skip
@pass_app
def subscribers_list(app: App, status: str) -> None:
    """List subscribers."""
    db = store.open_db(app.settings.db_path)
    try:
        count = 0
        for row in subscribers.iter_subscribers(db, status):
            count += 1
            click.echo(f"{row['email']}\t{row['name'] or ''}\t{row['status']}")
    finally:
        db.close()
    click.echo(f"{count} subscriber(s)", err=True)


def main() -> None:
    cli(prog_name="digest")
