"""``digest check``: fetch the feeds, record new entries, list what is new (click). Thin, like cli.py.

``feed_json`` and ``elsewhere_note`` also shape the feed part of ``digest send``'s output (cli_send.py).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from digest.cli_app import App, pass_app

if TYPE_CHECKING:
    from digest import feedcheck
    from digest.config import Settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (one object, a `feeds` list).")
@click.option("--retry-gone", is_flag=True, help="Fetch feeds marked gone (HTTP 410) again.")
@pass_app
def check(app: App, as_json: bool, retry_gone: bool) -> None:
    """Fetch the feeds and record new entries; list what is new.

    Exits 1 when any feed failed or is gone (after checking all of them).
    """
    from digest import feedcheck, store
    from digest.wiring import wire

    settings = app.settings
    with store.opened(settings.db_path) as db:
        reports = feedcheck.check_feeds(db, wire(settings), retry_gone=retry_gone)
    if as_json:
        click.echo(json.dumps({"feeds": [feed_json(r) for r in reports]}, indent=2))
    else:
        for report in reports:
            for line in _feed_lines(report, settings):
                click.echo(line)
    failed = [r for r in reports if r.failed]
    if failed:
        click.echo(f"Error: {len(failed)} of {len(reports)} feed(s) failed; the others were checked", err=True)
        sys.exit(1)


def _feed_lines(report: feedcheck.FeedReport, settings: Settings) -> list[str]:
    name = report.name
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
        lines.append(f"  {elsewhere_note(report)}")
    if report.moved_to:
        lines.append(f"  moved permanently to {report.moved_to}: fetched from there now; update DIGEST_FEED_URL")
    if report.warning:
        lines.append(f"  warning: ill-formed feed, read anyway: {report.warning}")
    for entry in report.new:
        when = entry.published.astimezone(settings.zone).date().isoformat() if entry.published else "undated   "
        lines.append(f"  {when}  {entry.title}")
        lines.append(f"              {entry.link or (entry.enclosures[0].url if entry.enclosures else '(no link)')}")
    return lines


def feed_json(report: feedcheck.FeedReport) -> dict[str, Any]:
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


def elsewhere_note(report: feedcheck.FeedReport) -> str:
    """The note on a feed's posts already known under another feed address (``check`` and ``send`` print it)."""
    return f"{posts(report.elsewhere)} already known under another feed address: not sent again"


def posts(count: int) -> str:
    return "1 post" if count == 1 else f"{count} posts"
