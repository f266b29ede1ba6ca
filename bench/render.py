"""Benchmark: render the shared Jekyll feed's full digest, against plain premailer.

Run by hand from the checkout:  .venv/bin/python bench/render.py [FEED] [--mode full|excerpt]

Prints the render time (median of 5) and the HTML size of the digest, and a
baseline: one plain premailer run (same settings) over the feed's entries'
un-processed content concatenated into the same page skeleton.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest import render
from digest.config import load_settings
from digest.feeds import parse_feed
from digest.fetch import FetchResult
from digest.models import StoredEntry
from digest.placeholders import Placeholders

ROUNDS = 5
ROOT = Path(__file__).resolve().parents[1]
SHARED_FEED = Path(__file__).resolve().parents[2] / "shared" / "feeds" / "jekyll-rouge-atom.xml"


def stored_entries(feed_path: Path) -> list[StoredEntry]:
    parsed = parse_feed(FetchResult(url=str(feed_path), status=200, body=feed_path.read_bytes()))
    now = datetime(2026, 11, 21, tzinfo=UTC)
    return [
        StoredEntry(
            id=number,
            feed_id=1,
            feed_title=parsed.title,
            feed_site_url=parsed.site_url,
            key=entry.key,
            title=entry.title,
            link=entry.link,
            author=entry.author,
            published=entry.published,
            first_seen=now,
            summary_html=entry.summary_html,
            content_html=entry.content_html,
            tags=entry.tags,
            enclosures=entry.enclosures,
        )
        for number, entry in enumerate(parsed.entries, start=1)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("feed", nargs="?", type=Path, default=SHARED_FEED)
    parser.add_argument("--mode", default="full", choices=("full", "excerpt"))
    parser.add_argument("--quick", action="store_true", help="one round on the bundled example feed: a smoke test")
    args = parser.parse_args()
    global ROUNDS
    if args.quick:
        ROUNDS = 1
        if args.feed == SHARED_FEED:
            args.feed = ROOT / "examples" / "feed.xml"
    settings = load_settings(
        None,
        {
            "DIGEST_FEED_URL": str(args.feed),
            "DIGEST_FROM": "bench@example.org",
            "SMTP_HOST": "localhost",
            "DIGEST_PUBLIC_URL": "https://example.org/digest",
            "DIGEST_SECRET": "bench-secret-0123456789",
            "DIGEST_MODE": args.mode,
        },
    )
    entries = stored_entries(args.feed)
    inline_runs: list[int] = []
    real_inline = render.inline_css

    def counting_inline(document: str) -> str:
        inline_runs.append(len(document))
        return real_inline(document)

    render.inline_css = counting_inline
    render.render_digest(entries, settings)
    render.inline_css = real_inline
    timings, digest = [], None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        digest = render.render_digest(entries, settings)
        timings.append(time.perf_counter() - start)
    assert digest is not None
    raw = "".join(e.content_html or e.summary_html for e in entries)
    page = f"<html><head><style>{_baseline_css()}</style></head><body>{raw}</body></html>"
    baseline_timings, baseline_html = [], ""
    for _ in range(ROUNDS):
        start = time.perf_counter()
        baseline_html = render.inline_css(page)
        baseline_timings.append(time.perf_counter() - start)
    stepwise_timings, steps = [], 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        steps = _stepwise(entries, settings)
        stepwise_timings.append(time.perf_counter() - start)
    ours, base = statistics.median(timings), statistics.median(baseline_timings)
    stepwise = statistics.median(stepwise_timings)
    print(f"feed: {args.feed.name}, {len(entries)} entries, mode {args.mode}")
    print(f"digest render: {ours:.2f} s, HTML {len(digest.html.encode()) / 1000:.1f} KB; notes: {list(digest.notes)}")
    print(f"premailer runs per digest: {len(inline_runs)} (input sizes {[round(n / 1000) for n in inline_runs]} KB)")
    print(f"baseline premailer over raw content: {base:.2f} s, HTML {len(baseline_html.encode()) / 1000:.1f} KB")
    print(f"ratio render/baseline: {ours / base:.2f}")
    print(f"step-by-step shrinking (one premailer run per step, {steps} runs): {stepwise:.2f} s, "
          f"ratio render/stepwise: {ours / stepwise:.2f}")  # fmt: skip


def _stepwise(entries: list[StoredEntry], settings: Any) -> int:
    """The walking skeleton's approach: inline, shorten the oldest entry one step, repeat."""
    ordered = sorted(entries, key=lambda e: (e.sort_time, e.id), reverse=True)
    layout = render._Layout(
        ordered, settings, render.template_environment(settings), Placeholders.new(), render.Issue("", None)
    )
    forms = [layout.target] * len(ordered)
    runs = 0
    while True:
        _html, _context, size, _raw = layout.inline(forms)
        runs += 1
        index = render._next_to_shorten(forms)
        if size <= settings.max_html_bytes or index is None:
            return runs
        forms[index] = render._FORMS[render._FORMS.index(forms[index]) + 1]


def _baseline_css() -> str:
    from pygments.formatters import HtmlFormatter

    css = str(HtmlFormatter(style="default").get_style_defs(".highlight"))  # type: ignore[no-untyped-call]
    return css + "\nbody{font-family:sans-serif}"


if __name__ == "__main__":
    main()
