"""The ``digest`` command line (click). Thin: parse options, call, print.

Every DigestError becomes one ``Error: ...`` line on stderr and its exit code
(2 for configuration and input, 1 for runtime failures).

The commands live beside it (cli_check.py, cli_send.py, cli_subscribers.py,
cli_feeds.py, cli_bounces.py, cli_signup.py) and share cli_app.py's ``App``.
Each command imports the stages it uses inside its own body, so `digest
--help` costs little more than click itself and `subscribers list` never
loads feedparser, Jinja, premailer or APScheduler (tests/test_startup.py
pins which modules each command may import).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.cli_app import App, configure_logging, pass_app
from digest.cli_bounces import bounces_group, reactivate
from digest.cli_check import check
from digest.cli_feeds import feeds_group
from digest.cli_send import send
from digest.cli_signup import form_snippet
from digest.cli_subscribers import subscribers_group
from digest.errors import DigestError


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
    from digest.wiring import wire

    settings = app.settings
    configure_logging(settings, app.verbose, daemon=True)
    daemon.run_daemon(wire(settings), reload=lambda: load_settings(app.env_file).with_db(app.db_path))


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


cli.add_command(check)
cli.add_command(send)
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
    configure_logging(settings, app.verbose, daemon=True)
    server = WebServer(settings)

    def ready(host: str, port: int) -> None:
        click.echo(f"Serving the web app on http://{host}:{port}: {served_pages(settings)} (Ctrl-C to stop)", err=True)

    signal_name = serve_until_signalled(server, ready)
    click.echo(f"Stopped ({signal_name or 'done'}).", err=True)


def main() -> None:
    cli(prog_name="digest")
