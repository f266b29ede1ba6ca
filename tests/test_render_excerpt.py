"""Excerpts: CJK counted by characters, <br>-separated text counted, no dangling lead-ins."""

from __future__ import annotations

from digest import excerpts, htmlclean


def _excerpted(fragment: str, words: int) -> tuple[bool, str]:
    root = htmlclean.parse_fragment(fragment)
    cut = excerpts.excerpt(root, words)
    return cut, root.text_content()


def test_cjk_paragraphs_are_counted_by_characters() -> None:
    paragraph = "<p>" + "这是一个关于静态网站生成器的段落，" * 5 + "</p>"  # 85 characters, no spaces
    cut, text = _excerpted(paragraph * 40, 150)
    assert cut
    kept = text.count("这是一个")
    # 150 words at half a word per character: about 300 characters, i.e. 3-4 paragraphs of 85.
    assert 5 * 2 <= kept <= 5 * 5, kept
    assert excerpts.text_words("日本語の文章") == 3
    assert excerpts.text_words("한국어 text") == 3


def test_text_between_br_tags_is_counted() -> None:
    line = "word " * 20
    cut, text = _excerpted("<div>" + "<br>".join([line] * 40) + "</div>", 150)
    assert cut
    assert 100 <= len(text.split()) <= 160
    cut, text = _excerpted("<p>" + "<br><br>".join([line] * 40) + "</p>", 150)
    assert cut and 100 <= len(text.split()) <= 160
    # Bare text with <br> straight in the fragment, as Blogger sends it.
    cut, text = _excerpted("<br>".join([line] * 40), 150)
    assert cut and 100 <= len(text.split()) <= 160


def test_an_excerpt_never_ends_on_a_heading_or_a_bold_lead_in() -> None:
    body = "<p>" + "word " * 60 + "</p>"
    fragment = (
        body + "<h3>Next part</h3>" + body + "<p><strong>Step two</strong></p>" + body + "<p>Like this:</p>" + body
    )
    for words in (130, 190, 240):
        root = htmlclean.parse_fragment(fragment)
        assert excerpts.excerpt(root, words)
        last = [c for c in root if isinstance(c.tag, str)][-1]
        assert last.tag == "p" and last.find("strong") is None and not last.text_content().endswith(":"), words


def test_a_short_post_is_left_whole() -> None:
    root = htmlclean.parse_fragment("<p>one<br>two</p>")
    assert excerpts.excerpt(root, 150) is False
    assert root.find(".//br") is not None
