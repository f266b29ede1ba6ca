"""Fetching feeds from a real HTTP server on 127.0.0.1 (helpers.FeedHost).

Conditional GET, redirects, gone and failing feeds, timeouts, size caps and
gzip, each through ``feedcheck.check_feeds`` on a real SQLite file.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from digest import __version__, feedcheck, store
from digest.errors import FetchError
from digest.fetch import HttpFetcher
from digest.wiring import wire
from helpers import FIXTURES, FeedHost, FeedResource, free_port, settings_from

WORDPRESS = (FIXTURES / "feeds" / "wordpress-rss2.xml").read_bytes()
HUGO = (FIXTURES / "feeds" / "hugo-rss.xml").read_bytes()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return store.open_db(tmp_path / "state.db")


def check(db: Database, tmp_path: Path, *urls: str, **extra: str) -> list[feedcheck.FeedReport]:
    settings = settings_from({"DIGEST_FEED_URL": " ".join(urls), "DIGEST_DB": str(tmp_path / "state.db"),
                              "DIGEST_FIRST_RUN": "all", **extra})  # fmt: skip
    return feedcheck.check_feeds(db, wire(settings))


def snapshot(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return list(db.query("SELECT * FROM feeds ORDER BY id")), list(db.query("SELECT * FROM entries ORDER BY id"))


def test_request_names_the_project_and_accepts_gzip(feed_host: FeedHost, db: Database, tmp_path: Path) -> None:
    feed_host.resources["/feed"] = FeedResource(WORDPRESS, gzip=True)

    (report,) = check(db, tmp_path, feed_host.url("/feed"))

    assert report.status == "ok" and len(report.new) == 2
    ((_, headers),) = feed_host.requests
    assert headers["User-Agent"].startswith(f"digest/{__version__} ")
    assert "gzip" in headers["Accept-Encoding"]


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_not_modified_writes_nothing_but_last_checked(
    feed_host: FeedHost, db: Database, tmp_path: Path, validator: str
) -> None:
    stamp: dict[str, Any] = {"etag": '"v1"'}
    if validator == "last_modified":
        stamp = {"last_modified": "Thu, 19 Nov 2026 07:12:44 GMT"}
    feed_host.resources["/feed"] = FeedResource(WORDPRESS, **stamp)
    url = feed_host.url("/feed")
    check(db, tmp_path, url)
    feeds_before, entries_before = snapshot(db)

    (report,) = check(db, tmp_path, url)

    assert report.status == "not-modified" and report.new == []
    (_, headers) = feed_host.requests[-1]
    if validator == "etag":
        assert headers["If-None-Match"] == '"v1"'
    else:
        assert headers["If-Modified-Since"] == "Thu, 19 Nov 2026 07:12:44 GMT"
    feeds_after, entries_after = snapshot(db)
    assert entries_after == entries_before
    assert [{**f, "last_checked": None} for f in feeds_after] == [{**f, "last_checked": None} for f in feeds_before]


def test_new_etag_means_new_content_is_read(feed_host: FeedHost, db: Database, tmp_path: Path) -> None:
    feed_host.resources["/feed"] = FeedResource(HUGO.replace(b"<item>", b"<!-- -->", 0), etag='"v1"')
    url = feed_host.url("/feed")
    check(db, tmp_path, url)
    newer = HUGO.replace(b"<item>", b"<item><title>Brand new</title><guid>new</guid></item><item>", 1)
    feed_host.resources["/feed"] = FeedResource(newer, etag='"v2"')

    (report,) = check(db, tmp_path, url)

    assert [e.title for e in report.new] == ["Brand new"]
    assert next(db.query("SELECT etag FROM feeds"))["etag"] == '"v2"'


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_moves_the_fetch_url_and_keeps_the_feed(
    feed_host: FeedHost, db: Database, tmp_path: Path, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = feed_host.url("/old"), feed_host.url("/new")
    feed_host.resources["/old"] = FeedResource(status=code, headers={"Location": new})
    feed_host.resources["/new"] = FeedResource(WORDPRESS)

    (report,) = check(db, tmp_path, old)

    assert report.status == "ok" and report.moved_to == new and len(report.new) == 2
    assert "moved permanently" in caplog.text
    (feed,) = db.query("SELECT url, fetch_url FROM feeds")
    assert (feed["url"], feed["fetch_url"]) == (old, new)

    # The configuration still names the old URL: same feed, fetched from the new one.
    (again,) = check(db, tmp_path, old)
    assert again.new == [] and again.moved_to is None
    assert (feed_host.count("/old"), feed_host.count("/new")) == (1, 2)

    # The owner updates DIGEST_FEED_URL: the row is adopted, nothing is re-sent.
    (updated,) = check(db, tmp_path, new)
    # The same bytes as last time: skipped by their content hash (test_feeds_unchanged.py).
    assert updated.status == "not-modified" and updated.new == [] and not updated.first_run
    (feed,) = db.query("SELECT url, fetch_url FROM feeds")
    assert (feed["url"], feed["fetch_url"]) == (new, None)


@pytest.mark.parametrize("chain", [[302], [301, 302], [302, 301], [307]])
def test_temporary_redirect_anywhere_keeps_the_url(
    feed_host: FeedHost, db: Database, tmp_path: Path, chain: list[int]
) -> None:
    for hop, code in enumerate(chain):
        feed_host.resources[f"/hop{hop}"] = FeedResource(
            status=code, headers={"Location": feed_host.url(f"/hop{hop + 1}")}
        )
    feed_host.resources[f"/hop{len(chain)}"] = FeedResource(WORDPRESS)

    (report,) = check(db, tmp_path, feed_host.url("/hop0"))

    assert report.status == "ok" and report.moved_to is None
    assert next(db.query("SELECT fetch_url FROM feeds"))["fetch_url"] is None
    check(db, tmp_path, feed_host.url("/hop0"))
    assert feed_host.count("/hop0") == 2


def test_gone_feed_is_marked_and_no_longer_fetched(feed_host: FeedHost, db: Database, tmp_path: Path) -> None:
    url = feed_host.url("/feed")
    feed_host.resources["/feed"] = FeedResource(WORDPRESS)
    check(db, tmp_path, url)
    feed_host.resources["/feed"] = FeedResource(b"gone", status=410)

    (report,) = check(db, tmp_path, url)

    assert report.status == "gone" and report.failed
    assert "HTTP 410" in (report.error or "")
    (feed,) = db.query("SELECT status, last_status FROM feeds")
    assert (feed["status"], feed["last_status"]) == ("gone", "410")
    assert len(store.pending_entries(db)) == 2  # what it published before still goes out

    (later,) = check(db, tmp_path, url)
    assert later.status == "gone" and feed_host.count("/feed") == 2

    feed_host.resources["/feed"] = FeedResource(WORDPRESS)
    settings = settings_from({"DIGEST_FEED_URL": url, "DIGEST_DB": str(tmp_path / "state.db")})
    (revived,) = feedcheck.check_feeds(db, wire(settings), retry_gone=True)
    assert revived.status == "not-modified" and revived.new == []  # the body it had before it went
    assert next(db.query("SELECT status, last_status FROM feeds")) == {"status": "active", "last_status": "200"}


@pytest.mark.parametrize(("code", "status"), [(404, "404"), (500, "500"), (503, "503"), (403, "403")])
def test_http_errors_are_recorded_and_other_feeds_still_run(
    feed_host: FeedHost, db: Database, tmp_path: Path, code: int, status: str
) -> None:
    broken, fine = feed_host.url("/broken"), feed_host.url("/fine")
    feed_host.resources["/broken"] = FeedResource(WORDPRESS)
    check(db, tmp_path, broken)
    entries_before = snapshot(db)[1]
    feed_host.resources["/broken"] = FeedResource(b"oops", status=code)
    feed_host.resources["/fine"] = FeedResource(HUGO)

    failed, ok = check(db, tmp_path, broken, fine)

    assert failed.status == "error" and failed.error is not None
    assert failed.error.startswith(f"{broken}: HTTP {code}")
    assert ok.status == "ok" and len(ok.new) == 2
    row = next(db.query("SELECT * FROM feeds WHERE url = ?", [broken]))
    assert (row["last_status"], row["status"]) == (status, "active")
    assert row["last_error"] == failed.error
    assert [e for e in snapshot(db)[1] if e["feed_id"] == row["id"]] == entries_before


def test_connection_refused_is_recorded(db: Database, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/feed"

    (report,) = check(db, tmp_path, url)

    assert report.status == "error" and report.error == f"{url}: connection refused"
    assert next(db.query("SELECT last_status FROM feeds"))["last_status"] == "unreachable"


@pytest.mark.parametrize("stall", ["headers", "body", "trickle"])
def test_slow_server_times_out(feed_host: FeedHost, db: Database, tmp_path: Path, stall: str) -> None:
    feed_host.resources["/slow"] = FeedResource(WORDPRESS, stall=stall)
    url = feed_host.url("/slow")

    (report,) = check(db, tmp_path, url, DIGEST_FETCH_TIMEOUT="0.5s")

    assert report.status == "error"
    assert report.error is not None and report.error.startswith(f"{url}: timed out after 0.5s")
    assert next(db.query("SELECT last_status FROM feeds"))["last_status"] == "timeout"


def test_oversized_body_is_refused(feed_host: FeedHost, db: Database, tmp_path: Path) -> None:
    feed_host.resources["/big"] = FeedResource(WORDPRESS + b" " * 5000)

    (report,) = check(db, tmp_path, feed_host.url("/big"), DIGEST_FETCH_MAX_BYTES="4096")

    assert report.status == "error" and "over the 4096-byte limit" in (report.error or "")
    assert next(db.query("SELECT last_status FROM feeds"))["last_status"] == "too-large"


def test_gzip_bomb_is_refused_without_inflating_it(feed_host: FeedHost) -> None:
    bomb = gzip.compress(b"<" + b" " * 12_000_000, compresslevel=1)  # ~50 KB on the wire, 12 MB inflated
    feed_host.resources["/bomb"] = FeedResource(bomb, headers={"Content-Encoding": "gzip"})

    with pytest.raises(FetchError, match="decompressed response is over the 1000000-byte limit") as caught:
        HttpFetcher(timeout=5, max_bytes=1_000_000)(feed_host.url("/bomb"))
    assert caught.value.status == "too-large"


def test_local_files_and_file_urls(tmp_path: Path, db: Database) -> None:
    path = FIXTURES / "feeds" / "podcast.xml"

    (by_path,) = check(db, tmp_path, str(path))
    (by_url,) = feedcheck.check_feeds(
        db, wire(settings_from({"DIGEST_FEED_URL": path.as_uri(), "DIGEST_DB": str(tmp_path / "state.db")}))
    )

    assert by_path.status == "ok" and len(by_path.new) == 2
    assert by_url.status == "ok"  # a second feed row (another name), its own first run
    missing = tmp_path / "nope.xml"
    (gone,) = check(db, tmp_path, str(missing))
    assert (
        gone.status == "error"
        and gone.error == f"{missing}: cannot read feed file: No such file or directory (check DIGEST_FEED_URL)"
    )


def test_latin1_feed_over_http_with_a_charset_less_content_type(
    feed_host: FeedHost, db: Database, tmp_path: Path
) -> None:
    body = (FIXTURES / "feeds" / "latin1.xml").read_bytes()
    feed_host.resources["/latin1"] = FeedResource(body, content_type="text/xml", gzip=True)

    (report,) = check(db, tmp_path, feed_host.url("/latin1"))

    assert report.status == "ok" and report.warning is None
    assert report.title == "Café Crème"
    assert [e.title for e in report.new] == ["Crème brûlée à la française"]
