"""Entry identity and the first-run policy, through the real pipeline on real files.

Each test writes a feed file, checks it with ``feedcheck.check_feeds`` into a
real SQLite file, changes the feed the way real feeds change, and checks again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from sqlite_utils import Database

from digest import feedcheck, planning, store
from digest.config import Settings
from digest.wiring import wire
from helpers import settings_from


def item(
    title: str | None = None,
    *,
    link: str | None = None,
    guid: str | None = None,
    date: str | None = None,
    body: str = "Body.",
    enclosure: str | None = None,
) -> str:
    parts = ["<item>"]
    if title is not None:
        parts.append(f"<title>{escape(title)}</title>")
    if link is not None:
        parts.append(f"<link>{escape(link)}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(guid)}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    if enclosure is not None:
        parts.append(f'<enclosure url="{escape(enclosure)}" type="audio/mpeg" length="1"/>')
    parts.append(f"<description>{escape(body)}</description></item>")
    return "".join(parts)


def rss(*items: str, title: str = "Test Feed") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://blog.example/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    )


Check = Callable[..., list[str]]


@pytest.fixture
def feed_file(tmp_path: Path) -> Path:
    return tmp_path / "feed.xml"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return store.open_db(tmp_path / "state.db")


def make_settings(feed_file: Path, tmp_path: Path, first_run: str = "all", **extra: str) -> Settings:
    return settings_from({"DIGEST_FEED_URL": str(feed_file), "DIGEST_DB": str(tmp_path / "state.db"),
                          "DIGEST_FIRST_RUN": first_run, **extra})  # fmt: skip


@pytest.fixture
def check(feed_file: Path, tmp_path: Path, db: Database) -> Check:
    """Write ``feed`` to the feed file, check it, return the titles found new."""

    def run(feed: str, first_run: str = "all") -> list[str]:
        feed_file.write_text(feed, encoding="utf-8")
        (report,) = feedcheck.check_feeds(db, wire(make_settings(feed_file, tmp_path, first_run)))
        assert report.status == "ok", report.error
        return sorted(e.title for e in report.new)

    return run


A = item("Alpha", guid="a", date="Mon, 02 Nov 2026 09:00:00 GMT", body="Alpha body.")
B = item("Beta", guid="b", date="Mon, 09 Nov 2026 09:00:00 GMT", body="Beta body.")
C = item("Gamma", guid="c", date="Mon, 16 Nov 2026 09:00:00 GMT", body="Gamma body.")


def test_same_feed_twice_and_reordered_gives_nothing_new(check: Check) -> None:
    assert check(rss(C, B, A)) == ["Alpha", "Beta", "Gamma"]
    assert check(rss(C, B, A)) == []
    assert check(rss(A, C, B)) == []


def test_changed_dates_and_content_are_not_new_and_refresh_pending_entries(check: Check, db: Database) -> None:
    check(rss(A))
    edited = item("Alpha (edited)", guid="a", date="Fri, 20 Nov 2026 09:00:00 GMT", body="Better body.")

    assert check(rss(edited)) == []

    (row,) = db.query("SELECT title, summary_html, status FROM entries")
    assert (row["title"], row["summary_html"], row["status"]) == ("Alpha (edited)", "Better body.", "pending")


def test_content_of_an_entry_already_in_a_digest_is_left_alone(check: Check, db: Database) -> None:
    check(rss(A))
    (entry,) = store.pending_entries(db)
    store.create_digest(db, "subject", "<p>html</p>", "text", [entry.id])

    assert check(rss(item("Alpha v2", guid="a", body="Changed after sending."))) == []

    (row,) = db.query("SELECT title, status FROM entries")
    assert (row["title"], row["status"]) == ("Alpha", "digested")
    assert store.pending_entries(db) == []


def test_items_sharing_one_link_are_all_kept(check: Check) -> None:
    feed = (Path(__file__).parent / "fixtures" / "feeds" / "shared-link.xml").read_text(encoding="utf-8")

    assert check(feed) == ["Version 1.9", "Version 2.0", "Version 2.1"]
    assert check(feed) == []


def test_an_item_alone_on_its_link_keeps_its_identity_when_others_join_and_leave(check: Check) -> None:
    page = "https://app.example.io/changelog"
    v1 = item("Version 1", link=page, body="One.")
    v2 = item("Version 2", link=page, body="Two.")
    v3 = item("Version 3", link=page, body="Three.")

    assert check(rss(v1)) == ["Version 1"]
    assert check(rss(v2, v1)) == ["Version 2"]  # v1 was stored under the bare link
    assert check(rss(v3, v2, v1)) == ["Version 3"]
    assert check(rss(v3)) == []  # stored while sharing the link, now alone on it
    assert check(rss(v3, v2)) == []


def test_a_lone_link_entry_survives_a_title_edit(check: Check) -> None:
    assert check(rss(item("Tpyo", link="https://blog.example/post"))) == ["Tpyo"]
    assert check(rss(item("Typo fixed", link="https://blog.example/post"))) == []


def test_items_sharing_a_guid_but_not_a_title_are_distinct(check: Check) -> None:
    broken = [item("One", guid="same"), item("Two", guid="same")]

    assert check(rss(*broken)) == ["One", "Two"]
    assert check(rss(*reversed(broken))) == []


def test_an_item_listed_twice_is_one_entry(check: Check, db: Database) -> None:
    assert check(rss(A, A, B)) == ["Alpha", "Beta"]
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 2


def test_link_identity_ignores_scheme_host_case_fragment_and_tracking(check: Check) -> None:
    assert check(rss(item("Post", link="http://Blog.Example/p/1?utm_source=rss#top"))) == ["Post"]
    assert check(rss(item("Post", link="https://blog.example/p/1?utm_medium=feed&utm_source=x"))) == []
    assert check(rss(item("Post", link="https://blog.example/p/1?page=2"))) == ["Post"]  # another page


def test_items_without_guid_or_link_are_keyed_by_title_and_text(check: Check) -> None:
    one = item("Note", body="A thought.")
    two = item(None, body="Another thought, untitled.")
    episode = item("Episode", body="Same words.", enclosure="https://cdn.example/ep1.mp3")
    other_episode = item("Episode", body="Same words.", enclosure="https://cdn.example/ep2.mp3")

    assert check(rss(one, two, episode, other_episode)) == ["Another thought, untitled.", "Episode", "Episode", "Note"]
    assert check(rss(other_episode, episode, two, one)) == []


def test_entries_that_drop_off_the_feed_stay_pending(check: Check, db: Database) -> None:
    check(rss(A), first_run="all")
    check(rss(B))

    assert [e.title for e in store.pending_entries(db)] == ["Alpha", "Beta"]


@pytest.mark.parametrize(
    ("policy", "pending"),
    [("latest:2", ["Beta", "Gamma"]), ("all", ["Alpha", "Beta", "Gamma"]), ("none", []), ("latest:0", [])],
)
def test_first_run_policy(check: Check, db: Database, policy: str, pending: list[str]) -> None:
    # Feed order is not date order here: the policy goes by date.
    assert check(rss(A, C, B), first_run=policy) == pending
    skipped = [r["title"] for r in db.query("SELECT title FROM entries WHERE status = 'skipped' ORDER BY title")]
    assert sorted(skipped + pending) == ["Alpha", "Beta", "Gamma"]

    # The first run is over: nothing old comes back, everything new is pending.
    D = item("Delta", guid="d", date="Fri, 20 Nov 2026 09:00:00 GMT")
    assert check(rss(D, C, B, A), first_run=policy) == ["Delta"]


def test_first_run_undated_entries_count_as_oldest(check: Check) -> None:
    undated = item("Undated", guid="u")
    assert check(rss(undated, A, B), first_run="latest:2") == ["Alpha", "Beta"]


def test_dates_are_stored_in_utc(check: Check, db: Database) -> None:
    check(rss(item("Tz", guid="tz", date="Mon, 16 Nov 2026 18:00:00 +0530")))

    (row,) = db.query("SELECT published, first_seen FROM entries")
    assert row["published"] == "2026-11-16T12:30:00+00:00"
    assert row["first_seen"].endswith("+00:00")


def test_max_entries_cap_takes_the_oldest_and_the_rest_wait(
    check: Check, db: Database, feed_file: Path, tmp_path: Path
) -> None:
    check(rss(C, B, A))
    settings = make_settings(feed_file, tmp_path, DIGEST_MAX_ENTRIES="2")

    first = planning.create_next_digest(db, wire(settings))
    assert first is not None
    assert sorted(e.title for e in first.entries) == ["Alpha", "Beta"]
    assert [e.title for e in store.pending_entries(db)] == ["Gamma"]
    second = planning.create_next_digest(db, wire(settings))
    assert second is not None and [e.title for e in second.entries] == ["Gamma"]
    assert planning.create_next_digest(db, wire(settings)) is None


def test_a_failed_check_leaves_entries_alone(check: Check, db: Database, feed_file: Path, tmp_path: Path) -> None:
    check(rss(A, B))
    before = list(db.query("SELECT * FROM entries ORDER BY id"))
    feed_file.write_text("<html><body>Maintenance</body></html>", encoding="utf-8")

    (report,) = feedcheck.check_feeds(db, wire(make_settings(feed_file, tmp_path)))

    assert report.status == "error" and "not an RSS or Atom feed" in (report.error or "")
    assert list(db.query("SELECT * FROM entries ORDER BY id")) == before
    (feed,) = db.query("SELECT last_status, last_error FROM feeds")
    assert feed["last_status"] == "error" and str(feed_file) in feed["last_error"]
    # and the next good check finds nothing new: nothing was forgotten
    assert check(rss(A, B)) == []


def test_a_feed_that_changes_its_guids_sends_nothing_again(check: Check, db: Database) -> None:
    # A blog moves from a generator without guids to one with them, then to
    # one with other guids, then back: same pages, same titles, nothing new.
    old = [item("Alpha", link="https://blog.example/alpha/"), item("Beta", link="https://blog.example/beta/")]
    with_guids = [item("Alpha", link="https://blog.example/alpha/", guid="tag:1"),
                  item("Beta", link="https://blog.example/beta/", guid="tag:2")]  # fmt: skip
    new_guids = [item("Alpha", link="https://blog.example/alpha/", guid="https://blog.example/alpha/"),
                 item("Beta", link="https://blog.example/beta/", guid="https://blog.example/beta/")]  # fmt: skip

    assert check(rss(*old)) == ["Alpha", "Beta"]
    assert check(rss(*with_guids)) == []
    assert check(rss(*new_guids)) == []
    assert check(rss(*old)) == []  # and back again
    assert db.execute("SELECT COUNT(DISTINCT link) FROM entries").fetchone()[0] == 2


def test_a_feed_reusing_one_link_for_each_new_issue_loses_none(check: Check) -> None:
    page = "https://news.example/newsletter"

    assert check(rss(item("Issue 41", link=page, guid="41"))) == ["Issue 41"]
    assert check(rss(item("Issue 42", link=page, guid="42"))) == ["Issue 42"]
    assert check(rss(item("Issue 43", link=page))) == ["Issue 43"]  # and without a guid


def test_ill_formed_feed_is_read_with_a_logged_warning(
    feed_file: Path, tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    feed_file.write_bytes((Path(__file__).parent / "fixtures" / "feeds" / "ill-formed.xml").read_bytes())

    (report,) = feedcheck.check_feeds(db, wire(make_settings(feed_file, tmp_path)))

    assert report.status == "ok" and len(report.new) == 2
    assert report.warning is not None
    assert any(r.levelname == "WARNING" and "ill-formed but readable" in r.getMessage() for r in caplog.records)
