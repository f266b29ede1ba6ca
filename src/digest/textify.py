"""The text/plain part: cleaned entry HTML turned into readable plain text.

Paragraphs are wrapped at 72 columns, code blocks keep their lines and are
indented by four spaces, list items get bullets, and links become numbered
references ``[1]`` listed after the entry.
"""

from __future__ import annotations

import textwrap

from lxml.html import HtmlElement

WIDTH = 72
_BLOCK = {"p", "div", "section", "article", "header", "footer", "aside", "figure", "figcaption", "blockquote",
          "ul", "ol", "li", "dl", "dt", "dd", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "details",
          "summary"}  # fmt: skip


def wrap_paragraph(text: str, width: int = WIDTH, indent: str = "") -> str:
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=indent, subsequent_indent=indent,
        break_long_words=False, break_on_hyphens=False,
    )  # fmt: skip


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
        lead = prefix if first is None else first
        wrapped = textwrap.fill(text, width=WIDTH, initial_indent=lead, subsequent_indent=prefix,
                                break_long_words=False, break_on_hyphens=False)  # fmt: skip
        self.blocks.append(wrapped)

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
        if tag == "pre":
            writer.flush(prefix)
            code = child.text_content().rstrip("\n")
            writer.blocks.append("\n".join((prefix + "    " + line).rstrip() for line in code.split("\n")))
        elif tag in ("table",) and "code-block" in (child.get("class") or ""):
            writer.flush(prefix)
            for pre in child.iter("pre"):
                code = pre.text_content().rstrip("\n")
                writer.blocks.append("\n".join((prefix + "    " + line).rstrip() for line in code.split("\n")))
        elif tag == "br":
            writer.flush(prefix)
        elif tag == "hr":
            writer.flush(prefix)
            writer.blocks.append(prefix + "-" * 20)
        elif tag == "img":
            alt = (child.get("alt") or "").strip()
            if alt:
                writer.inline.append(f"[image: {alt}]")
        elif tag == "li":
            writer.flush(prefix)
            marker = _list_marker(child)
            indent = prefix + " " * len(marker)
            before = len(writer.blocks)
            _walk(child, writer, indent)
            writer.flush(indent)
            if len(writer.blocks) > before:
                writer.blocks[before] = prefix + marker + writer.blocks[before][len(indent) :]
        elif tag == "table" and child.find(".//pre") is None:
            writer.flush(prefix)
            for row in child.iter("tr"):  # one line per row, cells kept apart
                cells = [
                    " ".join(c.text_content().split()) for c in row if isinstance(c.tag, str) and c.tag in ("td", "th")
                ]
                line = " | ".join(cell for cell in cells if cell)
                if line:
                    writer.blocks.append(wrap_paragraph(line, indent=prefix))
        elif tag == "blockquote":
            writer.flush(prefix)
            _walk(child, writer, prefix + "> ")
            writer.flush(prefix + "> ")
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            writer.flush(prefix)
            _walk(child, writer, prefix)
            heading = " ".join("".join(writer.inline).split())
            writer.inline = []
            if heading:
                writer.blocks.append(prefix + heading.upper() if tag in ("h1", "h2") else prefix + heading)
        elif tag in _BLOCK:
            writer.flush(prefix)
            _walk(child, writer, prefix)
            writer.flush(prefix)
        elif tag == "a":
            _walk(child, writer, prefix)
            href = child.get("href")
            if href and href.startswith(("http://", "https://", "mailto:")):
                label = child.text_content().strip()
                if label != href:
                    writer.inline.append(f" [{writer.link(href)}]")
        else:
            _walk(child, writer, prefix)
        if child.tail:
            writer.inline.append(child.tail)
