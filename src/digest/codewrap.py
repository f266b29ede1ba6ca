"""Lines of code as runs: tab expansion, trailing blanks, and the server-side wrap.

Part of codeblocks.py's redrawing of a code block, and of textify.py's text
part. A run is ``(short token class, text)``; ``""`` is plain text.

Why the server wraps at all, and why at ``WRAP_COLUMNS``: see codeblocks.py.
A line longer than the width is cut after a space, else after punctuation,
in the last half of the window, and preferably not inside a string literal
(a wrapped string reads as if it held a line break). Each cut becomes one
marker run holding the line break, the line's indentation and a muted
``↪``, so the markers can be taken out again to get the line back exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

Run = tuple[str, str]  # (short token class, "" for plain text; text)

TAB_WIDTH = 4
CONTINUATION = "\u21aa "  # ↪
MARKER = "continuation"  # pseudo token class of the line break + ↪ run
WRAP_CLASS = "dg-wrap"  # the HTML span holding a MARKER run (textify drops it)
_BREAK_AFTER = set(" ,;([{=+-*/|&:.>")
# Pygments' short classes of string tokens (s, s1, s2, sa, sb, sc, sd, se, sh, si, sx, sr, ss, dl) and of
# comments (c, c1, cm, ch, cs): a cut inside either changes what the rest of the line reads as.
_UNBROKEN_TOKENS = ("s", "dl", "c")


def lines(runs: list[Run]) -> Iterator[list[Run]]:
    line: list[Run] = []
    for token, text in runs:
        parts = text.split("\n")
        for index, part in enumerate(parts):
            if index:
                yield line
                line = []
            if part:
                line.append((token, part))
    yield line


def expand_tabs(line: list[Run]) -> list[Run]:
    column = 0
    result: list[Run] = []
    for token, text in line:
        out = []
        for char in text:
            spaces = TAB_WIDTH - (column % TAB_WIDTH) if char == "\t" else 0
            out.append(" " * spaces if spaces else char)
            column += spaces or 1
        result.append((token, "".join(out)))
    return result


def rstrip(line: list[Run]) -> list[Run]:
    while line and not line[-1][1].rstrip():
        line = line[:-1]
    if line:
        token, text = line[-1]
        line = [*line[:-1], (token, text.rstrip())]
    return line


def _unbroken_spans(line: list[Run]) -> list[tuple[int, int]]:
    """(begin, end) of each string literal or comment of the line: adjacent such runs taken together."""
    spans: list[tuple[int, int]] = []
    position = 0
    for token, text in line:
        end = position + len(text)
        if token.startswith(_UNBROKEN_TOKENS) and text:
            if spans and spans[-1][1] == position:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((position, end))
        position = end
    return spans


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """(begin, end) of each '...' or "..." literal and of a trailing # or // comment of plain code (a heuristic)."""
    spans: list[tuple[int, int]] = []
    quote, begin, escaped = "", 0, False
    for index, char in enumerate(text):
        if not quote and text.startswith(("#", "//"), index) and (index == 0 or text[index - 1] == " "):
            spans.append((index, len(text)))
            break
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                spans.append((begin, index + 1))
                quote = ""
        elif char in "'\"":
            quote, begin = char, index
    return spans


def cut_points(text: str, width: int, continuation: int, strings: list[tuple[int, int]]) -> list[int]:
    """Where to cut ``text`` so no piece passes ``width`` (later pieces carry ``continuation`` columns more)."""
    cuts: list[int] = []
    start, limit = 0, width
    following = max(width - continuation, 8)
    while len(text) - start > limit:
        shifted = [(begin - start, end - start) for begin, end in strings]
        best = _best_cut(text[start : start + limit], shifted, following)
        cuts.append(start + best)
        start += best
        limit = following
    return cuts


def _best_cut(window: str, strings: list[tuple[int, int]], following: int) -> int:
    """The cut in ``window``: after a space, else punctuation, in its last half and outside strings.

    When every such cut falls inside one string (or comment), an earlier cut
    before it is taken if the whole string then fits the next line.
    """
    half = len(window) // 2
    spaces = [i + 1 for i, c in enumerate(window) if c == " "]
    marks = [i + 1 for i, c in enumerate(window) if c in _BREAK_AFTER]
    late_spaces, late_marks = [o for o in spaces if o > half], [o for o in marks if o > half]
    outside = [o for o in late_spaces if not _inside(o, strings)] or [o for o in late_marks if not _inside(o, strings)]
    if outside:
        return _past_blanks(window, max(outside))
    fallback = max(late_spaces or late_marks or [len(window)])
    return _past_blanks(window, _before_string(fallback, marks, strings, following) or fallback)


def _before_string(cut: int, marks: list[int], strings: list[tuple[int, int]], following: int) -> int | None:
    """A cut before the string ``cut`` falls in, if the string then fits in ``following`` columns."""
    span = next(((begin, end) for begin, end in strings if begin < cut < end), None)
    if span is None:
        return None
    before = [o for o in marks if 0 < o <= span[0] and span[1] - o <= following]
    return max(before) if before else None


def _past_blanks(window: str, offset: int) -> int:
    """A cut moved past a run of blanks, so the next piece does not start with one."""
    while offset < len(window) and window[offset] == " ":
        offset += 1
    return offset


def _inside(position: int, strings: list[tuple[int, int]]) -> bool:
    return any(begin < position < end for begin, end in strings)


def wrap(line: list[Run], width: int) -> list[Run]:
    """``line`` with a MARKER run at each cut, so no piece passes ``width`` columns."""
    text = "".join(t for _, t in line)
    if len(text) <= width:
        return line
    indent = len(text) - len(text.lstrip(" "))
    if indent > width // 2:
        indent = 0
    cuts = cut_points(text, width, indent + len(CONTINUATION), _unbroken_spans(line))
    result: list[Run] = []
    for number, (begin, end) in enumerate(itertools.pairwise([0, *cuts, len(text)])):
        piece = _slice(line, begin, end)
        if number:
            stripped = _lstrip(piece)
            blanks = len("".join(t for _, t in piece)) - len("".join(t for _, t in stripped))
            if blanks:  # kept at the end of the piece before, so the line comes back whole
                result.append(("", " " * blanks))
            result.append((MARKER, "\n" + " " * indent + CONTINUATION))
            piece = stripped
        result.extend(piece)
    return result


def wrap_plain(line: str, width: int, hanging: int = 4) -> list[str]:
    """A line of plain code cut to ``width`` columns, later pieces indented ``hanging`` more; no marker."""
    if len(line) <= width:
        return [line]
    indent = len(line) - len(line.lstrip(" "))
    if indent > width // 2:
        indent = 0
    lead = " " * (indent + hanging)
    cuts = cut_points(line, width, len(lead), quoted_spans(line))
    pieces = [line[begin:end] for begin, end in itertools.pairwise([0, *cuts, len(line)])]
    return [pieces[0].rstrip()] + [lead + piece.strip() for piece in pieces[1:]]


def _lstrip(piece: list[Run]) -> list[Run]:
    while piece and not piece[0][1].strip():
        piece = piece[1:]
    if piece:
        piece = [(piece[0][0], piece[0][1].lstrip()), *piece[1:]]
    return piece


def _slice(line: list[Run], begin: int, end: int) -> list[Run]:
    result: list[Run] = []
    position = 0
    for token, text in line:
        low, high = max(begin, position), min(end, position + len(text))
        if low < high:
            result.append((token, text[low - position : high - position]))
        position += len(text)
    return result
