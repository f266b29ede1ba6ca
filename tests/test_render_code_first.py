"""A post that begins with a code block, or whose excerpt keeps only one, is restyled like any other.

Before issue 14 such a block kept its raw classes or a dark theme's colours
on white (1.4:1), with no panel and no wrapping, because the restyling looked
for the block's wrapper inside the entry and the fragment's root has no
parent. Through the real pipeline (feedparser, nh3, excerpts, premailer), in
both modes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest import codeblocks, render
from helpers import settings_from, stored_entries_from, write_atom_feed

MONOKAI = ("#f8f8f2", "#272822", "#f92672", "#a6e22e", "#e6db74", "#75715e")
LONG_PROSE = "".join(
    f"<p>Paragraph {n} explains the code above in many more words than an excerpt keeps.</p>" for n in range(8)
)
POSTS = {
    # Hugo/Chroma with inline colours for a dark theme, first thing in the post, then prose.
    "Dark code first": (
        '<div class="highlight"><pre tabindex="0" style="color:#f8f8f2;background-color:#272822;">'
        '<code class="language-go" data-lang="go"><span style="display:flex;"><span>'
        '<span style="color:#f92672">package</span> main\n</span></span><span style="display:flex;"><span>'
        '<span style="color:#75715e">// a comment that the dark theme greys out</span>\n</span></span>'
        '<span style="display:flex;"><span><span style="color:#a6e22e">run</span>(<span style="color:#e6db74">'
        '"a string long enough to need the server-side wrap on a phone screen"</span>)\n</span></span>'
        f"</code></pre></div>{LONG_PROSE}"
    ),
    # Nothing but a Rouge block.
    "Only code": (
        '<div class="language-python highlighter-rouge"><div class="highlight"><pre class="highlight"><code>'
        '<span class="k">def</span> <span class="nf">only</span><span class="p">():</span>\n'
        '    <span class="k">return</span> <span class="mi">1</span>\n</code></pre></div></div>'
    ),
}
_COLOUR = re.compile(r"(?:^|;)\s*color:\s*(#[0-9a-fA-F]{6})")


@pytest.mark.parametrize("mode", ["excerpt", "full"])
def test_a_leading_or_lone_code_block_gets_the_panel_and_readable_colours(
    tmp_path: Path, env: dict[str, str], mode: str
) -> None:
    entries = stored_entries_from(write_atom_feed(tmp_path / "code-first.atom", "code-first", "Code first", POSTS))
    settings = settings_from({**env, "DIGEST_MODE": mode, "DIGEST_EXCERPT_WORDS": "10"})
    document = lxml_html.document_fromstring(render.render_digest(entries, settings).html)
    bodies = {
        cell.find_class("dg-entry-title")[0].text_content().strip(): cell.find_class("dg-entry-body")[0]
        for cell in document.find_class("dg-entry-cell")
    }
    assert set(bodies) == set(POSTS)
    if mode == "excerpt":  # the excerpt kept the code block and none of the prose after it
        assert "Paragraph 0" not in bodies["Dark code first"].text_content()
    for title, body in bodies.items():
        cells = body.find_class("dg-code-cell")
        assert len(cells) == 1, (title, lxml_html.tostring(body)[:300])
        background = cells[0].get("bgcolor") or ""
        pre = cells[0].find("pre")
        assert pre is not None and "pre-wrap" in (pre.get("style") or "")
        markup = lxml_html.tostring(pre, encoding="unicode").lower()
        assert not any(colour in markup for colour in MONOKAI), title
        assert 'class="k"' not in markup and 'class="nf"' not in markup
        for element in [pre, *pre.iter("span")]:
            match = _COLOUR.search(element.get("style") or "")
            assert match, (title, lxml_html.tostring(element))
            assert codeblocks.contrast_ratio(match.group(1), background) >= 4.5, (title, match.group(1))
        lines = pre.text_content().split("\n")
        assert max(len(line) for line in lines) <= codeblocks.WRAP_COLUMNS, title
