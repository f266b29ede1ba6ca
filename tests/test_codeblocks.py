"""Every highlighter's output leaves codeblocks.py as one look: inline colours that read.

The snippets are what each highlighter really emits (Rouge, Chroma with
classes or inline colours, highlight.js, Prism, nothing at all); the checks
are what a reader in a client without <style> support would meet.
"""

from __future__ import annotations

import re

import pytest
from lxml import html as lxml_html
from lxml.html import HtmlElement
from pygments.styles import get_all_styles

from digest import codeblocks, htmlclean

ROUGE = (
    '<div class="language-python highlighter-rouge"><div class="highlight"><pre class="highlight"><code>'
    '<span class="k">def</span> <span class="nf">f</span><span class="p">():</span>\n'
    '\t<span class="k">return</span> <span class="mi">1</span>  <span class="c1"># one\n'
    '</span>\t<span class="kv">yield</span> <span class="mx">0x1F</span>\n</code></pre></div></div>'
)
ROUGE_LINE_NUMBERS = (
    '<div class="highlight"><pre class="highlight"><code><table class="rouge-table"><tbody><tr>'
    '<td class="rouge-gutter gl"><pre class="lineno">1\n2\n</pre></td>'
    '<td class="rouge-code"><pre><span class="k">let</span> <span class="n">a</span> <span class="o">=</span> '
    '<span class="mi">1</span><span class="p">;</span>\n<span class="n">a</span>\n</pre></td>'
    "</tr></tbody></table></code></pre></div>"
)
CHROMA_CLASSES = (
    '<div class="highlight"><pre tabindex="0" class="chroma"><code class="language-go" data-lang="go">'
    '<span class="line"><span class="cl"><span class="kd">func</span> <span class="nf">Port</span>'
    '<span class="p">()</span> <span class="kt">int</span> <span class="p">{</span>\n</span></span>'
    '<span class="line"><span class="cl">\t<span class="k">return</span> <span class="mi">8080</span> '
    '<span class="c1">// default</span>\n</span></span><span class="line"><span class="cl">'
    '<span class="p">}</span>\n</span></span></code></pre></div>'
)
CHROMA_INLINE = (  # monokai, as feedparser passes it on (the dark <pre> background dropped)
    '<div class="highlight"><pre tabindex="0"><code class="language-go"><span style="display: flex;"><span>'
    '<span style="color: #66d9ef;">func</span> <span style="color: #a6e22e;">main</span>() {\n</span></span>'
    '<span style="display: flex;"><span>\t<span style="color: #a6e22e;">fmt</span>.'
    '<span style="color: #a6e22e;">Println</span>(<span style="color: #e6db74;">"hi"</span>, '
    '<span style="color: #ae81ff;">42</span>) <span style="color: #75715e;">// greet</span>\n</span></span>'
    '<span style="display: flex;"><span>\t<span style="color: #ffd700;">odd</span>()\n}\n</span></span>'
    "</code></pre></div>"
)
HLJS = (
    '<pre><code class="hljs language-javascript"><span class="hljs-keyword">const</span> n = '
    '<span class="hljs-number">42</span>; <span class="hljs-comment">// answer</span>\n'
    '<span class="hljs-title function_">wait</span>(<span class="hljs-string">\'x\'</span>, '
    '<span class="hljs-literal">true</span>, <span class="hljs-title class_">Promise</span>)</code></pre>'
)
PRISM = (
    '<pre class="language-css"><code class="language-css"><span class="token selector">.card</span> '
    '<span class="token punctuation">{</span> <span class="token property">margin</span>'
    '<span class="token punctuation">:</span> <span class="token number">0</span> '
    '<span class="token comment">/* none */</span> <span class="token punctuation">}</span>\n'
    '<span class="token atrule"><span class="token rule">@media</span> print</span></code></pre>'
)
PLAIN_RUST = '<pre><code class="language-rust">fn main() {\n\tlet x: u32 = 42; // answer\n}\n</code></pre>'
UNKNOWN = '<pre><code class="language-klingon">Qapla\'\tbatlh\n</code></pre>'
NO_LANGUAGE = "<pre>$ make &amp;&amp; echo &lt;ok&gt;</pre>"

