"""The size budget at any list size: O(log n) whole renders, links for the tail, never over without saying so.

A generated feed of long posts (each well past an excerpt, with a heading
and a code block) goes through the real pipeline: feedparser, the sanitiser,
Jinja, premailer. Renders are counted through ``render_digest``'s ``stats``
hook, never timed (speed is bench/render.py's job).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest import render
from digest.layout import RenderStats
from digest.models import Digest
from helpers import settings_from, stored_entries_from

PARAGRAPH = (
    "<p>Post {n} opens with its own first sentence about retries and queues. It then goes on for a while, "
    "explaining what the reader should take from it, with a <a href='/notes/{n}'>link</a> or two and some "
    "<em>emphasis</em> where it helps; every paragraph adds more words than an excerpt would keep.</p>"
)
CODE = (
    '<pre><code class="language-python">def handler_{n}(event, context):\n'
    '    return {{"status": 200, "body": "post {n}"}}\n</code></pre>'
)


def long_feed(path: Path, count: int) -> Path:
    entries = []
    for n in range(count):
        body = PARAGRAPH.format(n=n) + "<h2>Details</h2>" + PARAGRAPH.format(n=n) * 4 + CODE.format(n=n)
        body += PARAGRAPH.format(n=n) * 3
        day, hour = divmod(n, 24)
        entries.append(
            f"<entry><title>Post number {n}: a title of a realistic length for a blog</title>"
            f"<id>urn:budget:{n}</id><link href='https://blog.example.org/2026/{n:04d}/a-realistic-slug/'/>"
            f"<updated>2026-11-{28 - day:02d}T{23 - hour:02d}:00:00Z</updated>"
            f"<content type='html'><![CDATA[{body}]]></content></entry>"
        )
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        "<title>Long posts</title><id>urn:budget</id><link href='https://blog.example.org/'/>"
        f"<updated>2026-11-28T23:00:00Z</updated>{''.join(entries)}</feed>",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def feed_200(tmp_path_factory: pytest.TempPathFactory) -> list[object]:
    return list(stored_entries_from(long_feed(tmp_path_factory.mktemp("budget") / "long.atom", 200)))


def _render(entries: list[object], env: dict[str, str], **keys: str) -> tuple[Digest, RenderStats]:
    stats = RenderStats()
    digest = render.render_digest(entries, settings_from({**env, **keys}), stats=stats)  # type: ignore[arg-type]
    return digest, stats


@pytest.mark.parametrize("mode", ["full", "excerpt"])
def test_200_long_posts_fit_with_links_for_the_tail(feed_200: list[object], env: dict[str, str], mode: str) -> None:
    digest, _ = _render(feed_200, env, DIGEST_MODE=mode)
    doc = lxml_html.fromstring(digest.html)

    assert len(digest.html.encode("utf-8")) <= 90_000
    cards = [c.find_class("dg-entry-title")[0].text_content().strip() for c in doc.find_class("dg-entry-cell")]
    lines = doc.find_class("dg-links")[0].findall("li")
    assert cards and cards[0] == "Post number 0: a title of a realistic length for a blog"  # the newest is a card
    assert len(cards) + len(lines) == 200 and len(lines) > 150
    # The tail: the oldest posts, in order, each its linked title and its first sentence.
    titles = [li.find("a").text_content() for li in lines]
    assert titles[-1].startswith("Post number 199:") and titles == sorted(titles, key=lambda t: int(t.split()[2][:-1]))
    last = lines[-1]
    assert last.find("a").get("href") == "https://blog.example.org/2026/0199/a-realistic-slug/"
    assert last.text_content().endswith("— Post 199 opens with its own first sentence about retries and queues.")
    note = digest.notes[0]
    assert f"the last {len(lines)} are listed at the end with their first sentence" in note
    assert "Post number 199" not in note  # the links are not named again
    assert "More posts" in digest.text and "  https://blog.example.org/2026/0199/a-realistic-slug/" in digest.text


def test_the_number_of_whole_renders_grows_with_log_n(tmp_path: Path, env: dict[str, str]) -> None:
    renders = {}
    for count in (25, 50, 100, 200):
        entries = list(stored_entries_from(long_feed(tmp_path / f"long-{count}.atom", count)))
        digest, stats = _render(entries, env, DIGEST_MODE="full")
        assert len(digest.html.encode("utf-8")) <= 90_000
        renders[count] = stats.full_renders
    # Each doubling adds at most a few bisection steps; once per candidate layout it was 800 at 200 entries.
    for small, large in ((25, 50), (50, 100), (100, 200)):
        assert renders[large] <= renders[small] + 6, renders
    assert renders[200] <= 6 * math.ceil(math.log2(200)), renders


def test_premailer_runs_a_few_times_at_any_size(feed_200: list[object], env: dict[str, str]) -> None:
    _, stats = _render(feed_200, env, DIGEST_MODE="full")
    assert 1 <= stats.inline_runs <= 4, stats


def test_when_even_links_do_not_fit_one_warning_says_so(
    feed_200: list[object], env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="digest.render"):
        digest, _ = _render(feed_200, env, DIGEST_MODE="excerpt", DIGEST_MAX_HTML_BYTES="10000")

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    size = len(digest.html.encode("utf-8"))
    assert f"digest HTML is {size} bytes, over DIGEST_MAX_HTML_BYTES=10000" in warnings[0]
    assert "all 200 posts as links" in warnings[0]
    doc = lxml_html.fromstring(digest.html)
    assert doc.find_class("dg-entry-cell") == [] and len(doc.find_class("dg-links")[0].findall("li")) == 200
