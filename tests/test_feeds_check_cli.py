"""`digest check` (and the feed side of `status`, `send --dry-run`) as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import FIXTURES, FeedHost, FeedResource, SmtpServer, add_subscribers, run_cli

FEEDS = FIXTURES / "feeds"


@pytest.mark.parametrize(
    ("name", "first_line", "titles"),
    [
        ("wordpress-rss2.xml", "Allotment Diaries: 2 new", ["Leeks & the art of waiting"]),
        ("hugo-rss.xml", "Lattice Notes: 2 new", ["Ordering partial orders", "Fixed points"]),
        ("atom-xml-base.xml", "Relative Paths: 2 new", ["Images that move with the page"]),
        ("rss1-rdf.xml", "Department Notices: 2 new", ["Seminar moved to room 3"]),
        ("podcast.xml", "Soldering Hour: 2 new", ["Episode 12: Flux"]),
        ("latin1.xml", "Café Crème: 1 new", ["Crème brûlée à la française"]),
        ("windows1252.xml", "Smart “Quotes” Weekly: 1 new", ["It’s all “curly” — €5 well spent"]),
        ("no-guids.xml", "Handwritten: 3 new", ["First post", "No title, no link, no date"]),
        ("shared-link.xml", "Release Notes: 3 new", ["Version 2.1", "Version 2.0", "Version 1.9"]),
        ("ill-formed.xml", "Sloppy & Co: 2 new", ["Tom & Jerry review"]),
        ("atom03-content-types.xml", "Old Atom: 3 new", ["Plain text content"]),
        ("atom10-content-types.xml", "Modern Atom: 2 new", ["Text body"]),
    ],
)
def test_check_on_each_fixture_lists_what_is_new(
    env: dict[str, str], name: str, first_line: str, titles: list[str]
) -> None:
    result = run_cli(["check"], {**env, "DIGEST_FEED_URL": str(FEEDS / name), "DIGEST_FIRST_RUN": "all"})

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == first_line
    for title in titles:
        assert f"  {title}" in result.stdout
    again = run_cli(["check"], {**env, "DIGEST_FEED_URL": str(FEEDS / name)})
    assert again.stdout.splitlines()[0].endswith(": nothing new")


def test_check_on_an_html_page_is_one_clear_error(env: dict[str, str]) -> None:
    page = FEEDS / "html-page.html"

    result = run_cli(["check"], {**env, "DIGEST_FEED_URL": str(page)})

    assert result.exit_code == 1
    assert "got an HTML page, not an RSS or Atom feed" in result.output
    assert result.output.splitlines()[-1] == "Error: 1 of 1 feed(s) failed; the others were checked"
    assert "Traceback" not in result.output


def test_check_shows_dates_in_the_configured_time_zone_and_links(env: dict[str, str]) -> None:
    environ = {**env, "DIGEST_FEED_URL": str(FEEDS / "wordpress-rss2.xml"), "DIGEST_TIMEZONE": "America/Los_Angeles"}

    result = run_cli(["check"], environ)

    # 2026-11-19 07:12 UTC is the evening before in Los Angeles.
    lines = result.output.splitlines()
    assert lines[1] == "  2026-11-18  Leeks & the art of waiting"
    assert lines[2].strip() == "https://allotment.example.net/2026/11/leeks-and-waiting/?utm_source=rss&utm_medium=rss"


def test_first_check_says_what_the_first_run_policy_held_back(env: dict[str, str]) -> None:
    environ = {**env, "DIGEST_FEED_URL": str(FEEDS / "shared-link.xml"), "DIGEST_FIRST_RUN": "latest:1"}

    result = run_cli(["check"], environ)

    assert result.output.splitlines()[0] == (
        "Release Notes: first check: 1 new; 2 older entries marked seen, never to be sent (DIGEST_FIRST_RUN=latest:1)"
    )
    assert "Version 2.1" in result.output and "Version 2.0" not in result.output


def test_check_json(env: dict[str, str]) -> None:
    environ = {**env, "DIGEST_FEED_URL": f"{FEEDS / 'podcast.xml'}, {FEEDS / 'missing.xml'}"}

    result = run_cli(["check", "--json"], environ)

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    podcast, missing = document["feeds"]
    assert podcast["status"] == "ok" and podcast["title"] == "Soldering Hour" and podcast["first_run"] is True
    episode = podcast["new"][0]
    assert episode["title"] == "Episode 12: Flux"
    assert episode["published"] == "2026-11-18T06:00:00+00:00"
    assert episode["enclosures"] == [
        {"url": "https://cdn.solder.example.fm/ep12.mp3", "type": "audio/mpeg", "length": 34816000}
    ]
    assert missing["status"] == "error" and "cannot read feed file" in missing["error"]
    assert missing["new"] == []


def test_one_failing_feed_does_not_stop_the_others(env: dict[str, str], feed_host: FeedHost) -> None:
    feed_host.resources["/down"] = FeedResource(b"", status=503)
    environ = {**env, "DIGEST_FEED_URL": f"{feed_host.url('/down')} {FEEDS / 'hugo-rss.xml'}"}

    result = run_cli(["check"], environ)

    assert result.exit_code == 1
    assert f"FAILED: {feed_host.url('/down')}: HTTP 503" in result.output
    assert "Lattice Notes: 2 new" in result.output
    status = run_cli(["status"], environ)
    assert "(503)" in status.output and "last error:" in status.output


def test_gone_feed_in_check_and_status(env: dict[str, str], feed_host: FeedHost) -> None:
    feed_host.resources["/feed"] = FeedResource((FEEDS / "hugo-rss.xml").read_bytes())
    environ = {**env, "DIGEST_FEED_URL": feed_host.url("/feed")}
    assert run_cli(["check"], environ).exit_code == 0
    feed_host.resources["/feed"] = FeedResource(b"", status=410)

    first = run_cli(["check"], environ)
    second = run_cli(["check"], environ)

    assert first.exit_code == second.exit_code == 1
    assert first.output.startswith("Lattice Notes: GONE: ")
    assert "HTTP 410 Gone" in first.output
    assert "no longer fetched" in second.output
    assert feed_host.count("/feed") == 2
    status = run_cli(["status"], environ)
    assert "Lattice Notes: GONE (HTTP 410 at " in status.output
    assert "Pending entries: 2" in status.output


def test_moved_feed_in_check_and_status(env: dict[str, str], feed_host: FeedHost) -> None:
    feed_host.resources["/old"] = FeedResource(status=301, headers={"Location": feed_host.url("/new")})
    feed_host.resources["/new"] = FeedResource((FEEDS / "hugo-rss.xml").read_bytes())
    environ = {**env, "DIGEST_FEED_URL": feed_host.url("/old")}

    result = run_cli(["check"], environ)

    assert result.exit_code == 0
    assert f"  moved permanently to {feed_host.url('/new')}: fetched from there now; update DIGEST_FEED_URL" in (
        result.output
    )
    status = run_cli(["status"], environ)
    assert f"moved permanently: fetched from {feed_host.url('/new')}" in status.output


def test_dry_run_after_a_check_that_found_new_entries_changes_nothing(
    smtp_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost, tmp_path: Path
) -> None:
    hugo = (FEEDS / "hugo-rss.xml").read_bytes()
    feed_host.resources["/feed"] = FeedResource(hugo, etag='"1"')
    environ = {**smtp_env, "DIGEST_FEED_URL": feed_host.url("/feed"), "DIGEST_FIRST_RUN": "all"}
    add_subscribers(environ, "ada@example.com")
    assert "Lattice Notes: 2 new" in run_cli(["check"], environ).output
    newer = hugo.replace(b"<item>", b"<item><title>Fresh</title><guid>fresh</guid></item><item>", 1)
    feed_host.resources["/feed"] = FeedResource(newer, etag='"2"')
    db = Path(environ["DIGEST_DB"])
    before = db.read_bytes()

    preview = run_cli(["send", "--dry-run", "--output", str(tmp_path / "out")], environ)

    assert preview.exit_code == 0, preview.output
    assert "Entries: 3" in preview.output and "  - Fresh" in preview.output
    assert db.read_bytes() == before
    assert smtp_server.received == []
    # The dry run recorded nothing: the next check still finds the new entry.
    assert "Lattice Notes: 1 new" in run_cli(["check"], environ).output


def test_several_feeds_make_one_digest_grouped_by_feed(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    environ = {
        **smtp_env,
        "DIGEST_FEED_URL": f"{FEEDS / 'hugo-rss.xml'},{FEEDS / 'podcast.xml'}",
        "DIGEST_FIRST_RUN": "all",
    }
    add_subscribers(environ, "ada@example.com")

    sent = run_cli(["send"], environ)

    assert sent.exit_code == 0, sent.output
    (message,) = smtp_server.received
    html, text = message.part("html"), message.part("plain")
    for title in ("Lattice Notes", "Soldering Hour"):
        assert f"## {title}" in text
        assert title in html
    assert text.index("Ordering partial orders") > text.index("## Lattice Notes")
    assert text.index("Episode 12: Flux") > text.index("## Soldering Hour")
    # A podcast episode without a page link still links its media.
    assert "https://cdn.solder.example.fm/ep12.mp3" in html
    assert "Media: https://cdn.solder.example.fm/ep12.mp3" in text
    assert run_cli(["send"], environ).output.startswith("Nothing new to send")


def test_a_feed_listed_twice_is_checked_once(env: dict[str, str]) -> None:
    path = str(FEEDS / "rss1-rdf.xml")

    result = run_cli(["check"], {**env, "DIGEST_FEED_URL": f"{path}, {path}"})

    assert result.exit_code == 0
    assert result.stdout.count("Department Notices") == 1
