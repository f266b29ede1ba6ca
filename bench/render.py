"""Benchmark: render the shared Jekyll feed's full digest, against plain premailer; and how it scales.

Run by hand from the checkout:
    .venv/bin/python bench/render.py [FEED] [--mode full|excerpt] [--sizes 20,50,100,200]

Prints the render time (median of 5) and the HTML size of the digest, and a
baseline: one plain premailer run (same settings) over the feed's entries'
un-processed content concatenated into the same page skeleton.

Then the size budget's scaling (issue 16): digests of 20, 50, 100 and 200
entries (the feed's posts repeated, each copy its own entry, a month older
per round), in both modes: time (median of the rounds), whole-digest renders
(Jinja and premailer, counted by render_digest's ``stats``), the forms chosen
and the size; the ratio of the largest to the smallest is the figure
(goal: 200 entries within 5x of 20).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the entries of a feed file, built as the tests build them

from digest import layout, render  # noqa: E402
from digest.config import Settings, load_settings  # noqa: E402
from digest.models import StoredEntry  # noqa: E402
from digest.placeholders import Placeholders  # noqa: E402
from helpers import stored_entries_from  # noqa: E402

ROUNDS = 5
SCALING_ROUNDS = 7
SHARED_FEED = Path(__file__).resolve().parents[2] / "shared" / "feeds" / "jekyll-rouge-atom.xml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("feed", nargs="?", type=Path, default=SHARED_FEED)
    parser.add_argument("--mode", default="full", choices=("full", "excerpt"))
    parser.add_argument("--sizes", default="20,50,100,200", help="entries per digest for the scaling table")
    parser.add_argument("--quick", action="store_true", help="one round on the bundled example feed: a smoke test")
    args = parser.parse_args()
    global ROUNDS, SCALING_ROUNDS
    if args.quick:
        ROUNDS = SCALING_ROUNDS = 1
        if args.feed == SHARED_FEED:
            args.feed = ROOT / "examples" / "feed.xml"

    def settings_for(mode: str, budget: int = 90_000) -> Settings:
        return load_settings(
            None,
            {
                "DIGEST_MAX_HTML_BYTES": str(budget),
                "DIGEST_FEED_URL": str(args.feed),
                "DIGEST_FROM": "bench@example.org",
                "SMTP_HOST": "localhost",
                "DIGEST_PUBLIC_URL": "https://example.org/digest",
                "DIGEST_SECRET": "bench-secret-0123456789",
                "DIGEST_MODE": mode,
            },
        )

    settings = settings_for(args.mode)
    entries = stored_entries_from(args.feed)
    stats = layout.RenderStats()
    render.render_digest(entries, settings, stats=stats)
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
    print(
        f"premailer runs per digest: {stats.inline_runs}; Jinja renders of the whole digest: {stats.template_renders}"
    )
    print(f"baseline premailer over raw content: {base:.2f} s, HTML {len(baseline_html.encode()) / 1000:.1f} KB")
    print(f"ratio render/baseline: {ours / base:.2f}")
    print(f"step-by-step shrinking (one premailer run per step, {steps} runs): {stepwise:.2f} s, "
          f"ratio render/stepwise: {ours / stepwise:.2f}")  # fmt: skip
    # --quick: a small budget, so that even a few entries take the links path.
    sizes = [4, 12] if args.quick else [int(n) for n in args.sizes.split(",")]
    for mode in ("full", "excerpt"):
        _scaling(entries, settings_for(mode, 10_000 if args.quick else 90_000), sizes)


def _many(entries: list[StoredEntry], count: int) -> list[StoredEntry]:
    """``count`` entries: the feed's posts again and again, each copy a month older than the last round."""
    out = []
    for number in range(count):
        entry = entries[number % len(entries)]
        older = timedelta(days=30 * (number // len(entries)))
        published = (entry.published or entry.first_seen) - older
        out.append(dataclasses.replace(entry, id=number + 1, key=f"{entry.key}#{number}", published=published))
    return out


def _scaling(entries: list[StoredEntry], settings: Settings, sizes: list[int]) -> None:
    """Sizes interleaved round by round (load drifts); wall time and this process's CPU time, medians."""
    print(f"\nscaling, mode {settings.mode}, budget {settings.max_html_bytes} bytes (median of {SCALING_ROUNDS}):")
    print("| entries | wall time | CPU time | whole renders (Jinja + premailer) | forms | HTML |")
    print("| --- | --- | --- | --- | --- | --- |")
    many = {count: _many(entries, count) for count in sizes}
    walls: dict[int, list[float]] = {count: [] for count in sizes}
    cpus: dict[int, list[float]] = {count: [] for count in sizes}
    last: dict[int, tuple[layout.RenderStats, str]] = {}
    for _ in range(SCALING_ROUNDS):
        for count in sizes:
            stats = layout.RenderStats()
            wall, cpu = time.perf_counter(), time.process_time()
            digest = render.render_digest(many[count], settings, stats=stats)
            walls[count].append(time.perf_counter() - wall)
            cpus[count].append(time.process_time() - cpu)
            last[count] = (stats, digest.html)
    wall_of = {count: statistics.median(walls[count]) for count in sizes}
    cpu_of = {count: statistics.median(cpus[count]) for count in sizes}
    for count in sizes:
        stats, html = last[count]
        print(f"| {count} | {wall_of[count]:.2f} s | {cpu_of[count]:.2f} s | {stats.template_renders} + "
              f"{stats.inline_runs} | {_forms(html)} | {len(html.encode()) / 1000:.1f} KB |")  # fmt: skip
    small, large = sizes[0], sizes[-1]
    print(f"ratio {large} entries / {small} entries ({settings.mode}): wall {wall_of[large] / wall_of[small]:.2f}, "
          f"CPU {cpu_of[large] / cpu_of[small]:.2f}")  # fmt: skip


def _forms(html: str) -> str:
    """How many posts are cards and how many links lines, read from the HTML."""
    cards, links = html.count('class="dg-entry-cell"'), html.count('<a class="dg-links-link"')
    return f"{cards} cards, {links} links"


def _stepwise(entries: list[StoredEntry], settings: Any) -> int:
    """The walking skeleton's approach: inline, shorten the oldest entry one step, repeat."""
    ordered = sorted(entries, key=lambda e: (e.sort_time, e.id), reverse=True)
    sizer = render._Layout(
        ordered,
        settings,
        render.template_environment(settings),
        Placeholders.new(),
        render.Issue("", None),
        layout.RenderStats(),
    )
    forms = [sizer.target] * len(ordered)
    runs = 0
    while True:
        size = sizer.inlined_size(forms)
        runs += 1
        index = layout.next_to_shorten(forms)
        if size <= settings.max_html_bytes or index is None:
            return runs
        forms[index] = layout.FORMS[layout.FORMS.index(forms[index]) + 1]


def _baseline_css() -> str:
    from pygments.formatters import HtmlFormatter

    css = str(HtmlFormatter(style="default").get_style_defs(".highlight"))  # type: ignore[no-untyped-call]
    return css + "\nbody{font-family:sans-serif}"


if __name__ == "__main__":
    main()
