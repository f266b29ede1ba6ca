"""Read a blog's highlighting back into runs of (token class, text).

Part of codeblocks.py. Whatever highlighted the blog, each ``<pre>`` is
reduced to a flat list of runs:

* Pygments short classes (Rouge, Chroma with classes): the class is the token;
* highlight.js ``hljs-*`` (and its bare names, as in Hexo), Prism ``token x``
  and syntect/Zola ``z-*`` classes: mapped to Pygments token types (tables
  below);
* Chroma with inline colours (meant for a dark background, which feedparser
  drops): each colour is looked up in Pygments' dark styles, which Chroma's
  styles are ports of, to recover its token type; an unknown colour keeps its
  hue and is darkened until it reads on the light background;
* plain code with a language class (``language-x``, ``highlight c++``,
  ``brush: python``): tokenised by Pygments; unknown languages stay plain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from lxml.html import HtmlElement
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

from digest.codecolours import (
    ROUGE_EXTRA,
    CodePalette,
    colour_tokens,
    hex_colour,
    readable_on,
    relative_luminance,
    short_class,
)
from digest.codewrap import TAB_WIDTH, Run

_LANGUAGE = re.compile(r"^(?:language|lang|highlight-source|highlight)-([\w+#.-]+)$")
_BRUSH = re.compile(r"\bbrush:\s*([\w+#.-]+)")
_NO_LEXER = {"plaintext", "text", "plain", "txt", "none", "output", "console-output", "nohighlight", "no-highlight"}
_SHORT_CLASSES = frozenset(s for s in STANDARD_TYPES.values() if s)
# Line-number gutters of Rouge, Chroma and highlight.js plugins: not code.
_LINE_NUMBER_CLASSES = {"lineno", "gutter", "ln", "lnt", "lntd", "hljs-ln-numbers", "line-numbers-rows"}
# The two mapping tables below stay packed (fmt: skip): a data table of 50
# name -> token pairs reads better as a block than one pair per line.
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
    ("comment", "c"),
    ("string", "s"),
    ("numeric", "m"),
    ("escape", "se"),
    ("storage", "kd"),
    ("keyword", "k"),
    ("function", "nf"),
    ("class", "nc"),
    ("type", "kt"),
    ("tag", "nt"),
    ("attribute-name", "na"),
    ("language", "kc"),
    ("constant", "no"),
    ("support", "nb"),
    ("variable", "nv"),
    ("operator", "o"),
    ("punctuation", "p"),
)


@cache
def lexer(language: str) -> Lexer | None:
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
                if cls not in ("highlight", "hljs", "sourceCode", "code") and lexer(cls) is not None:
                    return cls
    return None


# --- reading the blog's highlighting into runs ------------------------------------------------


def _class_token(classes: list[str]) -> str | None:
    """The short token class a span's classes name, in any highlighter's dialect."""
    for dialect in (_prism_token, _hljs_token, _syntect_token):
        claimed, token = dialect(classes)
        if claimed:  # the span speaks this dialect: no other reading of its classes
            return token
    return _pygments_token(classes)


def _prism_token(classes: list[str]) -> tuple[bool, str | None]:
    """Prism: class="token keyword"."""
    return "token" in classes, _first(_PRISM.get(cls) for cls in classes)


def _hljs_token(classes: list[str]) -> tuple[bool, str | None]:
    """highlight.js; version 11 names a sub-scope with a trailing "_": "hljs-title function_"."""
    hljs = [c.removeprefix("hljs-") for c in classes if c.startswith("hljs-")]
    if not hljs:
        return False, None
    scoped = ".".join([hljs[0], *[c for c in classes if c.endswith("_")]])
    return True, _first(_HLJS.get(key) for key in (scoped, *hljs))


def _syntect_token(classes: list[str]) -> tuple[bool, str | None]:
    """syntect (Zola): the most specific scope the span names wins."""
    scopes = {c.removeprefix("z-") for c in classes if c.startswith("z-")}
    return bool(scopes), _first(short if scope in scopes else None for scope, short in _SYNTECT)


def _pygments_token(classes: list[str]) -> str | None:
    """Pygments' short classes (Rouge, Chroma), else highlight.js's bare names (Hexo's figure.highlight)."""
    own = _first(cls if cls in _SHORT_CLASSES or cls in ROUGE_EXTRA else None for cls in classes)
    return own or _first(_HLJS.get(cls) if cls not in ("code", "name", "link") else None for cls in classes)


def _first(candidates: Iterable[str | None]) -> str | None:
    return next((c for c in candidates if c is not None), None)


_STYLE_COLOUR = re.compile(r"(?:^|;)\s*color\s*:\s*(#[0-9a-fA-F]{3,6})\b")


def _colour_token(style: str, colours: CodePalette) -> str | None:
    """Token class for a Chroma inline colour; unknown colours become a ``#rrggbb`` pseudo-class."""
    match = _STYLE_COLOUR.search(style)
    if not match:
        return None
    colour = hex_colour(match.group(1))
    known = colour_tokens().get(colour)
    if known is not None:
        return known
    if relative_luminance(colour) > 0.6:  # near-white text meant for a dark background
        return ""
    return readable_on(colour, colours.background)


def is_line_number(element: HtmlElement) -> bool:
    classes = set((element.get("class") or "").split())
    return bool(classes & _LINE_NUMBER_CLASSES) or element.get("data-line-number") is not None


def highlighted_runs(pre: HtmlElement, colours: CodePalette) -> list[Run] | None:
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
            if isinstance(child.tag, str) and not is_line_number(child):
                walk(child, token)
            if child.tail:
                runs.append((token, child.tail))

    walk(pre, "")
    return runs if found else None


def lexed_runs(code: str, lexer: Lexer) -> list[Run]:
    return [(short_class(token_type), value) for token_type, value in lexer.get_tokens(code)]


def runs_of(pre: HtmlElement, colours: CodePalette) -> list[Run]:
    """The block's runs: its own highlighting, else Pygments' for its declared language, else plain."""
    runs = highlighted_runs(pre, colours)
    if runs is not None:
        return runs
    code = pre.text_content()
    language = code_language(pre)
    found = lexer(language) if language else None
    return lexed_runs(code.expandtabs(TAB_WIDTH), found) if found is not None else [("", code)]
