"""A feed served without validators (or by a server that ignores them): the body's sha256 stands in for a 304.

Through ``feedcheck.check_feeds`` against the real HTTP server in helpers.FeedHost
and a real SQLite file. That the second check did not parse is seen in the
database: a title changed locally after the first check survives it (parsing
and storing would have written the feed's title back).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from digest import feedcheck, store
from digest.wiring import wire
from helpers import FIXTURES, FeedHost, FeedResource, settings_from

HUGO = (FIXTURES / "feeds" / "hugo-rss.xml").read_bytes()
NEWER = HUGO.replace(b"<item>", b"<item><title>Brand new</title><guid>brand-new</guid></item><item>", 1)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return store.open_db(tmp_path / "state.db")


def check(db: Database, tmp_path: Path, url: str) -> feedcheck.FeedReport:
    settings = settings_from({"DIGEST_FEED_URL": url, "DIGEST_DB": str(tmp_path / "state.db"),
                              "DIGEST_FIRST_RUN": "all"})  # fmt: skip
    (report,) = feedcheck.check_feeds(db, wire(settings))
    return report


def feed_state(db: Database) -> dict[str, Any]:
    (row,) = db.query("SELECT * FROM feeds")
    return {**row, "last_checked": None}


@pytest.mark.parametrize("headers", [{}, {"ETag": '"always-200"'}], ids=["no-validators", "validators-ignored"])
def test_the_same_body_again_is_not_parsed_and_a_changed_one_is(
    feed_host: FeedHost, db: Database, tmp_path: Path, headers: dict[str, str]
) -> None:
    feed_host.resources["/feed"] = FeedResource(HUGO, headers=headers)  # 200 every time, whatever is asked
    url = feed_host.url("/feed")
    first = check(db, tmp_path, url)
    assert first.status == "ok" and first.new
    assert feed_state(db)["content_hash"] == hashlib.sha256(HUGO).hexdigest()
    db.execute("UPDATE feeds SET title = 'Renamed here'")
    entries_before = list(db.query("SELECT * FROM entries ORDER BY id"))
    feed_before = feed_state(db)

    again = check(db, tmp_path, url)

    assert feed_host.count("/feed") == 2  # it was fetched: only the parse was skipped
    assert again.status == "not-modified" and again.new == []
    assert feed_state(db) == feed_before  # the local title survived: nothing was parsed or stored
    assert list(db.query("SELECT * FROM entries ORDER BY id")) == entries_before

    feed_host.resources["/feed"] = FeedResource(NEWER, headers=headers)
    changed = check(db, tmp_path, url)

    assert changed.status == "ok"
    assert [e.title for e in changed.new] == ["Brand new"]
    state = feed_state(db)
    assert state["title"] != "Renamed here"
    assert state["content_hash"] == hashlib.sha256(NEWER).hexdigest()


def test_a_failed_parse_stores_no_hash_so_the_same_body_is_read_again(
    feed_host: FeedHost, db: Database, tmp_path: Path
) -> None:
    feed_host.resources["/feed"] = FeedResource(b"<html>not a feed</html>", content_type="text/html")
    url = feed_host.url("/feed")
    assert check(db, tmp_path, url).status == "error"
    assert feed_state(db)["content_hash"] is None

    assert check(db, tmp_path, url).status == "error"  # parsed (and refused) again, not skipped
