"""Every fixture digest laid out by a real headless Chromium: no sideways scrolling, titles in their cards.

Phone (390 px) and desktop (1,280 px) widths, with the <style> block and
without it (Gmail drops it in clipped or non-Gmail-account views). One
browser session for all; every remote load is blocked, the pages are local files.
Skips without Chromium locally, never under CI=true.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest import render
from helpers import FIXTURES, SHARED_FEED, chromium, settings_from, stored_entries_from, write_atom_feed

FEEDS = sorted(p for p in (FIXTURES / "render").iterdir() if p.suffix in (".atom", ".rss", ".xml"))
WIDTHS = (390, 1280)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(block_remote=True) as driver:  # the pages are local files: every remote load is blocked
        yield driver


def _viewport(browser: Any, width: int) -> None:
    """A window ``width`` CSS pixels wide and 900 high, at one device pixel per CSS pixel."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )


@pytest.fixture
def pages(tmp_path: Path, env: dict[str, str]) -> list[tuple[str, Path, list[str]]]:
    folder = tmp_path
    found = []
    for feed in FEEDS:
        for mode in ("full", "excerpt"):
            entries = stored_entries_from(feed)
            digest = render.render_digest(entries, settings_from({**env, "DIGEST_MODE": mode}))
            titles = [e.title for e in entries]
            for styled in (True, False):
                html = digest.html if styled else re.sub(r"<style\b.*?</style>", "", digest.html, flags=re.S)
                path = folder / f"{feed.stem}-{mode}-{'styled' if styled else 'bare'}.html"
                path.write_text(html, encoding="utf-8")
                found.append((path.stem, path, titles))
    return found


CARDS = """
return Array.from(document.querySelectorAll('table.dg-entry')).map(function (card) {
  var title = card.querySelector('.dg-entry-title');
  var c = card.getBoundingClientRect(), t = title ? title.getBoundingClientRect() : null;
  return {title: title ? title.textContent.trim() : '',
          inside: !!t && t.left >= c.left - 1 && t.right <= c.right + 1
                  && t.top >= c.top - 1 && t.bottom <= c.bottom + 1};
});
"""


# Each code block's height against its line count: a line the browser wraps
# again (beyond the server's marked wrap) makes the block taller than
# lines x line-height.
CODE_LINES = """
return Array.from(document.querySelectorAll('pre.dg-code')).map(function (pre) {
  var style = getComputedStyle(pre);
  return {lines: pre.textContent.split('\\n').length, height: pre.getBoundingClientRect().height,
          lineHeight: parseFloat(style.lineHeight), fontSize: parseFloat(style.fontSize),
          first: pre.textContent.split('\\n')[0]};
});
"""


def _code_block_problems(browser: Any, pages: list[tuple[str, Path, list[str]]]) -> tuple[list[str], int]:
    problems: list[str] = []
    blocks = 0
    for name, path, _ in pages:
        if not name.endswith("-styled"):
            continue  # without <style> the phone rules (smaller code font) do not apply
        browser.get(path.as_uri())
        for block in browser.execute_script(CODE_LINES):
            blocks += 1
            if block["height"] > block["lines"] * block["lineHeight"] + 1:
                problems.append(
                    f"{name}: a block of {block['lines']} lines is {block['height']:.0f}px high at "
                    f"{block['fontSize']}px/{block['lineHeight']}px ({block['first'][:40]!r}...)"
                )
    return problems, blocks


def test_code_lines_wrap_only_where_the_server_wrapped_them_on_a_phone(
    browser: Any, pages: list[tuple[str, Path, list[str]]], tmp_path: Path, env: dict[str, str]
) -> None:
    if SHARED_FEED.exists():  # the user's own code-heavy Jekyll feed, when the checkout has it
        digest = render.render_digest(stored_entries_from(SHARED_FEED), settings_from({**env, "DIGEST_MODE": "full"}))
        path = tmp_path / "jekyll-full-styled.html"
        path.write_text(digest.html, encoding="utf-8")
        pages = [*pages, (path.stem, path, [])]
    _viewport(browser, 390)
    # A phone's scrollbar overlays the page; desktop Chromium's would take 15 px of the 390.
    browser.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})
    try:
        problems, blocks = _code_block_problems(browser, pages)
    finally:
        browser.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": False})
    assert blocks > 10
    assert not problems, "\n".join(problems)


def test_fixture_digests_fit_phone_and_desktop_with_and_without_style(
    browser: Any, pages: list[tuple[str, Path, list[str]]]
) -> None:
    assert pages
    problems = []
    for width in WIDTHS:
        _viewport(browser, width)
        for name, path, titles in pages:
            browser.get(path.as_uri())
            scroll, inner = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth];")
            if scroll > inner:
                problems.append(f"{name} at {width}px scrolls sideways: {scroll} > {inner}")
            cards = browser.execute_script(CARDS)
            if len(cards) != len(titles):
                problems.append(f"{name} at {width}px: {len(cards)} cards for {len(titles)} posts")
            for card, title in zip(cards, titles, strict=False):
                if not card["inside"] or " ".join(title.split()) not in " ".join(card["title"].split()):
                    problems.append(f"{name} at {width}px: card for {title!r} holds {card['title']!r}")
    assert not problems, "\n".join(problems)


