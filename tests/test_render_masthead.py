"""The masthead: the feed's title, its subtitle when it has one, the issue's date, and "View in browser"."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import html as lxml_html

from digest import render
from digest.models import Digest
from helpers import FIXTURES, settings_from, stored_entries_from

ISSUED = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)  # already the 22nd in Paris


def _digest(feed: str, env: dict[str, str], archive_url: str | None = None) -> Digest:
    settings = settings_from({**env, "DIGEST_TIMEZONE": "Europe/Paris"})
    entries = stored_entries_from(FIXTURES / "render" / feed)
    return render.render_digest(entries, settings, issued=ISSUED, archive_url=archive_url)


def test_the_masthead_shows_the_date_and_the_feeds_subtitle(env: dict[str, str]) -> None:
    digest = _digest("class-collisions.rss", env)
    document = lxml_html.document_fromstring(digest.html)
    masthead = document.find_class("dg-masthead")[0]
    tagline = masthead.find_class("dg-masthead-tagline")
    assert [t.text_content() for t in tagline] == ["Notes on naming things, by a theme that reuses every class name"]
    sub = masthead.find_class("dg-masthead-sub")[0].text_content()
    assert sub.startswith("22 November 2026 · 2 new posts"), sub
    assert "View in browser" not in sub and not masthead.find_class("dg-masthead-sub-link")
    lines = digest.text.splitlines()
    assert "Notes on naming things, by a theme that reuses every class name" in lines
    assert "22 November 2026 · 2 new posts" in lines
    assert "View in browser" not in digest.text


def test_no_subtitle_line_for_a_feed_without_one(env: dict[str, str]) -> None:
    document = lxml_html.document_fromstring(_digest("rtl-mixed.atom", env).html)
    assert not document.find_class("dg-masthead-tagline")
    assert document.find_class("dg-masthead-sub")[0].text_content().startswith("22 November 2026 · 3 new posts")


def test_view_in_browser_when_the_digest_has_an_archive_page(env: dict[str, str]) -> None:
    url = "https://names.example.net/digest/archive/42"
    digest = _digest("class-collisions.rss", env, archive_url=url)
    document = lxml_html.document_fromstring(digest.html)
    (link,) = document.find_class("dg-masthead-sub-link")
    assert (link.text_content(), link.get("href")) == ("View in browser", url)
    assert f"View in browser: {url}" in digest.text.splitlines()
