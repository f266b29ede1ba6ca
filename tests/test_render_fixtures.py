"""The rendered digest of our fixture feeds: golden files, clean-up, layout, size budget.

Golden files live in tests/golden/; regenerate them after an intended change
with ``DIGEST_REGENERATE_GOLDEN=1 python -m pytest tests/test_render_fixtures.py``
and review the diff.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest import message, render
from digest.errors import ConfigError
from digest.models import Digest
from digest.placeholders import LEGACY_SUBSCRIBER_PAGE, Placeholders
from helpers import FIXTURES, settings_from, stored_entries_from

FEED = FIXTURES / "render" / "highlighters.atom"
LEGACY_PLACEHOLDERS = Placeholders("")
ISSUED = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
GOLDEN = Path(__file__).resolve().parent / "golden"
REGENERATE = os.environ.get("DIGEST_REGENERATE_GOLDEN") == "1"


def render_fixture(env: dict[str, str], **overrides: str) -> Digest:
    settings = settings_from({**env, "DIGEST_TIMEZONE": "Europe/Paris", **overrides})
    # The fixed (legacy) placeholders and issue date keep the golden files stable;
    # real digests get random placeholders and today's date.
    return render.render_digest(stored_entries_from(FEED), settings, placeholders=LEGACY_PLACEHOLDERS, issued=ISSUED)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if REGENERATE or not path.exists():
        if not REGENERATE:
            pytest.fail(f"{path} is missing: run with DIGEST_REGENERATE_GOLDEN=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} changed: review, then regenerate with DIGEST_REGENERATE_GOLDEN=1"


def readable_html(document: str) -> str:
    # One tag per line: a golden diff then shows what changed, not one 40 KB line.
    return re.sub(r"(<(?:p|table|tr|td|pre|h[1-6]|div|li|ul|ol)\b)", r"\n\1", document)


@pytest.mark.parametrize("mode", ["full", "excerpt"])
def test_golden_html_and_text(env: dict[str, str], mode: str) -> None:
    # Excerpts of 30 words keep five of the eight code blocks and cut four posts, so the
    # two modes' golden files really differ (checked below).
    words = "30" if mode == "excerpt" else "150"
    digest = render_fixture(
        env, DIGEST_MODE=mode, DIGEST_EXCERPT_WORDS=words, DIGEST_POSTAL_ADDRESS="Code & Coffee, 1 Example Street, Lyon"
    )

    check_golden(f"highlighters-{mode}.html", readable_html(digest.html))
    check_golden(f"highlighters-{mode}.txt", digest.text)
    check_golden(f"highlighters-{mode}.subject", digest.subject + "\n")


def test_the_excerpt_and_full_golden_files_differ() -> None:
    for suffix in ("html", "txt"):
        full = (GOLDEN / f"highlighters-full.{suffix}").read_text(encoding="utf-8")
        excerpt = (GOLDEN / f"highlighters-excerpt.{suffix}").read_text(encoding="utf-8")
        assert full != excerpt and len(excerpt) < len(full), suffix


def test_rendering_is_deterministic(env: dict[str, str]) -> None:
    first, second = render_fixture(env, DIGEST_MODE="full"), render_fixture(env, DIGEST_MODE="full")
    assert (first.html, first.text, first.subject) == (second.html, second.text, second.subject)


@pytest.fixture
def full_doc(env: dict[str, str]) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(render_fixture(env, DIGEST_MODE="full").html)


def entry_cell(doc: lxml_html.HtmlElement, title: str) -> lxml_html.HtmlElement:
    for cell in doc.find_class("dg-entry-cell"):
        if cell.find_class("dg-entry-title")[0].text_content().strip() == title:
            return cell
    raise AssertionError(f"no entry {title!r}")


def test_what_no_email_should_carry_is_gone(full_doc: lxml_html.HtmlElement) -> None:
    for tag in ("form", "input", "button", "select", "textarea", "label", "iframe", "video", "audio", "script",
                "object", "embed", "base", "link"):  # fmt: skip
        assert list(full_doc.iter(tag)) == [], tag
    for element in full_doc.iter():
        if isinstance(element.tag, str):
            assert not [a for a in element.attrib if a.lower().startswith("on")], lxml_html.tostring(element)
    serialised = lxml_html.tostring(full_doc, encoding="unicode").lower()
    for scheme in ("javascript:", "vbscript:", "data:"):
        assert scheme not in serialised


def test_media_becomes_a_link_to_the_post(full_doc: lxml_html.HtmlElement) -> None:
    cell = entry_cell(full_doc, "What an email must not carry")
    post = "https://blog.example.org/2026/11/15/hostile/"
    cards = {a.text_content().strip("▶ "): a.get("href") for a in cell.iter("a") if "▶" in a.text_content()}
    assert cards == {
        "Watch on YouTube": "https://www.youtube.com/watch?v=xyz",  # the iframe, kept as a link to the video
        "Watch the video": post + "talk.mp4",
        "Listen to the audio": post + "episode.mp3",
    }


def test_links_and_images_are_absolute_and_images_fit(full_doc: lxml_html.HtmlElement) -> None:
    for a in full_doc.iter("a"):
        href = a.get("href")
        if href is not None:
            personal = (render.UNSUBSCRIBE_PLACEHOLDER, LEGACY_SUBSCRIBER_PAGE)
            assert href.startswith(("https://", "http://", "mailto:")) or href in personal, href
    rouge = entry_cell(full_doc, "Rouge: Python with tabs and a very long line")
    hrefs = {a.text_content(): a.get("href") for a in rouge.iter("a")}
    assert hrefs["earlier post"] == "https://blog.example.org/2026/10/01/backoff.html"
    # A fragment points into the post itself, not the feed's xml:base.
    assert hrefs["the notes"] == "https://blog.example.org/2026/11/20/rouge.html#notes"
    hostile = entry_cell(full_doc, "What an email must not carry")
    assert {a.text_content(): a.get("href") for a in hostile.iter("a")}["a relative link"] == (
        "https://blog.example.org/2026/11/15/archive/"  # resolved against the content's xml:base
    )
    images = list(full_doc.iter("img"))
    assert [img.get("alt") for img in images] == ["A retry timeline", "A diagram"]  # the data: image is dropped
    for img in images:
        assert img.get("src", "").startswith("https://blog.example.org/")
        assert "max-width:100%" in img.get("style", "") and "height:auto" in img.get("style", "")
    assert images[0].get("width") == "552" and images[0].get("height") == "276"  # clamped, aspect kept


def test_a_leading_heading_repeating_the_title_is_dropped(full_doc: lxml_html.HtmlElement) -> None:
    for title in ("Rouge: Python with tabs and a very long line", "What an email must not carry"):
        body = entry_cell(full_doc, title).find_class("dg-entry-body")[0]
        assert [h.text_content() for h in body.iter("h1", "h2")] == []
        assert title not in body.text_content()


def test_layout_header_entries_and_footer(env: dict[str, str]) -> None:
    digest = render_fixture(env, DIGEST_MODE="full", DIGEST_POSTAL_ADDRESS="1 Example Street, Lyon")
    doc = lxml_html.fromstring(digest.html)

    preheader = doc.find_class("dg-preheader")[0]
    assert "display:none" in preheader.get("style", "").replace(" ", "")
    preview = preheader.text_content()
    assert preview.startswith("Rouge: Python with tabs and a very long line · Chroma with classes")
    assert re.search(r" and \d+ more", preview) and len(preview.split("\u2007")[0]) <= 160
    contents = doc.find_class("dg-contents-list")[0]
    assert len(contents.findall("li")) == 7 and "Rouge: Python" in contents.text_content()
    masthead = doc.find_class("dg-masthead-link")[0]
    assert (masthead.text_content(), masthead.get("href")) == ("Code & Coffee", "https://blog.example.org/")
    rouge = entry_cell(doc, "Rouge: Python with tabs and a very long line")
    meta = rouge.find_class("dg-meta")[0].text_content()
    assert "20 November 2026" in meta and "Ada Example" in meta and "python" in meta and "rouge" in meta
    title_link = rouge.find_class("dg-entry-title-link")[0]
    assert title_link.get("href") == "https://blog.example.org/2026/11/20/rouge.html"
    assert rouge.find_class("dg-read-on")[0].text_content().startswith("Read “Rouge")
    footer = doc.find_class("dg-footer")[0].text_content()
    assert render.RECIPIENT_PLACEHOLDER in footer and "Code & Coffee" in footer and "1 Example Street" in footer
    unsubscribe = [a for a in doc.iter("a") if a.get("href") == render.UNSUBSCRIBE_PLACEHOLDER]
    assert [a.text_content() for a in unsubscribe] == ["Unsubscribe"]
    assert "600" in lxml_html.tostring(doc, encoding="unicode")  # the Outlook ghost table


def test_the_date_follows_the_configured_time_zone(env: dict[str, str]) -> None:
    # Published 2026-11-19T18:30Z: still the 19th in Paris, already the 20th in Tokyo.
    paris = render_fixture(env, DIGEST_MODE="full")
    tokyo = render_fixture(env, DIGEST_MODE="full", DIGEST_TIMEZONE="Asia/Tokyo")
    chroma = "Chroma with classes: a Go loader"
    assert "19 November 2026" in entry_cell(lxml_html.fromstring(paris.html), chroma).text_content()
    assert "20 November 2026" in entry_cell(lxml_html.fromstring(tokyo.html), chroma).text_content()


def test_the_style_element_keeps_dark_mode_and_stays_within_gmail_limits(env: dict[str, str]) -> None:
    doc = lxml_html.fromstring(render_fixture(env, DIGEST_MODE="full").html)
    styles = [s.text_content() for s in doc.iter("style")]

    assert len(styles) == 1
    css = styles[0]
    assert len(css.encode("utf-8")) < 16_000  # Gmail ignores a bigger <style>
    assert "prefers-color-scheme: dark" in css
    assert "!important" in css  # premailer must not strip it (strip_important=False)
    depth = 0
    for char in re.sub(r"/\*.*?\*/", "", css, flags=re.S):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth <= 2, "an @ rule nested in another: Gmail drops the whole block"
    for block in re.findall(r"@media[^{]*\{((?:[^{}]*\{[^{}]*\})*)", css):
        assert "@" not in block


def test_dark_mode_rules_cover_text_and_code(env: dict[str, str]) -> None:
    css = next(lxml_html.fromstring(render_fixture(env).html).iter("style")).text_content()
    dark = css[css.index("prefers-color-scheme: dark") :]
    for selector in (".dg-card", ".dg-entry-body", ".dg-inline-code", ".dg-entry-body a"):
        assert selector in dark


def test_excerpt_mode_cuts_between_blocks_and_keeps_summaries(env: dict[str, str]) -> None:
    digest = render_fixture(env, DIGEST_MODE="excerpt", DIGEST_EXCERPT_WORDS="20")
    doc = lxml_html.fromstring(digest.html)

    rouge = entry_cell(doc, "Rouge: Python with tabs and a very long line").find_class("dg-entry-body")[0]
    blocks = [child.tag for child in rouge]
    assert blocks == ["p"], "only the first paragraph: the code block would pass 20 words"
    assert rouge.find_class("dg-read-on") == []
    assert "Continue reading" in entry_cell(doc, "Rouge: Python with tabs and a very long line").text_content()
    summary = entry_cell(doc, "A summary-only post")
    assert "This feed only publishes a summary" in summary.text_content()


def test_excerpt_may_include_a_code_block_that_fits(env: dict[str, str]) -> None:
    doc = lxml_html.fromstring(render_fixture(env, DIGEST_MODE="excerpt", DIGEST_EXCERPT_WORDS="60").html)
    rouge = entry_cell(doc, "Rouge: Python with tabs and a very long line").find_class("dg-entry-body")[0]
    assert [child.get("class") for child in rouge][:2] == [None, "dg-code-block"]


def test_full_mode_stays_under_the_budget_shortening_the_oldest(env: dict[str, str]) -> None:
    unlimited = render_fixture(env, DIGEST_MODE="full")
    budget = len(unlimited.html.encode()) - 3_000
    digest = render_fixture(env, DIGEST_MODE="full", DIGEST_MAX_HTML_BYTES=str(max(budget, 10_000)))

    assert len(digest.html.encode("utf-8")) <= max(budget, 10_000)
    assert digest.notes and re.match(r"\d+ of 7 posts? (was|were) shortened", digest.notes[0])
    assert digest.notes[0] in digest.html and digest.notes[0] in " ".join(digest.text.split())  # wrapped there
    doc = lxml_html.fromstring(digest.html)
    newest = entry_cell(doc, "Rouge: Python with tabs and a very long line")
    assert newest.find_class("dg-code-block"), "the newest post keeps its full text"


def test_a_tiny_budget_falls_back_to_links_and_still_fits(env: dict[str, str]) -> None:
    digest = render_fixture(env, DIGEST_MODE="full", DIGEST_MAX_HTML_BYTES="10000")
    doc = lxml_html.fromstring(digest.html)

    assert len(digest.html.encode()) <= 10_000  # titles alone do not fit: the tail became links
    cards = doc.find_class("dg-entry-cell")
    lines = doc.find_class("dg-links")[0].findall("li")
    assert len(cards) + len(lines) == 7 and lines
    assert all(cell.find_class("dg-read-on") for cell in cards)
    for line in lines:
        link = line.find_class("dg-links-link")[0]
        assert link.get("href", "").startswith("https://blog.example.org/")
        assert line.text_content().startswith(f"{link.text_content()} — ")
    rouge = next(li for li in lines if li.text_content().startswith("Rouge: Python"))
    # The first sentence of the post: not its leading heading (the title again), nor its code.
    assert rouge.text_content().endswith(
        "— Jekyll's Rouge wraps code in two divs and uses Pygments' short classes, plus a few of its own (kv, mx)."
    )
    assert "listed at the end with their first sentence" in digest.notes[0]


def _contents_marks(doc: lxml_html.HtmlElement) -> dict[str, str]:
    return {
        item.find_class("dg-contents-link")[0].text_content(): "".join(
            m.text_content() for m in item.find_class("dg-contents-mark")
        )
        for item in doc.find_class("dg-contents-list")[0].findall("li")
        if item.find_class("dg-contents-link")  # not the "N more posts, listed at the end" line
    }


def _cards_shown(doc: lxml_html.HtmlElement) -> dict[str, str]:
    shown = {}
    for cell in doc.find_class("dg-entry-cell"):
        title = cell.find_class("dg-entry-title")[0].text_content().strip()
        whole = cell.find_class("dg-read-on")[0].text_content().startswith("Read “")
        shown[title] = "" if whole else "(excerpt)" if cell.find_class("dg-entry-body") else "(title only)"
    return shown


def test_the_contents_list_marks_each_shortened_post(env: dict[str, str]) -> None:
    excerpts = render_fixture(env, DIGEST_MODE="excerpt", DIGEST_EXCERPT_WORDS="20")
    seen: set[str] = set()
    # Budgets from the all-excerpts size down: whole posts, excerpts and title cards all appear on the way.
    for budget in [90_000, *range(len(excerpts.html.encode()), 10_000, -400)]:
        digest = render_fixture(env, DIGEST_MODE="full", DIGEST_EXCERPT_WORDS="20", DIGEST_MAX_HTML_BYTES=str(budget))
        doc = lxml_html.fromstring(digest.html)
        shown = _cards_shown(doc)
        if len(shown) < 3:  # the list is there from three cards on
            assert not doc.find_class("dg-contents-list"), budget
            continue
        marks = _contents_marks(doc)
        assert marks == shown, budget
        seen.update(marks.values())
    assert seen == {"", "(excerpt)", "(title only)"}


def test_premailer_runs_a_bounded_number_of_times(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = render.inline_css

    def counting(document: str) -> str:
        calls.append(len(document))
        return real(document)

    monkeypatch.setattr(render, "inline_css", counting)
    unlimited = render_fixture(env, DIGEST_MODE="full")
    assert len(calls) == 1
    calls.clear()
    render_fixture(env, DIGEST_MODE="full", DIGEST_MAX_HTML_BYTES=str(len(unlimited.html.encode()) - 3_000))
    assert len(calls) <= 3  # the longest layout, the chosen one, rarely one correction


# --- the subject -------------------------------------------------------------------------


def test_default_subject_names_the_feed_the_newest_post_and_the_rest(env: dict[str, str]) -> None:
    assert render_fixture(env).subject == "Code & Coffee: Rouge: Python with tabs and a very long line (+6 more)"


def test_subject_template_is_configurable_and_always_one_line(env: dict[str, str]) -> None:
    template = "{{ count }} new from\r\n {{ feed_title }}:\t{{ newest.title }}  {{ entries[-1].title }}"
    subject = render_fixture(env, DIGEST_SUBJECT=template).subject
    assert subject == "7 new from Code & Coffee: Rouge: Python with tabs and a very long line A summary-only post"


def test_subject_template_is_sandboxed(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="DIGEST_SUBJECT"):
        render_fixture(env, DIGEST_SUBJECT="{{ newest.__class__.__mro__[1].__subclasses__() }}")


def test_a_non_ascii_subject_is_encoded_as_one_header(env: dict[str, str]) -> None:
    subject = render_fixture(env, DIGEST_SUBJECT="Café Kōdo — {{ newest.title }}\n(+{{ others }})").subject
    raw = message.header("Subject", subject)

    assert raw.isascii()
    parsed = email.message_from_bytes(raw + b"\r\n", policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert "\n" not in str(parsed["Subject"]) and subject.count("(+6)") == 1


# --- the text part -----------------------------------------------------------------------


def test_text_part_wraps_prose_indents_code_and_numbers_links(env: dict[str, str]) -> None:
    text = render_fixture(env, DIGEST_MODE="full").text
    lines = text.split("\n")

    prose = [line for line in lines if line and not line.startswith(("    ", "[")) and "://" not in line]
    assert max(len(line) for line in prose) <= 72
    assert "    def retry(call, attempts=5):" in lines
    assert '        """Tab-indented on purpose."""' in lines  # a tab became four spaces, then indented
    assert "earlier post [1]" in text
    assert "[1] https://blog.example.org/2026/10/01/backoff.html" in lines
    assert lines[-3:] == [
        f"Unsubscribe: {render.UNSUBSCRIBE_PLACEHOLDER}",
        f"Manage your subscription: {LEGACY_SUBSCRIBER_PAGE}",
        "",
    ]


# --- templates ---------------------------------------------------------------------------


def test_a_template_dir_overrides_one_template_and_falls_back_for_the_rest(env: dict[str, str], tmp_path: Path) -> None:
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "_entry.html.j2").write_text(
        '<p class="mine"><a href="{{ entry.link }}">{{ entry.title }}</a></p>\n', encoding="utf-8"
    )
    digest = render_fixture(env, DIGEST_TEMPLATE_DIR=str(custom))
    doc = lxml_html.fromstring(digest.html)

    assert len(doc.find_class("mine")) == 7
    assert doc.find_class("dg-footer"), "digest.html.j2 still comes from the bundled templates"


def test_a_broken_template_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    from digest.errors import RenderError

    (tmp_path / "digest.txt.j2").write_text("{% for x in %}", encoding="utf-8")
    with pytest.raises(RenderError, match=r"digest\.txt\.j2"):
        render_fixture(env, DIGEST_TEMPLATE_DIR=str(tmp_path))


def test_every_light_text_colour_has_a_readable_dark_mode_override() -> None:
    from digest import codeblocks

    source = (render.bundled_template_dir() / "_styles.css.j2").read_text(encoding="utf-8")
    css = re.sub(r"\{#.*?#\}|/\*.*?\*/", "", source, flags=re.S)
    light, dark = css.split("@media (prefers-color-scheme: dark)")
    light = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", light)  # the phone rules
    dark_rules = dict(re.findall(r"([^{}]+)\{([^{}]*)\}", dark))
    dark_colour: dict[str, str] = {}
    for selectors, body in dark_rules.items():
        match = re.search(r"(?<!-)color:\s*(#[0-9a-f]{6})", body)
        if match:
            for selector in selectors.split(","):
                dark_colour[selector.strip()] = match.group(1)
    card = re.search(r"\.dg-card \{ background-color: (#[0-9a-f]{6})", dark)
    assert card
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", light):
        if not re.search(r"(?<!-)color:", body):
            continue
        for selector in selectors.split(","):
            selector = selector.strip()
            assert selector in dark_colour, f"{selector} keeps its light colour in dark mode"
            assert codeblocks.contrast_ratio(dark_colour[selector], card.group(1)) >= 4.5, selector
