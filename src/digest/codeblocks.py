"""Give every code block one consistent, email-proof look in a Pygments style.

Whatever highlighted the blog (Rouge, Chroma, highlight.js, Prism, nothing),
each ``<pre>`` leaves here as a table-cell-wrapped block whose token colours
are inline ``style`` attributes, so the code stays coloured in clients that
drop ``<style>`` and classes (see email-facts.md):

* spans already carrying Pygments short classes (Rouge, Chroma) keep the
  blog's tokenisation and are recoloured from the configured style;
* unhighlighted code with a known language class is highlighted by Pygments;
* anything else stays plain, in the style's default text colour.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache

from lxml import html as lxml_html
from lxml.html import HtmlElement
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

MONOSPACE = "SFMono-Regular, Menlo, Consolas, 'Liberation Mono', 'Courier New', monospace"
TAB_WIDTH = 4
_LANGUAGE = re.compile(r"^(?:language|lang|highlight-source)-([\w+#.-]+)$")
# Rouge emits a few classes Pygments' CSS does not define; map them to the
# nearest standard token so they are coloured too.
_EXTRA_CLASSES = {"kv": "k", "mx": "m", "pi": "cp", "cd": "c", "gl": "go"}
_NO_LEXER = {"plaintext", "text", "plain", "txt", "none", "output", "console-output"}


@dataclass(frozen=True)
class CodePalette:
    """Colours of one Pygments style, keyed by short class name."""

    name: str
    background: str
    foreground: str
    border: str
    spans: dict[str, str]  # short class -> inline CSS

    def span_style(self, classes: list[str]) -> str | None:
        for cls in classes:
            style: str | None = self.spans.get(_EXTRA_CLASSES.get(cls, cls))
            if style:
                return style
        return None


@cache
def palette(style_name: str) -> CodePalette:
    style: StyleMeta = get_style_by_name(style_name)
    text_colour = style.style_for_token(_token("Text"))["color"]
    foreground = f"#{text_colour}" if text_colour else "#24292e"
    spans: dict[str, str] = {}
    for token_type, short in STANDARD_TYPES.items():
        if short:
            # Tokens the style leaves uncoloured still get the text colour, so
            # every span carries its colour inline.
            css = _token_css(style, token_type)
            spans[short] = css if "color:" in css else ";".join(filter(None, [f"color:{foreground}", css]))
    return CodePalette(
        name=style_name,
        background=getattr(style, "background_color", None) or "#f6f8fa",
        foreground=foreground,
        border="#d0d7de",
        spans=spans,
    )


def _token(name: str) -> _TokenType:
    from pygments import token

    return getattr(token, name)  # type: ignore[no-any-return]


def _token_css(style: StyleMeta, token_type: _TokenType) -> str:
    info = style.style_for_token(token_type)
    parts = []
    if info["color"]:
        parts.append(f"color:#{info['color']}")
    if info["bold"]:
        parts.append("font-weight:bold")
    if info["italic"]:
        parts.append("font-style:italic")
    return ";".join(parts)


@cache
def _lexer(language: str) -> Lexer | None:
    if language.lower() in _NO_LEXER:
        return None
    try:
        return get_lexer_by_name(language.lower(), stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def code_language(pre: HtmlElement) -> str | None:
    """The language a block declares on itself, its <code> or an ancestor (Rouge)."""
    candidates: list[HtmlElement] = [*pre.iterchildren("code"), pre]
    parent = pre.getparent()
    for _ in range(3):
        if parent is None:
            break
        candidates.append(parent)
        parent = parent.getparent()
    for element in candidates:
        lang = element.get("data-lang") or element.get("data-language")
        if lang:
            return str(lang).strip()
        for cls in (element.get("class") or "").split():
            match = _LANGUAGE.match(cls)
            if match:
                return match.group(1)
    return None


def _has_pygments_spans(pre: HtmlElement) -> bool:
    for span in pre.iter("span"):
        for cls in (span.get("class") or "").split():
            if cls in STANDARD_TYPES.values() or cls in _EXTRA_CLASSES:
                return True
    return False


def style_code_blocks(root: HtmlElement, style_name: str) -> None:
    """Rewrite every <pre> under ``root`` in place (see the module docstring)."""
    colours = palette(style_name)
    for pre in list(root.iter("pre")):
        if pre.getparent() is None:
            continue
        language = code_language(pre)
        if _has_pygments_spans(pre):
            inner = _restyle_spans(pre, colours)
        else:
            code = _expand_tabs(pre.text_content())
            lexer = _lexer(language) if language else None
            if lexer is not None:
                inner = highlight(code, lexer, _formatter(style_name)).rstrip("\n")
            else:
                inner = html.escape(code.rstrip("\n"), quote=False)
        _replace_with_block(pre, inner, colours)
    for code in root.iter("code"):
        if code.getparent() is not None and code.getparent().tag != "pre":
            code.set("style", f"font-family:{MONOSPACE};font-size:90%;background-color:#eff1f3;"
                              "color:#24292e;padding:1px 4px;border-radius:3px")  # fmt: skip
            code.attrib.pop("class", None)


@cache
def _formatter(style_name: str) -> HtmlFormatter:  # type: ignore[type-arg]
    return HtmlFormatter(style=style_name, noclasses=True, nowrap=True)


def _restyle_spans(pre: HtmlElement, colours: CodePalette) -> str:
    """Serialise the <pre>'s content with Pygments colours inline on each span."""
    for element in pre.iter():
        if element is pre:
            continue
        if element.tag == "span":
            style = colours.span_style((element.get("class") or "").split())
            element.attrib.clear()
            if style:
                element.set("style", style)
        if element.text:
            element.text = _expand_tabs(element.text)
        if element.tail:
            element.tail = _expand_tabs(element.tail)
    # Drop wrappers such as <code> (keeping their content): the block is rebuilt.
    body = (html.escape(_expand_tabs(pre.text or ""), quote=False)) + "".join(_inner_html(child) for child in pre)
    return body.rstrip("\n ")


def _inner_html(element: HtmlElement) -> str:
    if element.tag == "code":
        text = html.escape(element.text or "", quote=False)
        inner = text + "".join(_inner_html(child) for child in element)
        return inner + html.escape(element.tail or "", quote=False)
    return lxml_html.tostring(element, encoding="unicode", with_tail=True)  # type: ignore[no-any-return]


def _expand_tabs(text: str) -> str:
    return "\n".join(line.expandtabs(TAB_WIDTH) for line in text.split("\n"))


def _replace_with_block(pre: HtmlElement, inner: str, colours: CodePalette) -> None:
    """Swap ``pre`` (or its Rouge/Chroma wrapper divs) for a table-wrapped block."""
    target = pre
    parent = pre.getparent()
    # Rouge wraps as div.language-x > div.highlight > pre; Chroma as div.highlight > pre.
    while parent is not None and parent.tag == "div" and len(parent) == 1 and not (parent.text or "").strip():
        target, parent = parent, parent.getparent()
    block = lxml_html.fragment_fromstring(
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" class="code-block" '
        'style="border-collapse:separate;margin:0 0 16px 0;width:100%">'
        f'<tr><td class="code-cell" style="background-color:{colours.background};border:1px solid {colours.border};'
        'padding:12px 14px">'
        f'<pre style="margin:0;font-family:{MONOSPACE};font-size:13px;line-height:1.5;color:{colours.foreground};'
        f'white-space:pre-wrap;word-wrap:break-word;word-break:break-word">{inner}</pre>'
        "</td></tr></table>"
    )
    block.tail = target.tail
    if target.getparent() is not None:
        target.getparent().replace(target, block)
