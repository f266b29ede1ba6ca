"""Parsing real-world feed shapes into normalised entries (fixtures in fixtures/feeds/)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.errors import FeedError
from digest.feeds import parse_feed
from digest.fetch import FetchResult
from digest.models import ParsedFeed
from helpers import EXAMPLE_FEED, FIXTURES, SHARED_FEED, requires_shared_feed

FEEDS = FIXTURES / "feeds"


def parse(name: str, *, content_type: str = "application/xml", url: str | None = None) -> ParsedFeed:
    body = (FEEDS / name).read_bytes()
    return parse_feed(FetchResult(url=url or f"https://feeds.example/{name}", status=200, body=body,
                                  content_type=content_type))  # fmt: skip


def test_wordpress_rss2_uses_content_encoded_and_sanitises_it() -> None:
    feed = parse("wordpress-rss2.xml")

    assert feed.title == "Allotment Diaries"
    assert feed.site_url == "https://allotment.example.net"
    leeks, ratio = feed.entries
    assert leeks.key == "id:https://allotment.example.net/?p=412"
    assert leeks.title == "Leeks & the art of waiting"
    assert "<strong>forever</strong>" in leeks.content_html
    assert "<script" not in leeks.content_html
    assert "[&#8230;]" in leeks.summary_html or "[…]" in leeks.summary_html
    assert leeks.author == "Sam Gardener"
    assert leeks.tags == ("Vegetables", "Winter")
    assert leeks.published == datetime(2026, 11, 19, 7, 12, 40, tzinfo=UTC)
    # A plain-text title keeps its "<": it is text, not markup.
    assert ratio.title == "Why a < b matters for compost"
    # +0100 in the feed, UTC once parsed.
    assert ratio.published == datetime(2026, 11, 16, 17, 0, tzinfo=UTC)


def test_hugo_rss_description_is_the_body() -> None:
    feed = parse("hugo-rss.xml")

    first = feed.entries[0]
    assert first.key == "id:https://lattice.example.com/posts/partial-orders/"
    assert first.content_html == ""
    assert 'class="chroma"' in first.summary_html


def test_atom_xml_base_resolves_relative_links() -> None:
    feed = parse("atom-xml-base.xml", url="https://relative.example.org/blog/feed.atom")

    images, siblings = feed.entries
    assert images.link == "https://relative.example.org/blog/2026/11/images/"
    assert 'href="https://relative.example.org/blog/2026/11/other/"' in images.content_html
    assert 'src="https://relative.example.org/blog/2026/11/images/diagram.png"' in images.content_html
    assert siblings.link == "https://relative.example.org/elsewhere/root-relative/"
    # An xhtml title loses its markup; a text/plain summary is escaped, paragraphs kept.
    assert siblings.title == "Links to siblings"
    assert siblings.summary_html == (
        "<p>Plain text summary with &lt;angle brackets&gt; &amp; an ampersand.</p><p>Second paragraph.</p>"
    )
    assert siblings.published == datetime(2026, 11, 18, 6, 0, tzinfo=UTC)
    assert siblings.updated == datetime(2026, 11, 19, 6, 0, tzinfo=UTC)


def test_rss1_rdf() -> None:
    feed = parse("rss1-rdf.xml")

    assert feed.title == "Department Notices"
    assert [e.title for e in feed.entries] == ["Seminar moved to room 3", "Library hours"]
    assert feed.entries[0].published == datetime(2026, 11, 17, 14, 0, tzinfo=UTC)
    assert feed.entries[0].author == "Office"


def test_podcast_enclosures_are_kept_and_made_absolute() -> None:
    feed = parse("podcast.xml")

    twelve, eleven = feed.entries
    assert twelve.key == "id:solder-ep-12"
    assert twelve.link is None
    (media,) = twelve.enclosures
    assert (media.url, media.type, media.length) == ("https://cdn.solder.example.fm/ep12.mp3", "audio/mpeg", 34816000)
    (relative,) = eleven.enclosures
    assert relative.url == "https://solder.example.fm/media/ep11.mp3"
    assert relative.length is None  # "not-a-number" in the feed


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml", "application/rss+xml"])
@pytest.mark.parametrize(
    ("name", "feed_title", "entry_title"),
    [
        ("latin1.xml", "Café Crème", "Crème brûlée à la française"),
        ("windows1252.xml", "Smart “Quotes” Weekly", "It’s all “curly” — €5 well spent"),
    ],
)
def test_non_utf8_feeds_decode(name: str, feed_title: str, entry_title: str, content_type: str) -> None:
    # text/xml without a charset makes feedparser complain (RFC 3023 says
    # us-ascii); the document's own declaration is right, and that is no warning.
    feed = parse(name, content_type=content_type)

    assert feed.title == feed_title
    assert feed.entries[0].title == entry_title
    assert feed.warning is None


def test_feed_without_guids_keys_by_normalised_link_and_handles_missing_fields() -> None:
    feed = parse("no-guids.xml")

    second, first, untitled = feed.entries
    assert second.key == "link://hand.example.org/second.html"  # case, scheme and fragment do not count
    assert second.link == "http://Hand.Example.org/second.html#top"  # what the reader clicks is kept
    assert first.key == "link://hand.example.org/first.html"
    assert first.published is None
    assert untitled.key.startswith("hash:")
    assert untitled.link is None and untitled.published is None
    assert untitled.title == "No title, no link, no date: just a thought about…"


def test_ill_formed_but_readable_feed_carries_a_warning() -> None:
    feed = parse("ill-formed.xml")

    assert [e.title for e in feed.entries] == ["Tom & Jerry review", "Unclosed things"]
    assert feed.warning and "not well-formed" in feed.warning


def test_html_page_is_a_feed_error_naming_the_url_and_the_advertised_feed() -> None:
    with pytest.raises(FeedError) as caught:
        parse("html-page.html", content_type="text/html", url="https://fieldnotes.example.org/")

    message = str(caught.value)
    assert message.startswith("https://fieldnotes.example.org/: got an HTML page, not an RSS or Atom feed")
    assert "https://fieldnotes.example.org/feed.xml" in message
    assert "\n" not in message


@pytest.mark.parametrize("body", [b"", b"   \n", b"just some text", b"<?xml version='1.0'?><nothing/>"])
def test_empty_or_unknown_body_is_a_feed_error(body: bytes) -> None:
    with pytest.raises(FeedError, match=r"^https://x\.example/feed: (empty response|not an RSS or Atom feed)"):
        parse_feed(FetchResult(url="https://x.example/feed", status=200, body=body, content_type="text/xml"))


def test_truncated_feed_without_entries_is_an_error_not_an_empty_feed() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut</title><item><title>A & B'
    with pytest.raises(FeedError, match="ill-formed feed with no readable entries"):
        parse_feed(FetchResult(url="https://x.example/feed", status=200, body=body, content_type="text/xml"))


def test_atom03_content_types() -> None:
    feed = parse("atom03-content-types.xml")

    xhtml, escaped, text = feed.entries
    assert "<strong>XHTML</strong>" in xhtml.content_html
    assert "<em>HTML</em>" in escaped.content_html
    assert text.content_html == "<p>Text with &lt;script&gt;alert(1)&lt;/script&gt; shown literally.</p>"
    assert xhtml.published == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_atom10_xhtml_and_text_content() -> None:
    feed = parse("atom10-content-types.xml")

    xhtml, text = feed.entries
    assert "<code>xhtml</code>" in xhtml.content_html
    assert text.content_html == "<p>if a &lt; b &amp;&amp; c &gt; d: &lt;b&gt;not bold&lt;/b&gt;</p>"


def test_bundled_example_feed() -> None:
    feed = parse_feed(FetchResult(url=EXAMPLE_FEED.as_uri(), status=200, body=EXAMPLE_FEED.read_bytes()))

    assert feed.title == "Field Notes"
    assert all(e.key.startswith("id:") for e in feed.entries)


@requires_shared_feed
def test_real_jekyll_feed_parses_with_stable_distinct_keys() -> None:
    result = FetchResult(url=SHARED_FEED.as_uri(), status=200, body=SHARED_FEED.read_bytes())
    first, again = parse_feed(result), parse_feed(result)

    keys = [e.key for e in first.entries]
    assert len(keys) == len(set(keys)) > 0
    assert keys == [e.key for e in again.entries]
    assert all(e.published is not None and e.published.tzinfo is UTC for e in first.entries)
