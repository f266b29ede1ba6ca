"""A feed's own class names never collide with the template's."""

from __future__ import annotations

from lxml import html as lxml_html

from conftest import FIXTURES, settings_from, stored_entries_from
from digest import render


def test_feed_classes_are_dropped_so_the_template_style_stays_its_own(env: dict[str, str]) -> None:
    entries = stored_entries_from(FIXTURES / "render" / "hexo-cjk-wide.atom")
    digest = render.render_digest(entries, settings_from({**env, "DIGEST_MODE": "full"}))
    document = lxml_html.document_fromstring(digest.html)
    cards = [t for t in document.iter("table") if "entry" in (t.get("class") or "").split()]
    assert len(cards) == len(entries)  # the feed's <table class="entry"> is not a card
    collided = next(p for p in document.iter("p") if "template's class names" in p.text_content())
    assert collided.get("class") is None
    assert "background" not in (collided.get("style") or "")  # no button look inlined onto it
    # The gutter table is gone: no line numbers next to the code.
    code = [pre.text_content() for pre in document.iter("pre")]
    assert len(code) == 1 and code[0].lstrip().startswith("def a_rather_long"), code
    image = next(i for i in document.iter("img") if i.get("alt") == "wide")
    assert int(image.get("width") or 0) <= 552
