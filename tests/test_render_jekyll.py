"""The user's real feed (Jekyll + Rouge) renders into a digest whose code stays coloured."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import html as lxml_html

from helpers import SHARED_FEED, requires_shared_feed, run_cli

pytestmark = requires_shared_feed


@pytest.fixture
def jekyll_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "DIGEST_FEED_URL": str(SHARED_FEED)}


def preview(environ: dict[str, str], out: Path) -> lxml_html.HtmlElement:
    result = run_cli(["send", "--dry-run", "--output", str(out)], environ)
    assert result.exit_code == 0, result.output
    return lxml_html.fromstring((out / "digest.html").read_bytes())


def code_spans(doc: lxml_html.HtmlElement) -> list[lxml_html.HtmlElement]:
    return [span for pre in doc.iter("pre") for span in pre.iter("span")]


@pytest.mark.parametrize("mode", ["excerpt", "full"])
def test_every_code_token_has_an_inline_colour(jekyll_env: dict[str, str], tmp_path: Path, mode: str) -> None:
    # Long enough excerpts that the posts' first code blocks are in them.
    environ = {**jekyll_env, "DIGEST_MODE": mode, "DIGEST_FIRST_RUN": "all", "DIGEST_EXCERPT_WORDS": "450"}
    doc = preview(environ, tmp_path / mode)

    spans = code_spans(doc)
    assert len(spans) > (100 if mode == "full" else 10)  # the feed's posts carry a lot of highlighted code
    for span in spans:
        if span.text and span.text.strip():
            assert "color:" in (span.get("style") or ""), lxml_html.tostring(span)


def test_code_stays_coloured_without_any_style_element(jekyll_env: dict[str, str], tmp_path: Path) -> None:
    doc = preview({**jekyll_env, "DIGEST_MODE": "full", "DIGEST_FIRST_RUN": "all"}, tmp_path)
    for style in doc.iter("style"):
        style.drop_tree()
    coloured = [s for s in code_spans(doc) if "color:" in (s.get("style") or "")]
    assert len(coloured) > 100
    for pre in doc.iter("pre"):
        assert "color:" in (pre.get("style") or "")
        assert {"style"} >= set(pre.attrib) - {"class"}


def test_first_run_policy_picks_the_three_newest_posts(jekyll_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(["send", "--dry-run", "--output", str(tmp_path)], jekyll_env)

    assert result.exit_code == 0, result.output
    assert "Entries: 3" in result.output
    assert "An OpenAI model has disproved a central conjecture in discrete geometry" in result.output


@pytest.mark.parametrize("mode", ["excerpt", "full"])
def test_the_digest_is_clean_absolute_and_under_budget(jekyll_env: dict[str, str], tmp_path: Path, mode: str) -> None:
    out = tmp_path / mode
    doc = preview({**jekyll_env, "DIGEST_MODE": mode, "DIGEST_FIRST_RUN": "all"}, out)
    html = (out / "digest.html").read_bytes()

    assert len(html) <= 90_000
    for tag in ("form", "input", "button", "select", "textarea", "script", "iframe", "object", "embed"):
        assert list(doc.iter(tag)) == [], tag
    for element in doc.iter():
        if isinstance(element.tag, str):
            assert not [name for name in element.attrib if name.lower().startswith("on")]
    assert b"javascript:" not in html.lower()
    for element in doc.iter():
        for name in ("href", "src"):
            url = element.get(name) if isinstance(element.tag, str) else None
            if url is not None and "unsubscribe" not in url:
                assert url.startswith(("https://", "http://", "mailto:")), url
    assert "DIGEST-PERSONAL" not in html.decode(), "the preview shows the personalised message"


@pytest.mark.parametrize("mode", ["excerpt", "full"])
def test_the_repeated_leading_heading_is_gone(jekyll_env: dict[str, str], tmp_path: Path, mode: str) -> None:
    doc = preview({**jekyll_env, "DIGEST_MODE": mode, "DIGEST_FIRST_RUN": "all"}, tmp_path / mode)

    bodies = doc.find_class("dg-entry-body")
    assert len(bodies) >= 5
    for body in bodies:
        first = next((child for child in body if isinstance(child.tag, str)), None)
        assert first is not None and first.tag not in ("h1", "h2"), lxml_html.tostring(first)[:200]
    assert len(list(doc.iter("h1"))) == 1 and doc.find_class("dg-masthead-title"), "one h1: the masthead"
    assert list(doc.iter("h2")) == list(doc.find_class("dg-entry-title")), "no h2 but the post titles"
    assert all(h.tag in ("h3", "h4", "h5", "h6") for b in bodies for h in b.iter("h1", "h2", "h3", "h4", "h5", "h6"))


def test_full_mode_shortens_the_oldest_posts_and_says_so(jekyll_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(
        ["send", "--dry-run", "--output", str(tmp_path)],
        {**jekyll_env, "DIGEST_MODE": "full", "DIGEST_FIRST_RUN": "all"},
    )

    assert result.exit_code == 0, result.output
    assert "posts were shortened to fit one email" in result.output
    assert "under Gmail" in result.output
    doc = lxml_html.fromstring((tmp_path / "digest.html").read_bytes())
    cells = doc.find_class("dg-entry-cell")
    assert len(cells) == 10
    links = [cell.find_class("dg-read-on")[0].text_content() for cell in cells]
    assert links[0].startswith("Read “") and "on the site" in links[0], "the newest post is whole"
    assert len(set(links)) == len(links), "each button names its post"
    assert links[-1].startswith("Continue reading"), "the oldest is shortened"
