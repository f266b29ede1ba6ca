"""Give every code block one consistent, email-proof look in a Pygments style.

Part of render.py's per-entry clean-up. Line-number gutter tables are
flattened first; then each ``<pre>`` is read into runs of (token class, text)
by highlighters.py, whatever highlighted the blog, and written back as one
``<pre>`` inside a table cell whose spans carry their colour inline
(codecolours.py), so the code stays coloured in clients that drop
``<style>`` and classes.

Why hard wrapping (see email-facts.md): Outlook for Windows and several
Gmail apps ignore ``white-space``/``overflow``, so a long line in a ``<pre>``
would widen the whole email or be cut off (Gmail for Android cannot scroll
it). Lines longer than ``WRAP_COLUMNS`` are broken by codewrap.py at a space
or punctuation where possible, outside strings and comments, and the
continuation starts with a muted ``↪`` under the line's indentation.
``WRAP_COLUMNS`` is what fits a 390 px phone at the phone's code font size
(``MOBILE_CODE_PX``, set in the template's @media rule), so the server's
wrap is the only one there. The ``pre-wrap`` CSS stays too, for narrower
screens, with ``word-break:break-word``: without it the table cell around
the block grows to the longest unbroken token and a phone shows only part
of the email. ``<pre>`` is kept (rather than ``&nbsp;``-spaced divs) so
copied code keeps real spaces.
"""

from __future__ import annotations

import html
import math
import re

from lxml import html as lxml_html
from lxml.html import HtmlElement

from digest import codewrap, highlighters
from digest.codecolours import CodePalette, contrast_ratio, palette, relative_luminance
from digest.codewrap import CONTINUATION, MARKER, WRAP_CLASS, Run
from digest.highlighters import code_language, is_line_number

__all__ = [
    "CONTINUATION",
    "code_language",
    "contrast_ratio",
    "flatten_gutter_tables",
    "palette",
    "relative_luminance",
    "style_code_blocks",
]

MONOSPACE = "SFMono-Regular, Menlo, Consolas, 'Liberation Mono', 'Courier New', monospace"
# What fits a 390 px phone, where the template's @media rule sets the code
# font to MOBILE_CODE_PX and narrows the paddings: 390 - 2 x 12 px card
# padding - 2 x 6 px cell padding - 4 px borders = 350 px; a monospace glyph
# is 0.6 em (0.602 in Menlo and DejaVu Sans Mono), 52 x 6.62 = 344 px. On the
# 600 px desktop layout (13 px, 522 px) the same lines fit with room to spare.
WRAP_COLUMNS = 52
MOBILE_CODE_PX = 11
DESKTOP_CODE_PX = 13
# Left indentation (px) of a block inside these elements, from _styles.css.j2
# (.dg-entry-body ul/ol padding, blockquote padding and border).
_INDENT_PX = {"ul": 24, "ol": 24, "blockquote": 17, "dd": 40}
# Inline `code` in prose: a light chip, whatever the block style (the dark-mode
# rule for .dg-inline-code recolours it where @media works).
INLINE_CODE_STYLE = (
    f"font-family:{MONOSPACE};font-size:90%;background-color:#eff1f3;color:#1f2328;"
    "padding:1px 4px;border:1px solid #e1e4e8;border-radius:3px"
)


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


def wrap_columns(pre: HtmlElement) -> int:
    """WRAP_COLUMNS less what the lists and quotes around the block indent it by (the template's CSS)."""
    indent = sum(_INDENT_PX.get(str(a.tag), 0) for a in pre.iterancestors())
    return max(WRAP_COLUMNS - math.ceil(indent / (MOBILE_CODE_PX * 0.602)), 20)