FOOTER_LINKS = """
return Array.from(document.querySelectorAll('a.dg-footer-link')).map(function (link) {
  var r = link.getBoundingClientRect();
  return {text: link.textContent.trim(), width: r.width, height: r.height};
});
"""
TAP_PX = 44  # Apple's and WCAG 2.5.5's minimum touch target


def test_footer_links_are_tap_targets_of_at_least_44_px(browser: Any, pages: list[tuple[str, Path, list[str]]]) -> None:
    # With and without <style>: the padding that makes the target is inlined on the link itself.
    problems, measured = [], 0
    for width in WIDTHS:
        _viewport(browser, width)
        for name, path, _ in pages:
            browser.get(path.as_uri())
            links = browser.execute_script(FOOTER_LINKS)
            if not any(link["text"] == "Unsubscribe" for link in links):
                problems.append(f"{name} at {width}px: no Unsubscribe link in the footer")
            for link in links:
                measured += 1
                if link["height"] < TAP_PX or link["width"] < TAP_PX:
                    problems.append(
                        f"{name} at {width}px: {link['text']!r} is {link['width']:.0f}x{link['height']:.0f}px"
                    )
    assert measured >= 2 * len(pages)
    assert not problems, "\n".join(problems)


def test_a_digest_with_the_more_posts_list_fits_phone_and_desktop(
    browser: Any, tmp_path: Path, env: dict[str, str]
) -> None:
    # A budget so small that every fixture post becomes one line of the list at the end.
    entries = stored_entries_from(FIXTURES / "render" / "highlighters.atom")
    digest = render.render_digest(entries, settings_from({**env, "DIGEST_MAX_HTML_BYTES": "10000"}))
    assert "dg-links-link" in digest.html
    problems = []
    for styled in (True, False):
        html = digest.html if styled else re.sub(r"<style\b.*?</style>", "", digest.html, flags=re.S)
        path = tmp_path / f"links-{styled}.html"
        path.write_text(html, encoding="utf-8")
        for width in WIDTHS:
            _viewport(browser, width)
            browser.get(path.as_uri())
            scroll, inner, lines = browser.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth,"
                " document.querySelectorAll('ul.dg-links > li').length];"
            )
            if scroll > inner or lines != len(entries):
                problems.append(f"styled={styled} at {width}px: scroll {scroll} > {inner}, or {lines} lines")
    assert not problems, "\n".join(problems)


RULES = """
var card = document.querySelector('td.dg-card'), cell = document.querySelector('td.dg-entry-cell');
var hr = cell.querySelector('hr'), c = getComputedStyle(cell), h = getComputedStyle(hr);
return {background: getComputedStyle(card).backgroundColor,
        divider: [parseFloat(c.borderBottomWidth), c.borderBottomColor],
        rule: [parseFloat(h.borderTopWidth), h.borderTopColor]};
"""


def _rgb_luminance(colour: str) -> float:
    channels = [int(part) / 255 for part in re.findall(r"\d+", colour)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, two: str) -> float:
    high, low = sorted((_rgb_luminance(one), _rgb_luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_divider_between_posts_is_stronger_than_a_rule_inside_one(
    browser: Any, tmp_path: Path, env: dict[str, str]
) -> None:
    # Light and dark (prefers-color-scheme emulated), with and without <style>.
    posts = {f"Post {n}": "<p>Before the rule.</p><hr><p>After the rule.</p>" for n in (1, 2)}
    feed = write_atom_feed(tmp_path / "rules.atom", "rules", "Rules", posts)
    digest = render.render_digest(stored_entries_from(feed), settings_from({**env, "DIGEST_MODE": "full"}))
    problems = []
    for styled, scheme in ((True, "light"), (True, "dark"), (False, "light")):
        html = digest.html if styled else re.sub(r"<style\b.*?</style>", "", digest.html, flags=re.S)
        path = tmp_path / f"rules-{styled}-{scheme}.html"
        path.write_text(html, encoding="utf-8")
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        browser.get(path.as_uri())
        seen = browser.execute_script(RULES)
        (divider_px, divider_colour), (rule_px, rule_colour) = seen["divider"], seen["rule"]
        divider = divider_px * _contrast(divider_colour, seen["background"])
        rule = rule_px * _contrast(rule_colour, seen["background"])
        if not (rule_px >= 1 and _contrast(rule_colour, seen["background"]) > 1.05 and divider >= 1.5 * rule):
            problems.append(
                f"styled={styled} {scheme}: divider {seen['divider']}, rule {seen['rule']} on {seen['background']}"
            )
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert not problems, "\n".join(problems)
