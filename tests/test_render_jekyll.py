"""The user's real feed (Jekyll + Rouge) renders into a digest whose code stays coloured."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import html as lxml_html

from conftest import SHARED_FEED, run_cli

pytestmark = pytest.mark.skipif(not SHARED_FEED.exists(), reason="shared feed not present")


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
    doc = preview({**jekyll_env, "DIGEST_MODE": mode, "DIGEST_FIRST_RUN": "all"}, tmp_path / mode)

    spans = code_spans(doc)
    if mode == "full":
        assert len(spans) > 200  # the feed's posts carry a lot of highlighted code
    for span in spans:
        if span.text and span.text.strip():
            assert "color:" in (span.get("style") or ""), lxml_html.tostring(span)


def test_code_stays_coloured_without_any_style_element(jekyll_env: dict[str, str], tmp_path: Path) -> None:
    doc = preview({**jekyll_env, "DIGEST_MODE": "full", "DIGEST_FIRST_RUN": "all"}, tmp_path)
    for style in doc.iter("style"):
        style.drop_tree()
    coloured = [s for s in code_spans(doc) if "color:" in (s.get("style") or "")]
    assert len(coloured) > 200


def test_first_run_policy_picks_the_three_newest_posts(jekyll_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(["send", "--dry-run", "--output", str(tmp_path)], jekyll_env)

    assert result.exit_code == 0, result.output
    assert "Entries: 3" in result.output
    assert "An OpenAI model has disproved a central conjecture in discrete geometry" in result.output
