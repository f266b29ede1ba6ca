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
    from helpers import FIXTURES, settings_from, stored_entries_from

    digest = render.render_digest(stored_entries_from(FIXTURES / "render" / "rtl-mixed.atom"), settings_from(env))
    assert "\n-- \n" in digest.text


def test_code_comes_back_whole_without_wrap_markers() -> None:
    from digest import codeblocks

    long_line = '    result = call(attempt, timeout_seconds=30, on_failure="log-and-continue")  # try again later'
    root = htmlclean.parse_fragment(f'<pre><code class="language-python">{long_line}\nshort = 1\n</code></pre>')
    codeblocks.style_code_blocks(root, "default")
    assert codeblocks.CONTINUATION in root.text_content()  # the HTML wraps it, marked
    lines = textify.html_to_text(root).splitlines()
    assert not any(codeblocks.CONTINUATION.strip() in line for line in lines)
    assert max(len(line) for line in lines) <= textify.WIDTH
    # Cut for the text part's own width, not inside the string, the rest indented.
    assert lines[0] == "        result = call(attempt, timeout_seconds=30,"
    assert lines[1] == '            on_failure="log-and-continue")  # try again later'
    assert lines[2] == "    short = 1"


def test_every_line_of_every_fixture_text_part_is_wrapped(env: dict[str, str]) -> None:
    from helpers import FIXTURES, settings_from, stored_entries_from

    for feed in sorted((FIXTURES / "render").iterdir()):
        for mode in ("full", "excerpt"):
            settings = settings_from({**env, "DIGEST_MODE": mode})
            text = render.render_digest(stored_entries_from(feed), settings).text
            assert "\u21aa" not in text, feed.name
            for line in text.splitlines():
                # Only a single unbreakable word (a URL) may pass the width.
                assert len(line) <= textify.WIDTH or len(line.split()) <= 2, (feed.name, line)