FORMS = {
    "rouge": ROUGE,
    "rouge-line-numbers": ROUGE_LINE_NUMBERS,
    "chroma-classes": CHROMA_CLASSES,
    "chroma-inline": CHROMA_INLINE,
    "highlight.js": HLJS,
    "prism": PRISM,
    "plain-rust": PLAIN_RUST,
    "unknown-language": UNKNOWN,
    "no-language": NO_LANGUAGE,
}
HIGHLIGHTED = [name for name in FORMS if name not in ("unknown-language", "no-language")]
_COLOUR = re.compile(r"(?:^|;)\s*color:\s*(#[0-9a-f]{6})")
_BACKGROUND = re.compile(r"background-color:\s*(#[0-9a-f]{6})")


def styled(fragment: str, style: str = "default") -> HtmlElement:
    root = htmlclean.parse_fragment(f"<p>Intro</p>{fragment}<p>After</p>")
    codeblocks.style_code_blocks(root, style)
    return root


def colour_of(element: HtmlElement) -> str | None:
    match = _COLOUR.search(element.get("style") or "")
    return match.group(1) if match else None


def code_pre(root: HtmlElement) -> HtmlElement:
    blocks = [pre for pre in root.iter("pre")]
    assert len(blocks) == 1, lxml_html.tostring(root)
    return blocks[0]


def cell_background(pre: HtmlElement) -> str:
    cell = pre.getparent()
    assert cell is not None and cell.tag == "td"
    match = _BACKGROUND.search(cell.get("style") or "")
    assert match, cell.get("style")
    assert cell.get("bgcolor") == match.group(1)  # Outlook reads the attribute
    return match.group(1)


@pytest.mark.parametrize("form", list(FORMS))
def test_each_form_becomes_a_table_cell_block_with_inline_colours(form: str) -> None:
    root = styled(FORMS[form])
    pre = code_pre(root)
    background = cell_background(pre)
    assert pre.getparent().getparent().getparent().tag == "table"
    assert "monospace" in (pre.get("style") or "")
    # Without it a table cell grows to the longest unbroken token and a phone shows half the email.
    assert "word-break:break-word" in (pre.get("style") or "")
    assert "\t" not in pre.text_content()
    assert colour_of(pre), "the block's own text colour is inline"
    spans = list(pre.iter("span"))
    if form in HIGHLIGHTED:
        assert len({colour_of(span) for span in spans}) >= 2, lxml_html.tostring(pre)
    else:
        assert spans == []
    for span in spans:
        assert set(span.attrib) == {"style"}, "no classes left: the look comes from inline styles only"
        assert colour_of(span), lxml_html.tostring(span)
    for element in [pre, *spans]:
        colour = colour_of(element)
        assert colour is not None
        ratio = codeblocks.contrast_ratio(colour, background)
        assert ratio >= 4.5, f"{form}: {colour} on {background} is {ratio:.2f}:1"


@pytest.mark.parametrize("form", list(FORMS))
def test_the_code_text_survives_unchanged_apart_from_tabs(form: str) -> None:
    original = htmlclean.parse_fragment(FORMS[form])
    expected_pre = [p for p in original.iter("pre") if "lineno" not in (p.get("class") or "")][-1]
    expected = "\n".join(line.expandtabs(4).rstrip() for line in expected_pre.text_content().strip("\n").split("\n"))

    assert code_pre(styled(FORMS[form])).text_content() == expected


def test_chroma_dark_theme_colours_are_replaced_by_the_configured_style() -> None:
    pre = code_pre(styled(CHROMA_INLINE))
    colours = codeblocks.palette("default")
    by_text = {span.text_content().strip(): span.get("style") for span in pre.iter("span")}

    assert by_text["func"] == colours.spans["k"]  # monokai's keyword blue, recognised as a keyword
    assert by_text['"hi"'] == colours.spans["s"]
    assert by_text["// greet"] == colours.spans["c"]
    for monokai in ("#66d9ef", "#a6e22e", "#e6db74", "#ae81ff", "#75715e", "#ffd700"):
        assert monokai not in lxml_html.tostring(pre, encoding="unicode")


