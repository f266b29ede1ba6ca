"""Right-to-left entries get dir="rtl" (and their declared lang) per card, in a mixed feed too."""

from __future__ import annotations

from lxml import html as lxml_html

from digest import render, textdir
from helpers import FIXTURES, settings_from, stored_entries_from


def test_each_card_of_a_mixed_feed_gets_its_own_direction(env: dict[str, str]) -> None:
    settings = settings_from({**env, "DIGEST_MODE": "full"})
    digest = render.render_digest(stored_entries_from(FIXTURES / "render" / "rtl-mixed.atom"), settings)
    document = lxml_html.document_fromstring(digest.html)
    cards = [c for c in document.iter("table") if c.get("class") == "dg-entry"]
    arabic = next(c for c in cards if "مولد المواقع" in c.text_content())
    english = next(c for c in cards if "Static sites, in English" in c.text_content())
    hebrew = next(c for c in cards if "אתרים סטטיים" in c.text_content())
    assert arabic.get("dir") == "rtl" and arabic.get("lang") is None
    assert english.get("dir") is None
    assert hebrew.get("dir") == "rtl" and hebrew.get("lang") == "he"
    # Code inside a right-to-left post still reads left to right.
    assert all(pre.get("dir") == "ltr" for pre in arabic.iter("pre"))


def test_direction_rules() -> None:
    assert textdir.direction("שלום עולם") == "rtl"
    assert textdir.direction("Hello world") is None
    assert textdir.direction("Hello world", "fa-IR") == "rtl"
    assert textdir.direction("سلام", "en") is None  # a declaration wins over a guess


def _cards(feed: str, env: dict[str, str]) -> tuple[lxml_html.HtmlElement, dict[str, lxml_html.HtmlElement]]:
    settings = settings_from({**env, "DIGEST_MODE": "full"})
    document = lxml_html.document_fromstring(
        render.render_digest(stored_entries_from(FIXTURES / "render" / feed), settings).html
    )
    cards = [c for c in document.iter("table") if c.get("class") == "dg-entry"]
    return document, {c.find_class("dg-entry-title")[0].text_content().strip(): c for c in cards}


def test_the_rss_language_is_the_page_language_and_each_entry_default(env: dict[str, str]) -> None:
    document, cards = _cards("rtl-feed-language.rss", env)
    assert document.get("lang") == "fa-IR"
    persian = cards["ساختن سایت ایستا"]
    assert (persian.get("lang"), persian.get("dir")) == ("fa-IR", "rtl")
    guest = cards["A guest post, in English"]  # the item's dc:language differs from the feed's
    assert (guest.get("lang"), guest.get("dir")) == ("en", None)
    # Undeclared and plainly English in a Persian feed: not labelled Persian, not right-to-left.
    undeclared = cards["Another English note, undeclared"]
    assert (undeclared.get("lang"), undeclared.get("dir")) == (None, None)
    # The template's own words are English and say so on a Persian page.
    assert document.find_class("dg-footer")[0].get("lang") == "en"
    assert document.find_class("dg-masthead-sub")[0].get("lang") == "en"


def test_atom_xml_lang_of_the_feed_and_of_an_entry(env: dict[str, str]) -> None:
    document, cards = _cards("lang-atom-entries.atom", env)
    assert document.get("lang") == "he"
    hebrew = cards["כלים קטנים"]
    assert (hebrew.get("lang"), hebrew.get("dir")) == ("he", "rtl")
    english = cards["Small tools, for the English readers"]
    assert (english.get("lang"), english.get("dir")) == ("en-GB", None)
    assert cards["مقال ضيف"].get("dir") == "rtl"


def test_a_feed_without_a_language_keeps_an_english_page(env: dict[str, str]) -> None:
    document, _ = _cards("rtl-mixed.atom", env)
    assert document.get("lang") == "en"
    assert document.find_class("dg-footer")[0].get("lang") is None


def test_language_and_direction_rules() -> None:
    assert textdir.language_and_direction("Hello there", "he", "en") == ("he", "rtl")
    assert textdir.language_and_direction("Hello there", None, "en-US") == ("en-US", None)
    assert textdir.language_and_direction("שלום עולם לכולם", None, "en") == (None, "rtl")
    assert textdir.language_and_direction("Hello there", None, "ar") == (None, None)
    assert textdir.language_and_direction("12 34", None, "ar") == ("ar", "rtl")  # no letters: the feed decides
    assert textdir.language_and_direction("Hello", None, None) == (None, None)
    assert textdir.language_tag(" en_GB ") == "en-GB" and textdir.language_tag("not a tag!") is None
