"""Give every code block one consistent, email-proof look in a Pygments style.

Part of render.py's per-entry clean-up. Whatever highlighted the blog, each
``<pre>`` is first reduced to a flat list of runs (token type, text):

* Pygments short classes (Rouge, Chroma with classes): the class is the token;
* highlight.js ``hljs-*`` and Prism ``token x`` classes: mapped to Pygments
  token types (tables below);
* Chroma with inline colours (meant for a dark background, which feedparser
  drops): each colour is looked up in Pygments' dark styles, which Chroma's
  styles are ports of, to recover its token type; an unknown colour keeps its
  hue and is darkened until it reads on the light background;
* plain code with a language class: tokenised by Pygments; unknown
  languages stay plain.

The runs are then tab-expanded, hard-wrapped and written back as one
``<pre>`` inside a table cell whose spans carry their colour inline, so the
code stays coloured in clients that drop ``<style>`` and classes.

Why hard wrapping (see email-facts.md): Outlook for Windows and several
Gmail apps ignore ``white-space``/``overflow``, so a long line in a ``<pre>``
would widen the whole email or be cut off (Gmail for Android cannot scroll
it). Lines longer than ``WRAP_COLUMNS`` (what fits the 600 px column at 13 px
monospace) are broken at a space or punctuation where possible, and the
continuation starts with a muted ``↪`` under the line's indentation. The
``pre-wrap`` CSS stays too, for the clients that honour it on narrow screens,
with ``word-break:break-word``: without it the table cell around the block
grows to the longest unbroken token and a phone shows only part of the email.
``<pre>`` is kept (rather than ``&nbsp;``-spaced divs) so copied code keeps
real spaces.
"""

from __future__ import annotations

import colorsys
import html
import re
from dataclasses import dataclass
from functools import cache

from lxml import html as lxml_html
from lxml.html import HtmlElement
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, Token, _TokenType
from pygments.util import ClassNotFound

from digest import codewrap
from digest.codewrap import CONTINUATION, MARKER, TAB_WIDTH, WRAP_CLASS, Run

__all__ = ["CONTINUATION", "TAB_WIDTH", "style_code_blocks"]

MONOSPACE = "SFMono-Regular, Menlo, Consolas, 'Liberation Mono', 'Courier New', monospace"
# 600 px layout - 2 x 24 px card padding - 2 x 14 px cell padding - border =
# 522 px; a 13 px monospace glyph is ~7.8 px wide (Menlo, Courier New).
WRAP_COLUMNS = 66
MIN_CONTRAST = 4.5  # WCAG AA for normal text
# Inline `code` in prose: a light chip, whatever the block style (the dark-mode
# rule for .dg-inline-code recolours it where @media works).
INLINE_CODE_STYLE = (
    f"font-family:{MONOSPACE};font-size:90%;background-color:#eff1f3;color:#1f2328;"
    "padding:1px 4px;border:1px solid #e1e4e8;border-radius:3px"
)

