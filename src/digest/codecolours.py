"""Colours for code blocks: a Pygments style as inline CSS, readable on its own background.

Part of codeblocks.py. Every token colour of a style is checked against the
style's background (WCAG contrast, ``MIN_CONTRAST``) and darkened or
lightened, hue kept, until it reads; ``colour_tokens`` maps the colours of
the dark styles Chroma ports back to token classes, for Chroma's inline
colours (see highlighters.py).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import cache

from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, Token, _TokenType
from pygments.util import ClassNotFound

MIN_CONTRAST = 4.5  # WCAG AA for normal text
# Rouge emits a few classes Pygments' CSS does not define.
ROUGE_EXTRA = {"kv": "k", "mx": "m", "pi": "cp", "cd": "c", "gl": "go"}
# Chroma's default and common dark styles, first match wins for a colour.
_DARK_STYLES = (
    "monokai",
    "dracula",
    "native",
    "github-dark",
    "one-dark",
    "nord",
    "solarized-dark",
    "material",
    "fruity",
    "vim",
    "zenburn",
    "gruvbox-dark",
    "paraiso-dark",
    "rrt",
    "inkpot",
    "coffee",
)


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


def hex_colour(colour: str) -> str:
    value = colour.strip().lstrip("#").lower()
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return f"#{value}"


def relative_luminance(colour: str) -> float:
    value = hex_colour(colour)
    channels = [int(value[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable_on(colour: str, background: str, minimum: float = MIN_CONTRAST) -> str:
    """``colour`` with its hue kept, darkened (or lightened) until it reads on ``background``."""
    colour = hex_colour(colour)
    if contrast_ratio(colour, background) >= minimum:
        return colour
    value = hex_colour(colour)
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


def short_class(token_type: _TokenType) -> str:
    while token_type not in STANDARD_TYPES and token_type.parent is not None:
        token_type = token_type.parent
    return STANDARD_TYPES.get(token_type, "")


@cache
def palette(style_name: str) -> CodePalette:
    """Colours of ``style_name``, each token colour guaranteed readable on its background."""
    style: StyleMeta = get_style_by_name(style_name)
    background = hex_colour(getattr(style, "background_color", None) or "#f8f8f8")
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
    for extra, standard in ROUGE_EXTRA.items():
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
def colour_tokens() -> dict[str, str]:
    """Colour -> short token class, from the dark Pygments styles Chroma mirrors."""
    mapping: dict[str, str] = {}
    for name in _DARK_STYLES:
        try:
            style = get_style_by_name(name)
        except ClassNotFound:
            continue
        text = style.style_for_token(Token.Text)["color"]
        if text:
            mapping.setdefault(hex_colour(text), "")
        # The common token types first, then general before specific: a colour
        # shared by Name.Function and Name.Attribute reads as a function.
        for token_type in sorted(STANDARD_TYPES, key=_mapping_priority):
            colour = style.style_for_token(token_type)["color"]
            if colour and STANDARD_TYPES[token_type]:
                mapping.setdefault(hex_colour(colour), STANDARD_TYPES[token_type])
    for colour, short in _CHROMA_ONLY_COLOURS.items():
        mapping.setdefault(colour, short)
    return mapping


_COMMON_TOKENS = (
    Token.Comment,
    Token.Keyword,
    Token.Literal.String,
    Token.Literal.Number,
    Token.Name.Function,
    Token.Name.Class,
    Token.Name.Builtin,
    Token.Operator,
    Token.Name.Tag,
    Token.Name.Attribute,
    Token.Name.Decorator,
    Token.Comment.Preproc,
    Token.Keyword.Type,
    Token.Name.Constant,
    Token.Name.Variable,
)
# Chroma's styles that drifted from the Pygments ones they were ported from
# (monokai is Hugo's default).
_CHROMA_ONLY_COLOURS = {"#75715e": "c", "#f92672": "kn", "#fd971f": "nv", "#f8f8f2": ""}


def _mapping_priority(token_type: _TokenType) -> tuple[int, int]:
    common = _COMMON_TOKENS.index(token_type) if token_type in _COMMON_TOKENS else len(_COMMON_TOKENS)
    return common, len(token_type)