def test_highlight_js_and_prism_classes_map_to_pygments_tokens() -> None:
    colours = codeblocks.palette("default")
    hljs = {s.text_content().strip(): s.get("style") for s in code_pre(styled(HLJS)).iter("span")}
    prism = {s.text_content().strip(): s.get("style") for s in code_pre(styled(PRISM)).iter("span")}

    assert hljs["const"] == colours.spans["k"]
    assert hljs["42"] == colours.spans["m"]
    assert hljs["// answer"] == colours.spans["c"]
    assert hljs["'x'"] == colours.spans["s"]
    assert hljs["Promise"] == colours.spans["nc"]
    assert prism[".card"] == colours.spans["nt"]
    assert prism["/* none */"] == colours.spans["c"]
    assert prism["@media print"] == colours.spans["k"]


def test_plain_code_with_a_language_is_highlighted_and_unknown_stays_plain() -> None:
    rust = code_pre(styled(PLAIN_RUST))
    unknown = code_pre(styled(UNKNOWN))

    assert any(s.text_content().strip() == "fn" for s in rust.iter("span"))
    assert list(unknown.iter("span")) == []
    assert unknown.text_content() == "Qapla'  batlh"


def test_long_lines_are_wrapped_within_the_column_with_a_marker() -> None:
    long_call = "    result = call(attempt, timeout_seconds=30, on_failure='log-and-continue-with-the-next')"
    word = "x" * 150
    root = styled(f'<pre><code class="language-python">{long_call}\n{word}\nshort = 1\n</code></pre>')
    lines = code_pre(root).text_content().split("\n")

    assert max(len(line) for line in lines) <= codeblocks.WRAP_COLUMNS
    assert lines[1].startswith("    " + codeblocks.CONTINUATION)  # under the line's own indentation
    assert lines[-1] == "short = 1"
    joined = "".join(lines).replace(codeblocks.CONTINUATION, "").replace(" ", "")
    assert word in joined


def test_inline_code_is_styled_distinctly_from_blocks() -> None:
    root = styled("<p>Call <code>retry()</code> twice.</p>")
    code = next(c for c in root.iter("code") if c.text == "retry()")

    style = code.get("style") or ""
    assert "monospace" in style and "background-color" in style and "color:" in style
    assert code.get("class") == "dg-inline-code"


@pytest.mark.parametrize("style_name", sorted(get_all_styles()))
def test_every_pygments_style_gives_readable_token_colours(style_name: str) -> None:
    colours = codeblocks.palette(style_name)
    for short, css in [("text", f"color:{colours.foreground}"), *colours.spans.items()]:
        match = _COLOUR.search(css)
        assert match, (short, css)
        assert codeblocks.contrast_ratio(match.group(1), colours.background) >= 4.5, (style_name, short, css)


def test_the_default_style_reads_when_a_gmail_app_inverts_it() -> None:
    # Gmail's apps invert light emails on their own (no @media support): the
    # default style must keep its contrast with every colour inverted.
    colours = codeblocks.palette("default")

    def inverted(colour: str) -> str:
        return f"#{0xFFFFFF - int(colour[1:], 16):06x}"

    assert codeblocks.relative_luminance(colours.background) > 0.85  # a light style
    for css in [f"color:{colours.foreground}", *colours.spans.values()]:
        match = _COLOUR.search(css)
        assert match
        assert codeblocks.contrast_ratio(inverted(match.group(1)), inverted(colours.background)) >= 4.5, css
    assert "background" not in "".join(colours.spans.values())  # token backgrounds invert into blobs


