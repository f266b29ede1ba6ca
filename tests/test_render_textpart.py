"""The text/plain part: numbered lists, tables as rows, the signature separator, the shortened note."""

from __future__ import annotations

from digest import htmlclean, render, textify


def _text(fragment: str) -> str:
    return textify.html_to_text(htmlclean.parse_fragment(fragment))


def test_ordered_lists_are_numbered_and_bullets_stay_bullets() -> None:
    text = _text(
        '<ol><li>first</li><li>second</li></ol><ol start="9"><li>nine</li><li>ten</li></ol><ul><li>dot</li></ul>'
    )
    lines = text.splitlines()
    assert "1. first" in lines and "2. second" in lines
    assert "9. nine" in lines and "10. ten" in lines
    assert "- dot" in lines


def test_table_cells_are_kept_apart_one_row_a_line() -> None:
    text = _text("<table><tr><th>Tool</th><th>Speed</th></tr><tr><td>Hugo</td><td>fast</td></tr></table>")
    assert "Tool | Speed" in text.splitlines() and "Hugo | fast" in text.splitlines()


def test_the_shortened_note_names_the_posts_and_gets_the_plural_right() -> None:
    one = render._shortened_note(1, 20, ["Post A"])
    assert one.startswith("1 of 20 posts was shortened")
    assert "Post A" in one
    two = render._shortened_note(2, 5, ["A", "B"])
    assert two.startswith("2 of 5 posts were shortened") and "A; B" in two
    assert render._shortened_note(1, 1, ["Only"]).startswith("This post was shortened")


def test_the_signature_separator_is_dash_dash_space(env: dict[str, str]) -> None:
    from conftest import FIXTURES, settings_from, stored_entries_from

    digest = render.render_digest(stored_entries_from(FIXTURES / "render" / "rtl-mixed.atom"), settings_from(env))
    assert "\n-- \n" in digest.text