_LANGUAGE = re.compile(r"^(?:language|lang|highlight-source|highlight)-([\w+#.-]+)$")
_BRUSH = re.compile(r"\bbrush:\s*([\w+#.-]+)")
_NO_LEXER = {"plaintext", "text", "plain", "txt", "none", "output", "console-output", "nohighlight", "no-highlight"}
_SHORT_CLASSES = frozenset(s for s in STANDARD_TYPES.values() if s)
# Rouge emits a few classes Pygments' CSS does not define.
_ROUGE_EXTRA = {"kv": "k", "mx": "m", "pi": "cp", "cd": "c", "gl": "go"}
# Line-number gutters of Rouge, Chroma and highlight.js plugins: not code.
_LINE_NUMBER_CLASSES = {"lineno", "gutter", "ln", "lnt", "lntd", "hljs-ln-numbers", "line-numbers-rows"}
_HLJS = {
    "keyword": "k", "built_in": "nb", "type": "kt", "literal": "kc", "number": "m", "operator": "o",
    "punctuation": "p", "property": "py", "regexp": "sr", "string": "s", "char": "sc", "subst": "si",
    "symbol": "ss", "class": "nc", "function": "nf", "title": "nf", "params": "n", "comment": "c",
    "doctag": "sd", "meta": "cp", "meta-keyword": "cp", "meta-string": "s", "section": "gh", "tag": "nt",
    "name": "nt", "attr": "na", "attribute": "na", "variable": "nv", "bullet": "m", "code": "s",
    "emphasis": "ge", "strong": "gs", "link": "nl", "quote": "c", "selector-tag": "nt", "selector-id": "nn",
    "selector-class": "nc", "selector-attr": "na", "selector-pseudo": "nd", "template-tag": "k",
    "template-variable": "nv", "addition": "gi", "deletion": "gd", "number_": "m", "title.class_": "nc",
    "title.function_": "nf", "variable.language_": "bp", "variable.constant_": "no", "char.escape_": "se",
}  # fmt: skip
_PRISM = {
    "keyword": "k", "builtin": "nb", "class-name": "nc", "function": "nf", "function-name": "nf",
    "boolean": "kc", "number": "m", "string": "s", "char": "sc", "symbol": "ss", "regex": "sr", "url": "s",
    "operator": "o", "variable": "nv", "constant": "no", "property": "py", "punctuation": "p",
    "important": "gs", "comment": "c", "prolog": "cp", "doctype": "cp", "cdata": "c", "tag": "nt",
    "attr-name": "na", "attr-value": "s", "namespace": "nn", "selector": "nt", "atrule": "k", "rule": "k",
    "inserted": "gi", "deleted": "gd", "entity": "ni", "bold": "gs", "italic": "ge", "decorator": "nd",
    "annotation": "nd", "parameter": "n", "template-string": "s", "interpolation": "si", "macro": "cp",
    "directive": "cp", "shebang": "ch", "type": "kt", "generic": "nc",
}  # fmt: skip
# syntect (Zola) scope classes, ``z-``-prefixed: the most specific scope a span names wins.
_SYNTECT = (
    ("comment", "c"), ("string", "s"), ("numeric", "m"), ("escape", "se"), ("storage", "kd"),
    ("keyword", "k"), ("function", "nf"), ("class", "nc"), ("type", "kt"), ("tag", "nt"),
    ("attribute-name", "na"), ("language", "kc"), ("constant", "no"), ("support", "nb"),
    ("variable", "nv"), ("operator", "o"), ("punctuation", "p"),
)  # fmt: skip
# Chroma's default and common dark styles, first match wins for a colour.
_DARK_STYLES = ("monokai", "dracula", "native", "github-dark", "one-dark", "nord", "solarized-dark", "material",
                "fruity", "vim", "zenburn", "gruvbox-dark", "paraiso-dark", "rrt", "inkpot", "coffee")  # fmt: skip


@dataclass(frozen=True)
class CodePalette:
    """Inline CSS for each short token class of one Pygments style."""

    name: str
    background: str
    foreground: str
    muted: str
    border: str
    spans: dict[str, str]  # short class -> "color:#...;font-weight:bold"

    def css(self, short: str) -> str | None:
        return self.spans.get(short)


def _hex(colour: str) -> str:
    value = colour.strip().lstrip("#").lower()
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return f"#{value}"


