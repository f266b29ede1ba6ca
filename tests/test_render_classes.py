"""A feed's own class names never collide with the template's (all of which start with ``dg-``)."""

from __future__ import annotations

from lxml import html as lxml_html
from lxml.html import HtmlElement

from digest import render
from helpers import FIXTURES, settings_from, stored_entries_from


def test_feed_classes_are_dropped_so_the_template_style_stays_its_own(env: dict[str, str]) -> None:
    entries = stored_entries_from(FIXTURES / "render" / "hexo-cjk-wide.atom")
    digest = render.render_digest(entries, settings_from({**env, "DIGEST_MODE": "full"}))
    document = lxml_html.document_fromstring(digest.html)
    cards = [t for t in document.iter("table") if "dg-entry" in (t.get("class") or "").split()]
    assert len(cards) == len(entries)  # the feed's <table class="entry"> is not a card
    collided = next(p for p in document.iter("p") if "template's class names" in p.text_content())
    assert collided.get("class") is None
    assert "background" not in (collided.get("style") or "")  # no button look inlined onto it
    # The gutter table is gone: no line numbers next to the code.
    code = [pre.text_content() for pre in document.iter("pre")]
    assert len(code) == 1 and code[0].lstrip().startswith("def a_rather_long"), code
    image = next(i for i in document.iter("img") if i.get("alt") == "wide")
    assert int(image.get("width") or 0) <= 552


def _by_text(document: HtmlElement, tag: str, text: str) -> HtmlElement:
    return next(e for e in document.iter(tag) if e.text_content().strip() == text)


def test_colliding_classes_get_no_template_style_after_inlining(env: dict[str, str]) -> None:
    entries = stored_entries_from(FIXTURES / "render" / "class-collisions.rss")
    digest = render.render_digest(entries, settings_from({**env, "DIGEST_MODE": "full"}))
    document = lxml_html.document_fromstring(digest.html)
    # Every template class is namespaced, so none of the feed's plain names has a rule.
    classes = {name for e in document.iter() if isinstance(e.tag, str) for name in (e.get("class") or "").split()}
    assert classes and all(name.startswith("dg-") for name in classes), classes
    cards = [t for t in document.iter("table") if "dg-entry" in (t.get("class") or "").split()]
    assert len(cards) == 2  # the feed's table class="entry dg-entry" is not a post card
    # Each element the feed named like a template part looks exactly like its unnamed twin.
    pairs = [
        ("p", "Control paragraph, no class at all.", "Paragraph the theme calls a button."),
        ("p", "Control paragraph, no class at all.", "Paragraph borrowing the digest's own names."),
        ("p", "Control paragraph, no class at all.", "Paragraph named note, meta and footer."),
        ("a", "control link", "theme button link"),
        ("a", "control link", "borrowed button link"),
        ("a", "control link", "nav link"),
        ("td", "control cell", "theme cell"),
        ("h3", "Control heading", "Theme heading"),
        ("span", "control span", "theme span"),
        ("li", "control list item", "theme list item"),
    ]
    for tag, control_text, named_text in pairs:
        control, named = _by_text(document, tag, control_text), _by_text(document, tag, named_text)
        assert named.get("class") is None, (named_text, named.get("class"))
        assert named.get("style") == control.get("style"), (named_text, named.get("style"), control.get("style"))
    named_table = _by_text(document, "td", "theme cell").getparent().getparent()
    assert named_table.get("class") is None
    lists = [_by_text(document, "li", text).getparent() for text in ("control list item", "theme list item")]
    assert lists[0].get("style") == lists[1].get("style")
    # And the real button still has its style.
    button = next(a for a in document.iter("a") if a.get("class") == "dg-button")
    assert "font-weight:bold" in (button.get("style") or "")
