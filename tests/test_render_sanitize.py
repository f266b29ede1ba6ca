"""Raw feed HTML through the one sanitiser: embeds as link cards, no trackers, URLs that work."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest import htmlclean, sanitize
from digest.feeds import parse_feed
from digest.fetch import FetchResult

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "render" / "local-embeds-pixels.rss"


def cleaned(url: str, title: str) -> lxml_html.HtmlElement:
    feed = parse_feed(FetchResult(url=url, status=200, body=FIXTURE.read_bytes(), content_type="application/xml"))
    entry = next(e for e in feed.entries if e.title == title)
    root = htmlclean.parse_fragment(sanitize.sanitise_entry_html(entry.content_html, link=entry.link))
    htmlclean.clean_entry_html(root, title=entry.title, link=entry.link, base_url=feed.site_url)
    return root


@pytest.mark.parametrize("url", [str(FIXTURE), FIXTURE.as_uri()])
def test_a_local_feed_resolves_links_against_its_site_never_file(url: str) -> None:
    root = cleaned(url, "Relative links everywhere")
    hrefs = {a.text_content(): a.get("href") for a in root.iter("a")}
    assert hrefs == {
        "the about page": "https://hexo.example.com/about/",
        "a CDN file": "https://cdn.example.net/file.txt",
        "the setup section": "https://hexo.example.com/2026/11/relative/#setup",  # the entry's own page
    }
    srcs = [img.get("src") for img in root.iter("img")]
    assert srcs == ["https://hexo.example.com/images/wide.png", "https://hexo.example.com/images/noattr.png"]
    assert "file:" not in lxml_html.tostring(root, encoding="unicode")


def test_images_get_a_pixel_width_no_wider_than_the_column() -> None:
    wide, unsized = cleaned(str(FIXTURE), "Relative links everywhere").iter("img")
    assert (wide.get("width"), wide.get("height")) == (str(htmlclean.COLUMN_WIDTH), "276")
    assert unsized.get("width") == str(htmlclean.COLUMN_WIDTH) and unsized.get("height") is None
    assert "2000px" not in unsized.get("style", "")  # an inline width would beat the attribute


def test_embeds_become_link_cards_naming_what_they_open() -> None:
    root = cleaned(str(FIXTURE), "Embeds and counters")
    cards = {a.text_content().strip("▶ "): a.get("href") for a in root.iter("a") if "▶" in a.text_content()}
    assert cards == {
        "Watch on YouTube": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "Open the PDF": "https://hexo.example.com/files/slides.pdf",
        "Watch the video": "https://hexo.example.com/media/demo.webm",
    }
    assert list(root.iter("iframe", "object", "embed", "video", "source")) == []


def test_scripts_handlers_and_unsafe_urls_cannot_pass() -> None:
    root = cleaned(str(FIXTURE), "Embeds and counters")
    text = lxml_html.tostring(root, encoding="unicode").lower()
    assert "onclick" not in text and "javascript:" not in text and "data:" not in text
    assert "Click here or there." in root.text_content()  # the words stay, the links go


def test_tracking_pixels_are_removed() -> None:
    root = cleaned(str(FIXTURE), "Embeds and counters")
    assert list(root.iter("img")) == []
    assert "End." in root.text_content()


def test_the_sanitiser_alone_drops_what_feedparser_used_to() -> None:
    dirty = (
        '<p style="position:fixed;color:red" onmouseover="x()">a</p><script>bad()</script>'
        '<form action="/x"><input name="q"><button>Go</button></form><a href="vbscript:x">v</a>'
    )
    safe = sanitize.sanitise_entry_html(dirty, link="https://example.org/p/")
    assert safe == '<p style="color:red">a</p><a>v</a>'