def relative_luminance(colour: str) -> float:
    value = _hex(colour)
    channels = [int(value[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable_on(colour: str, background: str, minimum: float = MIN_CONTRAST) -> str:
    """``colour`` with its hue kept, darkened (or lightened) until it reads on ``background``."""
    colour = _hex(colour)
    if contrast_ratio(colour, background) >= minimum:
        return colour
    value = _hex(colour)
    red, green, blue = (int(value[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue, lightness, saturation = colorsys.rgb_to_hls(red, green, blue)
    darker = relative_luminance(background) > 0.18
    for _ in range(100):
        lightness = max(0.0, lightness - 0.02) if darker else min(1.0, lightness + 0.02)
        rgb = colorsys.hls_to_rgb(hue, lightness, saturation)
        candidate = "#" + "".join(f"{round(c * 255):02x}" for c in rgb)
        if contrast_ratio(candidate, background) >= minimum:
            return candidate
    return "#000000" if darker else "#ffffff"


def _short_class(token_type: _TokenType) -> str:
    while token_type not in STANDARD_TYPES and token_type.parent is not None:
        token_type = token_type.parent
    return STANDARD_TYPES.get(token_type, "")


@cache
def palette(style_name: str) -> CodePalette:
    """Colours of ``style_name``, each token colour guaranteed readable on its background."""
    style: StyleMeta = get_style_by_name(style_name)
    background = _hex(getattr(style, "background_color", None) or "#f8f8f8")
    dark = relative_luminance(background) <= 0.18
    text_colour = style.style_for_token(Token.Text)["color"] or style.style_for_token(Token)["color"]
    foreground = readable_on(f"#{text_colour}" if text_colour else ("#e6e8eb" if dark else "#1f2328"), background)
    spans: dict[str, str] = {}
    for token_type, short in STANDARD_TYPES.items():
        if not short:
            continue
        info = style.style_for_token(token_type)
        parts = [f"color:{readable_on('#' + info['color'], background) if info['color'] else foreground}"]
        if info["bold"]:
            parts.append("font-weight:bold")
        if info["italic"]:
            parts.append("font-style:italic")
        spans[short] = ";".join(parts)
    for extra, standard in _ROUGE_EXTRA.items():
        spans.setdefault(extra, spans[standard])
    return CodePalette(
        name=style_name,
        background=background,
        foreground=foreground,
        muted=readable_on("#8c959f" if not dark else "#6e7681", background),
        border="#d0d7de" if not dark else "#30363d",
        spans=spans,
    )


@cache
def _colour_tokens() -> dict[str, str]:
    """Colour -> short token class, from the dark Pygments styles Chroma mirrors."""
    mapping: dict[str, str] = {}
    for name in _DARK_STYLES:
        try:
            style = get_style_by_name(name)
        except ClassNotFound:
            continue
        text = style.style_for_token(Token.Text)["color"]
        if text:
            mapping.setdefault(_hex(text), "")
        # The common token types first, then general before specific: a colour
        # shared by Name.Function and Name.Attribute reads as a function.
        for token_type in sorted(STANDARD_TYPES, key=_mapping_priority):
            colour = style.style_for_token(token_type)["color"]
            if colour and STANDARD_TYPES[token_type]:
                mapping.setdefault(_hex(colour), STANDARD_TYPES[token_type])
    for colour, short in _CHROMA_ONLY_COLOURS.items():
        mapping.setdefault(colour, short)
    return mapping


_COMMON_TOKENS = (Token.Comment, Token.Keyword, Token.Literal.String, Token.Literal.Number, Token.Name.Function,
                  Token.Name.Class, Token.Name.Builtin, Token.Operator, Token.Name.Tag, Token.Name.Attribute,
                  Token.Name.Decorator, Token.Comment.Preproc, Token.Keyword.Type, Token.Name.Constant,
                  Token.Name.Variable)  # fmt: skip
# Chroma's styles that drifted from the Pygments ones they were ported from
# (monokai is Hugo's default).
_CHROMA_ONLY_COLOURS = {"#75715e": "c", "#f92672": "kn", "#fd971f": "nv", "#f8f8f2": ""}


def _mapping_priority(token_type: _TokenType) -> tuple[int, int]:
    common = _COMMON_TOKENS.index(token_type) if token_type in _COMMON_TOKENS else len(_COMMON_TOKENS)
    return common, len(token_type)


@cache
def _lexer(language: str) -> Lexer | None:
    if language.lower() in _NO_LEXER:
        return None
    try:
        return get_lexer_by_name(language.lower(), stripnl=False, ensurenl=False, tabsize=TAB_WIDTH)
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
        classes = element.get("class") or ""
        brush = _BRUSH.search(classes)  # SyntaxHighlighter (WordPress): class="brush: python; ..."
        if brush:
            return brush.group(1)
        names = classes.split()
        for cls in names:
            match = _LANGUAGE.match(cls)
            if match and match.group(1) not in ("source", "rouge"):
                return match.group(1)
        if {"highlight", "hljs", "sourceCode"} & set(names):  # class="highlight c++", "hljs python"
            for cls in names:
                if cls not in ("highlight", "hljs", "sourceCode", "code") and _lexer(cls) is not None:
                    return cls
    return None


# --- reading the blog's highlighting into runs ------------------------------------------------


def _class_token(classes: list[str]) -> str | None:
    """The short token class a span's classes name, in any highlighter's dialect."""
    if not classes:
        return None
    if "token" in classes:  # Prism: class="token keyword"
        for cls in classes:
            if cls in _PRISM:
                return _PRISM[cls]
        return None
    hljs = [c.removeprefix("hljs-") for c in classes if c.startswith("hljs-")]
    if hljs:
        for key in (".".join([hljs[0], *[c for c in classes if c.endswith("_")]]), *hljs):
            if key in _HLJS:
                return _HLJS[key]
        return None
    syntect = {c.removeprefix("z-") for c in classes if c.startswith("z-")}
    if syntect:
        return next((short for scope, short in _SYNTECT if scope in syntect), None)
    for cls in classes:
        if cls in _SHORT_CLASSES:
            return cls
        if cls in _ROUGE_EXTRA:
            return cls
    # highlight.js without its prefix (Hexo's figure.highlight): bare names.
    return next((_HLJS[cls] for cls in classes if cls in _HLJS and cls not in ("code", "name", "link")), None)


_STYLE_COLOUR = re.compile(r"(?:^|;)\s*color\s*:\s*(#[0-9a-fA-F]{3,6})\b")


def _colour_token(style: str, colours: CodePalette) -> str | None:
    """Token class for a Chroma inline colour; unknown colours become a ``#rrggbb`` pseudo-class."""
    match = _STYLE_COLOUR.search(style)
    if not match:
        return None
    colour = _hex(match.group(1))
    known = _colour_tokens().get(colour)
    if known is not None:
        return known
    if relative_luminance(colour) > 0.6:  # near-white text meant for a dark background
        return ""
    return readable_on(colour, colours.background)


def _is_line_number(element: HtmlElement) -> bool:
    classes = set((element.get("class") or "").split())
    return bool(classes & _LINE_NUMBER_CLASSES) or element.get("data-line-number") is not None


def _highlighted_runs(pre: HtmlElement, colours: CodePalette) -> list[Run] | None:
    """Runs from the blog's own highlighting, or None when the block has none."""
    runs: list[Run] = []
    found = False

    def walk(element: HtmlElement, inherited: str) -> None:
        nonlocal found
        token = inherited
        if element is not pre and isinstance(element.tag, str):
            by_class = _class_token((element.get("class") or "").split())
            by_colour = _colour_token(element.get("style") or "", colours) if by_class is None else None
            mapped = by_class if by_class is not None else by_colour
            if mapped is not None:
                found = True
                token = mapped
        if element.text:
            runs.append((token, element.text))
        for child in element:
            if isinstance(child.tag, str) and not _is_line_number(child):
                walk(child, token)
            if child.tail:
                runs.append((token, child.tail))

    walk(pre, "")
    return runs if found else None


def _lexed_runs(code: str, lexer: Lexer) -> list[Run]:
    return [(_short_class(token_type), value) for token_type, value in lexer.get_tokens(code)]


def _serialise(lines: list[list[Run]], colours: CodePalette) -> str:
    out: list[str] = []
    for index, line in enumerate(lines):
        if index:
            out.append("\n")
        merged: list[list[str]] = []
        for token, text in line:
            if token == MARKER:  # its own span, never merged: textify looks for it
                merged.append([MARKER, text])
                continue
            if token.startswith("#"):
                css: str | None = f"color:{token}"
            else:
                css = colours.css(token) if token else None
                if css is not None and css == f"color:{colours.foreground}":
                    css = None  # the <pre> already carries the text colour
            # Blanks take the previous colour: fewer spans.
            if merged and merged[-1][0] != MARKER and (merged[-1][0] == (css or "") or not text.strip()):
                merged[-1][1] += text
            else:
                merged.append([css or "", text])
        for css_text, text in merged:
            escaped = html.escape(text, quote=False)
            if css_text == MARKER:
                out.append(f'<span class="{WRAP_CLASS}" style="color:{colours.muted}">{escaped}</span>')
                continue
            out.append(f'<span style="{css_text}">{escaped}</span>' if css_text else escaped)
    return "".join(out)


def _code_html(runs: list[Run], colours: CodePalette) -> str:
    lines = [codewrap.rstrip(codewrap.expand_tabs(line)) for line in codewrap.lines(runs)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return _serialise([codewrap.wrap(line, WRAP_COLUMNS) for line in lines], colours)


# --- the block ---------------------------------------------------------------------------------


def style_code_blocks(root: HtmlElement, style_name: str) -> None:
    """Rewrite every <pre> under ``root`` in place (see the module docstring)."""
    colours = palette(style_name)
    flatten_gutter_tables(root)
    for pre in list(root.iter("pre")):
        if pre.getparent() is None or _is_line_number(pre) or _inside_gutter(pre):
            continue
        for br in list(pre.iter("br")):  # WordPress and hand-written HTML break lines with <br>
            br.tail = "\n" + (br.tail or "")
            br.drop_tree()
        runs = _highlighted_runs(pre, colours)
        if runs is None:
            code = pre.text_content()
            language = code_language(pre)
            lexer = _lexer(language) if language else None
            runs = _lexed_runs(code.expandtabs(TAB_WIDTH), lexer) if lexer is not None else [("", code)]
        _replace_with_block(pre, _code_html(runs, colours), colours)
    for code in root.iter("code"):
        parent = code.getparent()
        if parent is not None and parent.tag != "pre":
            code.set("style", INLINE_CODE_STYLE)
            code.set("class", "dg-inline-code")  # for the dark-mode rule


_DIGITS = re.compile(r"^[\d\s]+$")


def _is_gutter_cell(cell: HtmlElement) -> bool:
    text = cell.text_content()
    return _is_line_number(cell) or bool(cell.find(".//pre") is not None and _DIGITS.match(text) and text.strip())


def flatten_gutter_tables(root: HtmlElement) -> None:
    """Replace any table of (line-number gutter, code) cells by the code's own <pre>.

    Hexo's ``figure.highlight > table``, Rouge's ``rouge-table``, Chroma's
    ``lntable``, highlight.js line-number plugins: a table inside the email's
    table breaks its layout, and copied code would carry the numbers. The
    language the wrapper declares moves onto the <pre>.
    """
    for table in list(root.iter("table")):
        if table.getparent() is None:
            continue
        rows = [row for row in table.iter("tr") if next(row.iterancestors("table"), None) is table]
        code_pres: list[HtmlElement] = []
        for row in rows:
            cells = [c for c in row if isinstance(c.tag, str) and c.tag in ("td", "th")]
            code_cells = [c for c in cells if not _is_gutter_cell(c)]
            if len(cells) < 2 or len(code_cells) != 1 or len(code_cells) == len(cells):
                break
            pre = code_cells[0].find(".//pre")
            if pre is None:
                break
            code_pres.append(pre)
        else:
            if not code_pres:
                continue
            target = table
            parent = table.getparent()
            while parent is not None and parent is not root and parent.tag in ("figure", "div") and len(parent) == 1:
                target, parent = parent, parent.getparent()
            language = code_language(code_pres[0]) or _wrapper_language(table, parent)
            merged = code_pres[0]
            for extra in code_pres[1:]:  # one row per line (some plugins): one block
                _append_text(merged, "\n" + (extra.text or ""))
                for child in list(extra):
                    merged.append(child)
            if language and not merged.get("data-lang"):
                merged.set("data-lang", language)
            merged.tail = target.tail
            if target.getparent() is not None:
                target.getparent().replace(target, merged)


def _append_text(element: HtmlElement, text: str) -> None:
    if len(element):
        element[-1].tail = (element[-1].tail or "") + text
    else:
        element.text = (element.text or "") + text


def _wrapper_language(table: HtmlElement, stop: HtmlElement | None) -> str | None:
    element: HtmlElement | None = table
    while element is not None and element is not stop:
        for cls in (element.get("class") or "").split():
            if cls not in ("highlight", "hljs", "code", "rouge-table", "lntable") and _lexer(cls) is not None:
                return cls
        element = element.getparent()
    return None


def _inside_gutter(pre: HtmlElement) -> bool:
    cell = pre.getparent()
    while cell is not None and cell.tag not in ("td", "th"):
        cell = cell.getparent()
    return cell is not None and _is_line_number(cell)


def _replace_with_block(pre: HtmlElement, inner: str, colours: CodePalette) -> None:
    """Swap ``pre`` (or its highlighter's wrappers) for a table-cell-wrapped block."""
    target = pre
    parent = pre.getparent()
    # Rouge wraps as div.language-x > div.highlight > pre; Chroma as div.highlight > pre;
    # line-numbered variants put the code in a table next to a gutter cell.
    # Never climb into the fragment's own root (which has no parent): a post that is
    # only a code block, or an excerpt that kept only one, is restyled too.
    while parent is not None and parent.getparent() is not None:
        classes = set((parent.get("class") or "").split())
        single_div = parent.tag == "div" and len(parent) == 1 and not (parent.text or "").strip()
        numbered = parent.tag in ("table", "tbody", "tr", "td") and (
            classes & {"rouge-table", "lntable", "code", "lntd", "rouge-code"} or parent.tag in ("tbody", "tr")
        )
        if not (single_div or numbered or (parent.tag == "figure" and "highlight" in classes)):
            break
        target, parent = parent, parent.getparent()
    block = lxml_html.fragment_fromstring(
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" class="dg-code-block" '
        'style="border-collapse:separate;margin:0 0 16px 0;width:100%">'
        f'<tr><td class="dg-code-cell" bgcolor="{colours.background}" '
        f'style="background-color:{colours.background};border:1px solid {colours.border};padding:12px 14px">'
        f'<pre class="dg-code" style="margin:0;font-family:{MONOSPACE};font-size:13px;line-height:1.5;'
        f'color:{colours.foreground};white-space:pre-wrap;word-wrap:break-word;word-break:break-word">{inner}</pre>'
        "</td></tr></table>"
    )
    block.tail = target.tail
    if target.getparent() is not None:
        target.getparent().replace(target, block)