def test_wordpress_blocks_with_br_and_a_brush_class_are_highlighted_line_by_line() -> None:
    root = styled('<pre class="brush: python; title: ; notranslate">x = 1<br>if x:<br />    print(x)</pre>')
    pre = code_pre(root)

    assert pre.text_content() == "x = 1\nif x:\n    print(x)"
    assert any(span.text_content().strip() == "if" for span in pre.iter("span"))


HEXO_GUTTER = (
    '<figure class="highlight python"><table><tr><td class="gutter"><pre><span class="line">1</span><br>'
    '<span class="line">2</span><br></pre></td><td class="code"><pre><span class="line">'
    '<span class="keyword">def</span> <span class="title function_">f</span>():</span><br>'
    '<span class="line">    <span class="keyword">return</span> <span class="number">1</span></span><br>'
    "</pre></td></tr></table></figure><p>after</p>"
)
ZOLA_SYNTECT = (
    '<pre data-lang="rust" class="language-rust z-code"><code class="language-rust" data-lang="rust">'
    '<span class="z-source z-rust"><span class="z-storage z-type z-function z-rust">fn</span> '
    '<span class="z-entity z-name z-function z-rust">main</span>() {}</span></code></pre>'
)
BARE_HLJS_LANGUAGE = '<pre class="highlight c++"><code>int main() { return 0; }\n</code></pre>'


def _styled(fragment: str) -> HtmlElement:
    root = htmlclean.parse_fragment(fragment)
    codeblocks.style_code_blocks(root, "default")
    return root


def test_a_hexo_gutter_table_becomes_one_code_block_without_line_numbers() -> None:
    root = _styled(HEXO_GUTTER)
    text = root.text_content()
    assert "def f():" in text and "return 1" in text
    assert not re.search(r"^\s*1\s*$", text, re.MULTILINE)  # no gutter digits left
    assert "12def" not in text.replace("\n", "").replace(" ", "")
    code_tables = [t for t in root.iter("table") if "def f" in t.text_content()]
    # Whatever wrapper the restyle uses, no table inside it holds the gutter any more.
    assert all(not t.xpath(".//td[contains(@class,'gutter')]") for t in code_tables)
    assert "after" in text


def test_syntect_z_classes_and_bare_language_classes_are_coloured() -> None:
    zola = lxml_html.tostring(_styled(ZOLA_SYNTECT), encoding="unicode")
    assert "z-storage" not in zola and "color:" in zola
    assert codeblocks.code_language(lxml_html.fragment_fromstring(BARE_HLJS_LANGUAGE)) == "c++"
    cpp = lxml_html.tostring(_styled(BARE_HLJS_LANGUAGE), encoding="unicode")
    assert "color:" in cpp and "return" in cpp


def test_a_post_that_is_only_a_code_block_is_restyled() -> None:
    root = _styled('<div class="highlight"><pre class="chroma"><code><span class="k">let</span> x</code></pre></div>')
    out = lxml_html.tostring(root, encoding="unicode")
    assert "<td" in out and "color:" in out and 'class="k"' not in out


def test_a_string_literal_is_not_cut_when_a_cut_before_it_lets_it_fit() -> None:
    string = '"log-and-continue-with-the-next-attempt"'
    line = f"        result = call(attempt, timeout_seconds=30, on_failure={string})  # try again"
    lines = code_pre(styled(f'<pre><code class="language-python">{line}\n</code></pre>')).text_content().split("\n")
    assert len(lines) > 1 and max(len(piece.rstrip()) for piece in lines) <= codeblocks.WRAP_COLUMNS
    assert any(string in piece for piece in lines), lines  # whole, on one line
    assert any(piece.strip().endswith("# try again") for piece in lines)  # nor the comment


def test_a_block_inside_a_list_wraps_narrower_by_the_lists_indent() -> None:
    long_line = "x = " + " + ".join(f"value_{n}" for n in range(12))
    root = styled(f'<ul><li><pre><code class="language-python">{long_line}\n</code></pre></li></ul>')
    lines = code_pre(root).text_content().split("\n")
    assert max(len(piece) for piece in lines) < codeblocks.WRAP_COLUMNS - 2
