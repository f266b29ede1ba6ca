"""A code block that declares its language but whose markup has no usable classes is highlighted again.

Blogs send such blocks when their highlighter ran in the browser, when a theme
wraps each line in a span of its own (``line``, ``cl``) or when a CMS kept the
spans but stripped their classes. Through the real pipeline (feedparser, the
nh3 sanitiser, codeblocks.py, premailer) the block gets Pygments' colours for
its language; a language Pygments does not know stays plain and readable.
"""

from __future__ import annotations

from pathlib import Path

from lxml import html as lxml_html
from lxml.html import HtmlElement

from digest import codeblocks, render
from helpers import settings_from, stored_entries_from, write_atom_feed

POSTS = {
    # Chroma's line wrappers kept, its token classes gone (a theme with highlighting done in JS).
    "Line spans only": (
        '<div class="highlight"><pre><code class="language-python" data-lang="python">'
        '<span class="line"><span class="cl">def greet(name):\n</span></span>'
        '<span class="line"><span class="cl">    return "hi " + name  # says hello\n</span></span>'
        "</code></pre></div>"
    ),
    # highlight.js's bare form, language in the class list, nothing tokenised (highlighting ran client-side).
    "Bare highlight class": '<pre class="highlight c++"><code>int main() { return 0; }\n</code></pre>',
    # Rouge's wrapper names the language; the CMS stripped every span's class.
    "Classes stripped": (
        '<div class="language-ruby highlighter-rouge"><div class="highlight"><pre class="highlight"><code>'
        '<span>def</span> <span>shout</span>(<span>word</span>)\n  <span>puts</span> <span>"loud"</span>\n'
        "<span>end</span>\n</code></pre></div></div>"
    ),
    # A language Pygments does not know, with line spans: no colours invented, the text intact.
    "Unknown language": (
        '<pre><code class="language-klingon"><span class="line">Qapla\' batlh bIHeghjaj\n</span>'
        '<span class="line">nuqneH\n</span></code></pre>'
    ),
}


def _blocks(tmp_path: Path, env: dict[str, str]) -> dict[str, HtmlElement]:
    wrapped = {title: f"<p>Before the code.</p>{body}<p>After it.</p>" for title, body in POSTS.items()}
    entries = stored_entries_from(
        write_atom_feed(tmp_path / "rehighlight.atom", "rehighlight", "Re-highlight", wrapped)
    )
    digest = render.render_digest(entries, settings_from({**env, "DIGEST_MODE": "full"}))
    document = lxml_html.document_fromstring(digest.html)
    blocks = {}
    for card in document.iter("table"):
        if "dg-entry" not in (card.get("class") or "").split():
            continue
        title = next(e for e in card.iter() if "dg-entry-title" in (e.get("class") or "")).text_content().strip()
        pres = [pre for pre in card.iter("pre")]
        assert len(pres) == 1, title
        blocks[title] = pres[0]
    assert set(blocks) == set(POSTS)
    return blocks


def _styles(pre: HtmlElement) -> dict[str, str]:
    return {span.text_content().strip(): span.get("style") or "" for span in pre.iter("span")}


def test_a_declared_language_without_usable_classes_is_highlighted_again(tmp_path: Path, env: dict[str, str]) -> None:
    colours = codeblocks.palette("default")
    blocks = _blocks(tmp_path, env)

    python = _styles(blocks["Line spans only"])
    assert python["def"] == colours.spans["k"]
    assert python["greet"] == colours.spans["nf"]
    assert python['"hi "'] == colours.spans["s"]
    assert python["# says hello"].startswith(colours.spans["c"])
    cpp = _styles(blocks["Bare highlight class"])
    assert cpp["int"] == colours.spans["kt"]
    assert cpp["return"] == colours.spans["k"]
    ruby = _styles(blocks["Classes stripped"])
    assert ruby["def"] == colours.spans["k"]
    assert ruby['"loud"'] == colours.spans["s2"] or ruby['"loud"'] == colours.spans["s"]
    for title in ("Line spans only", "Bare highlight class", "Classes stripped"):
        pre = blocks[title]
        assert all(set(span.attrib) == {"style"} for span in pre.iter("span"))  # inline colours, no blog classes
        assert len(set(_styles(pre).values())) >= 2, title


def test_an_unknown_language_stays_plain_and_readable(tmp_path: Path, env: dict[str, str]) -> None:
    pre = _blocks(tmp_path, env)["Unknown language"]
    colours = codeblocks.palette("default")

    assert list(pre.iter("span")) == []  # no colours invented, the line spans gone
    assert pre.text_content() == "Qapla' batlh bIHeghjaj\nnuqneH"
    assert f"color:{colours.foreground}" in (pre.get("style") or "")
    assert codeblocks.contrast_ratio(colours.foreground, colours.background) >= 4.5
