"""A feed read by another address is the same feed: nothing is sent twice.

The user's real mistake, reproduced: the feed first read from a local path,
then from its URL on a real HTTP server on 127.0.0.1 (and from https, and
from a new host), with real sends to an aiosmtpd sink in between. Plus the
`digest feeds` commands that manage the feeds table.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import EXAMPLE_FEED, FeedHost, FeedResource, SmtpServer, add_subscribers, run_cli

FEED = EXAMPLE_FEED.read_text(encoding="utf-8")

NEW_ENTRY = """  <entry>
    <title>A brand new post</title>
    <link href="https://fieldnotes.example.org/2026/12/01/brand-new/" rel="alternate" type="text/html"/>
    <id>https://fieldnotes.example.org/2026/12/01/brand-new</id>
    <published>2026-12-01T09:00:00+00:00</published>
    <updated>2026-12-01T09:00:00+00:00</updated>
    <content type="html">&lt;p&gt;Fresh.&lt;/p&gt;</content>
  </entry>
"""


def with_new_entry(feed: str) -> str:
    return feed.replace("  <entry>", NEW_ENTRY + "  <entry>", 1)


def subjects(server: SmtpServer) -> list[str]:
    return [message.message["Subject"] for message in server.received]


def serve(feed_host: FeedHost, path: str, body: str) -> str:
    feed_host.resources[path] = FeedResource(body.encode("utf-8"), content_type="application/atom+xml")
    return feed_host.url(path)


def test_a_feed_moved_from_a_path_to_its_url_sends_nothing_twice(
    smtp_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost, tmp_path: Path
) -> None:
    local = tmp_path / "site" / "feed.xml"
    local.parent.mkdir()
    local.write_text(FEED, encoding="utf-8")
    environ = {**smtp_env, "DIGEST_FEED_URL": str(local), "DIGEST_FIRST_RUN": "latest:3"}
    add_subscribers(environ, "ada@example.com")
    assert run_cli(["send"], environ).exit_code == 0
    assert len(smtp_server.received) == 1

    moved = {**environ, "DIGEST_FEED_URL": serve(feed_host, "/feed.xml", FEED)}
    result = run_cli(["send"], moved)
    assert result.exit_code == 0, result.output
    assert "Nothing new to send." in result.output
    assert "4 posts already known under another feed address: not sent again" in result.output
    assert len(smtp_server.received) == 1

    serve(feed_host, "/feed.xml", with_new_entry(FEED))
    result = run_cli(["send"], moved)
    assert result.exit_code == 0, result.output
    assert len(smtp_server.received) == 2
    assert "A brand new post" in subjects(smtp_server)[1]
    assert "(+" not in subjects(smtp_server)[1]  # only the new post


def test_http_to_https_and_a_new_host_are_the_same_feed(
    smtp_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost
) -> None:
    environ = {**smtp_env, "DIGEST_FEED_URL": serve(feed_host, "/a.xml", FEED)}
    add_subscribers(environ, "ada@example.com")
    run_cli(["send"], environ)
    # Links and guids on http instead of https: the link is the same page.
    http = FEED.replace("https://fieldnotes.example.org", "http://fieldnotes.example.org")
    http = http.replace("<id>http://", "<id>tag:")  # new guids too, so only the link can tell
    assert run_cli(["send"], {**environ, "DIGEST_FEED_URL": serve(feed_host, "/b.xml", http)}).exit_code == 0
    # The blog moved host: new guids, new links, same paths and titles.
    moved = FEED.replace("fieldnotes.example.org", "notes.example.net").replace("<id>https://", "<id>urn:x:")
    result = run_cli(["send"], {**environ, "DIGEST_FEED_URL": serve(feed_host, "/c.xml", moved)})
    assert result.exit_code == 0 and "Nothing new to send." in result.output
    assert len(smtp_server.received) == 1


def test_feeds_list_remove_and_move(smtp_env: dict[str, str], feed_host: FeedHost, tmp_path: Path) -> None:
    typo = {**smtp_env, "DIGEST_FEED_URL": feed_host.url("/fed.xml")}  # 404: a mistyped URL
    assert run_cli(["check"], typo).exit_code == 1
    good_url = serve(feed_host, "/feed.xml", FEED)
    environ = {**smtp_env, "DIGEST_FEED_URL": good_url}
    assert run_cli(["check"], environ).exit_code == 0

    listing = run_cli(["feeds", "list"], environ)
    assert listing.exit_code == 0
    assert f"{typo['DIGEST_FEED_URL']}  (not in DIGEST_FEED_URL)" in listing.output
    assert "Field Notes: active, 4 entries, 0 in digests, 3 pending" in listing.output
    data = json.loads(run_cli(["feeds", "list", "--json"], environ).stdout)
    assert [(f["url"], f["configured"]) for f in data["feeds"]] == [
        (typo["DIGEST_FEED_URL"], False), (good_url, True)
    ]  # fmt: skip

    refused = run_cli(["feeds", "remove", good_url], environ)
    assert refused.exit_code == 2 and "is still in DIGEST_FEED_URL" in refused.output
    assert run_cli(["feeds", "remove", "https://nowhere.example/x"], environ).exit_code == 2
    removed = run_cli(["feeds", "remove", typo["DIGEST_FEED_URL"]], environ)
    assert removed.exit_code == 0 and "Removed" in removed.output
    assert typo["DIGEST_FEED_URL"] not in run_cli(["status"], environ).output

    # Move the good feed to a local path: entries come along, no first run, nothing new.
    local = tmp_path / "feed.xml"
    local.write_text(FEED, encoding="utf-8")
    moved = run_cli(["feeds", "move", good_url, str(local)], environ)
    assert moved.exit_code == 0, moved.output
    assert "Now set DIGEST_FEED_URL" in moved.output
    local_env = {**environ, "DIGEST_FEED_URL": str(local)}
    check = run_cli(["check", "--json"], local_env)
    (feed,) = json.loads(check.stdout)["feeds"]
    assert (feed["first_run"], feed["new"], feed["elsewhere"]) == (False, [], 0)
    assert "3 pending" in run_cli(["feeds", "list"], local_env).output


def test_a_removed_feed_keeps_its_history(
    smtp_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost, tmp_path: Path
) -> None:
    url = serve(feed_host, "/feed.xml", FEED)
    environ = {**smtp_env, "DIGEST_FEED_URL": url}
    add_subscribers(environ, "ada@example.com")
    run_cli(["send"], environ)
    local = tmp_path / "feed.xml"
    local.write_text(FEED, encoding="utf-8")
    other = {**environ, "DIGEST_FEED_URL": str(local)}
    assert run_cli(["feeds", "remove", url], other).exit_code == 0
    assert url in run_cli(["feeds", "list", "--all"], other).output
    result = run_cli(["send"], other)
    assert "Nothing new to send." in result.output
    assert len(smtp_server.received) == 1
