"""``digest feeds ...``: list, remove and move the feeds this database knows (click). Thin, like cli.py.

A feed is named by the URL or path written in DIGEST_FEED_URL. The database
keeps every feed it ever checked, so a mistyped URL or an old address stays
in `digest status` until it is removed here; `move` renames a feed whose
address changed so that it keeps its history and has no second first run.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from digest.config.values import feed_url_problem, is_feed_url
from digest.errors import InputError


def _feed_name(value: str) -> str:
    """A URL as written; a local path made absolute the way the configuration does it."""
    problem = feed_url_problem(value)
    if problem is not None:  # not taken for a path: "http://[::1" is no file to move a feed to
        raise InputError(problem)
    if is_feed_url(value):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else Path.cwd() / path)


@click.group("feeds", short_help="List, remove or move the feeds this database knows.")
def feeds_group() -> None:
    """List, remove or move the feeds this database knows."""


@feeds_group.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Also list removed feeds (kept for their history).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with a `feeds` list.")
@click.pass_context
def list_feeds(ctx: click.Context, include_removed: bool, as_json: bool) -> None:
    """List every feed with its entry counts and whether DIGEST_FEED_URL still names it."""
    from digest import store

    settings = ctx.obj.settings
    with store.opened(settings.db_path) as db:
        rows = store.feeds_overview(db, include_removed=include_removed)
    configured = {row.id: row.url in settings.feed_urls for row in rows}
    if as_json:
        listed = [{**asdict(row), "configured": configured[row.id]} for row in rows]
        click.echo(json.dumps({"feeds": listed}, indent=2))
        return
    if not rows:
        click.echo("No feeds yet: run `digest check`.")
    for row in rows:
        where = "" if configured[row.id] else "  (not in DIGEST_FEED_URL)"
        click.echo(f"{row.url}{where}")
        counts = f"{row.entries} entries, {row.in_digests} in digests, {row.pending} pending"
        click.echo(f"  {row.title or '(no title yet)'}: {row.status}, {counts}; "
                   f"last checked {row.last_checked or 'never'}")  # fmt: skip
        if row.fetch_url:
            click.echo(f"  fetched from {row.fetch_url} (moved permanently)")


@feeds_group.command("remove")
@click.argument("url")
@click.pass_context
def remove_feed(ctx: click.Context, url: str) -> None:
    """Forget the feed URL: drop its pending entries, keep what it sent as history.

    Refused while DIGEST_FEED_URL still names it (the next check would add it back).
    """
    from digest import store

    settings = ctx.obj.settings
    name = _feed_name(url)
    if name in settings.feed_urls:
        raise InputError(
            f"{name} is still in DIGEST_FEED_URL", hint="take it out first; the next check would add it back"
        )
    with store.opened(settings.db_path) as db:
        outcome, dropped = store.remove_feed(db, name)
    note = f"; {dropped} pending entries dropped" if dropped else ""
    if outcome == "deleted":
        click.echo(f"Removed {name}{note}.")
    else:
        click.echo(f"Removed {name}{note}; what it sent is kept, so those posts are never sent again.")


@feeds_group.command("move")
@click.argument("old")
@click.argument("new")
@click.pass_context
def move_feed(ctx: click.Context, old: str, new: str) -> None:
    """Name the feed OLD by NEW from now on: it keeps its entries and has no new first run.

    Use it when the blog's feed address changes (a local path to its URL,
    http to https, a new host), then put NEW in DIGEST_FEED_URL.
    """
    from digest import store

    settings = ctx.obj.settings
    old_name, new_name = _feed_name(old), _feed_name(new)
    if old_name == new_name:
        raise InputError("OLD and NEW are the same feed")
    with store.opened(settings.db_path) as db:
        store.move_feed(db, old_name, new_name)
    click.echo(f"Moved {old_name} -> {new_name}: its entries and history come along.")
    if settings.feed_urls and new_name not in settings.feed_urls:
        click.echo(f"Now set DIGEST_FEED_URL to {new_name} (it still names the old address).", err=True)
