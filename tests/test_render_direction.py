"""Right-to-left entries get dir="rtl" (and their declared lang) per card, in a mixed feed too."""

from __future__ import annotations

from lxml import html as lxml_html

from conftest import FIXTURES, settings_from, stored_entries_from
from digest import render, textdir


def test_each_card_of_a_mixed_feed_gets_its_own_direction(env: dict[str, str]) -> None:
    settings = settings_from({**env, "DIGEST_MODE": "full"})
    digest = render.render_digest(stored_entries_from(FIXTURES / "render" / "rtl-mixed.atom"), settings)
    document = lxml_html.document_fromstring(digest.html)
    arabic = next(c for c in document.iter("table") if "مولد المواقع" in c.text_content() and c.get("class") == "entry")
    english = next(c for c in document.iter("table") if "Static sites, in English" in c.text_content()
                   and c.get("class") == "entry")  # fmt: skip
    hebrew = next(c for c in document.iter("table") if "אתרים סטטיים" in c.text_content() and c.get("class") == "entry")
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
