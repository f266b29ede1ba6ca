"""The text/plain part: cleaned entry HTML turned into readable plain text.

Paragraphs are wrapped at 72 columns, code blocks keep their lines and are
indented by four spaces (the HTML's ``↪`` wrap markers are taken out; a line
too long for the text part is cut again, its rest indented), list items get
bullets or numbers, table rows become lines with `` | `` between cells, and
links become numbered references ``[1]`` listed after the entry.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from lxml.html import HtmlElement

from digest import codewrap

WIDTH = 72
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "aside",
    "figure",
    "figcaption",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "details",
    "summary",
}


def wrap_paragraph(text: str, width: int = WIDTH, indent: str = "", first: str | None = None) -> str:
    """``text`` as lines of at most ``width`` columns (a longer word, such as a URL, stays whole)."""
    return textwrap.fill(
        " ".join(text.split()),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class _TextWriter:
    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.inline: list[str] = []
        self.links: list[str] = []

    def flush(self, prefix: str = "", first: str | None = None) -> None:
        text = " ".join("".join(self.inline).split())
        self.inline = []
        if not text:
            return
        self.blocks.append(wrap_paragraph(text, indent=prefix, first=first))

    def link(self, href: str) -> int:
        if href in self.links:
            return self.links.index(href) + 1
        self.links.append(href)
        return len(self.links)


def html_to_text(root: HtmlElement) -> str:
    """Plain text for the cleaned fragment ``root`` (not modified)."""
    writer = _TextWriter()
    _walk(root, writer, prefix="")
    writer.flush()
    text = "\n\n".join(block for block in writer.blocks if block.strip())
    if writer.links:
        refs = "\n".join(f"[{n}] {href}" for n, href in enumerate(writer.links, start=1))
        text = f"{text}\n\n{refs}"
    return text


def _list_marker(item: HtmlElement) -> str:
    """``1. `` for an item of an ordered list (honouring start and value), else ``- ``."""
    parent = item.getparent()
    if parent is None or parent.tag != "ol":
        return "- "
    start = (parent.get("start") or "1").strip()
    number = int(start) if start.lstrip("-").isdigit() else 1
    for sibling in parent:
        if sibling is item:
            break
        if isinstance(sibling.tag, str) and sibling.tag == "li":
            number += 1
    value = (item.get("value") or "").strip()
    return f"{int(value) if value.isdigit() else number}. "


def _walk(element: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    if element.text:
        writer.inline.append(element.text)
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        handler = _HANDLERS.get(tag)
        if tag == "table" and "dg-code-block" in (child.get("class") or "").split():
            handler = _code_table
        elif tag == "table" and child.find(".//pre") is not None:
            handler = None  # a layout table holding code: its blocks one after another
        if handler is not None:
            handler(child, writer, prefix)
        elif tag in _BLOCK:
            writer.flush(prefix)
            _walk(child, writer, prefix)
            writer.flush(prefix)
        else:
            _walk(child, writer, prefix)
        if child.tail:
            writer.inline.append(child.tail)


def _code_text(element: HtmlElement) -> str:
    """The code of a <pre>, with the HTML's wrap markers (codewrap) taken out and <br> as line breaks."""
    parts = [element.text or ""]
    for child in element:
        if not isinstance(child.tag, str):
            pass
        elif child.tag == "br":
            parts.append("\n")
        elif codewrap.WRAP_CLASS not in (child.get("class") or "").split():
            parts.append(_code_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _pre(pre: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    """Code keeps its lines, indented four spaces; a line too long for the text part is cut (no ↪)."""
    writer.flush(prefix)
    lead = prefix + "    "
    code = _code_text(pre).expandtabs(codewrap.TAB_WIDTH).rstrip("\n")
    lines = [piece for line in code.split("\n") for piece in codewrap.wrap_plain(line.rstrip(), WIDTH - len(lead))]
    writer.blocks.append("\n".join((lead + line).rstrip() for line in lines))


def _code_table(table: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    writer.flush(prefix)
    for pre in table.iter("pre"):
        _pre(pre, writer, prefix)


def _br(_: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    writer.flush(prefix)


def _hr(_: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    writer.flush(prefix)
    writer.blocks.append(prefix + "-" * 20)


def _img(img: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    alt = (img.get("alt") or "").strip()
    if alt:
        writer.inline.append(f"[image: {alt}]")


def _li(item: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    writer.flush(prefix)
    marker = _list_marker(item)
    indent = prefix + " " * len(marker)
    before = len(writer.blocks)
    _walk(item, writer, indent)
    writer.flush(indent)
    if len(writer.blocks) > before:
        writer.blocks[before] = prefix + marker + writer.blocks[before][len(indent) :]


def _table(table: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    """One line per row, cells kept apart."""
    writer.flush(prefix)
    for row in table.iter("tr"):
        cells = [" ".join(c.text_content().split()) for c in row if isinstance(c.tag, str) and c.tag in ("td", "th")]
        line = " | ".join(cell for cell in cells if cell)
        if line:
            writer.blocks.append(wrap_paragraph(line, indent=prefix))


def _blockquote(quote: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    writer.flush(prefix)
    _walk(quote, writer, prefix + "> ")
    writer.flush(prefix + "> ")


def _heading(heading: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    writer.flush(prefix)
    _walk(heading, writer, prefix)
    text = " ".join("".join(writer.inline).split())
    writer.inline = []
    if text:
        text = text.upper() if heading.tag in ("h1", "h2") else text
        writer.blocks.append(wrap_paragraph(text, indent=prefix))


def _anchor(anchor: HtmlElement, writer: _TextWriter, prefix: str) -> None:
    _walk(anchor, writer, prefix)
    href = anchor.get("href")
    if href and href.startswith(("http://", "https://", "mailto:")) and anchor.text_content().strip() != href:
        writer.inline.append(f" [{writer.link(href)}]")


_Handler = Callable[[HtmlElement, _TextWriter, str], None]
_HANDLERS: dict[str, _Handler] = {
    "pre": _pre,
    "br": _br,
    "hr": _hr,
    "img": _img,
    "li": _li,
    "table": _table,
    "blockquote": _blockquote,
    "a": _anchor,
    **dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), _heading),
}