def _code_html(runs: list[Run], colours: CodePalette, columns: int = WRAP_COLUMNS) -> str:
    lines = [codewrap.rstrip(codewrap.expand_tabs(line)) for line in codewrap.lines(runs)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return _serialise([codewrap.wrap(line, columns) for line in lines], colours)


# --- the block ---------------------------------------------------------------------------------


def style_code_blocks(root: HtmlElement, style_name: str) -> None:
    """Rewrite every <pre> under ``root`` in place (see the module docstring)."""
    colours = palette(style_name)
    flatten_gutter_tables(root)
    for pre in list(root.iter("pre")):
        if pre.getparent() is None or is_line_number(pre) or _inside_gutter(pre):
            continue
        for br in list(pre.iter("br")):  # WordPress and hand-written HTML break lines with <br>
            br.tail = "\n" + (br.tail or "")
            br.drop_tree()
        runs = highlighters.runs_of(pre, colours)
        _replace_with_block(pre, _code_html(runs, colours, wrap_columns(pre)), colours)
    for code in root.iter("code"):
        parent = code.getparent()
        if parent is not None and parent.tag != "pre":
            code.set("style", INLINE_CODE_STYLE)
            code.set("class", "dg-inline-code")  # for the dark-mode rule


_DIGITS = re.compile(r"^[\d\s]+$")


def _is_gutter_cell(cell: HtmlElement) -> bool:
    text = cell.text_content()
    return is_line_number(cell) or bool(cell.find(".//pre") is not None and _DIGITS.match(text) and text.strip())


def flatten_gutter_tables(root: HtmlElement) -> None:
    """Replace any table of (line-number gutter, code) cells by the code's own <pre>.

    Hexo's ``figure.highlight > table``, Rouge's ``rouge-table``, Chroma's
    ``lntable``, highlight.js line-number plugins: a table inside the email's
    table breaks its layout, and copied code would carry the numbers. The
    language the wrapper declares moves onto the <pre>.
    """
    for table in list(root.iter("table")):
        code_pres = _gutter_code(table) if table.getparent() is not None else None
        if not code_pres:
            continue
        target, parent = table, table.getparent()
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
        if parent is not None:
            parent.replace(target, merged)


def _gutter_code(table: HtmlElement) -> list[HtmlElement] | None:
    """The code <pre> of each row when every row is (gutter cells, one code cell), else None."""
    code_pres: list[HtmlElement] = []
    for row in (row for row in table.iter("tr") if next(row.iterancestors("table"), None) is table):
        cells = [c for c in row if isinstance(c.tag, str) and c.tag in ("td", "th")]
        code_cells = [c for c in cells if not _is_gutter_cell(c)]
        if len(cells) < 2 or len(code_cells) != 1:
            return None
        pre = code_cells[0].find(".//pre")
        if pre is None:
            return None
        code_pres.append(pre)
    return code_pres


def _append_text(element: HtmlElement, text: str) -> None:
    if len(element):
        element[-1].tail = (element[-1].tail or "") + text
    else:
        element.text = (element.text or "") + text


_WRAPPER_CLASSES = ("highlight", "hljs", "code", "rouge-table", "lntable")


def _wrapper_language(table: HtmlElement, stop: HtmlElement | None) -> str | None:
    element: HtmlElement | None = table
    while element is not None and element is not stop:
        for cls in (element.get("class") or "").split():
            if (
                cls not in ("highlight", "hljs", "code", "rouge-table", "lntable")
                and highlighters.lexer(cls) is not None
            ):
                return cls
        element = element.getparent()
    return None


def _inside_gutter(pre: HtmlElement) -> bool:
    cell = pre.getparent()
    while cell is not None and cell.tag not in ("td", "th"):
        cell = cell.getparent()
    return cell is not None and is_line_number(cell)


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
        f'<pre class="dg-code" style="margin:0;font-family:{MONOSPACE};font-size:{DESKTOP_CODE_PX}px;line-height:1.5;'
        f'color:{colours.foreground};white-space:pre-wrap;word-wrap:break-word;word-break:break-word">{inner}</pre>'
        "</td></tr></table>"
    )
    block.tail = target.tail
    if target.getparent() is not None:
        target.getparent().replace(target, block)
