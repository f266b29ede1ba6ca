"""Before/after screenshots of the user's feed as a digest (issue 14's proof), run by hand.

    .venv/bin/python docs/screenshots.py [--feed FEED] [--before COMMIT] [--mode excerpt|full]

Renders the digest of the shared Jekyll feed twice with ``digest send
--dry-run --output DIR`` on a fresh database (DIGEST_FIRST_RUN=all, so all
its posts): "before" with the code of COMMIT (default 7dea1e0, main just
before issue 14's merge ec5f6b7), checked out by ``git worktree add`` into a
temporary folder and run with PYTHONPATH (the worktree is removed
afterwards), and "after" with this checkout. Each digest.html is loaded in
headless Chromium (tests/helpers.chromium, every remote load blocked) at
390 px and 1,280 px, in light and dark mode (prefers-color-scheme emulated
over CDP), and saved as docs/{before,after}-{390,1280}-{light,dark}.png.
A page taller than --max-height (1,800 px) is cut there, so the files stay
small (about 150-300 KB each); the cut shows the masthead, the contents
list and the first posts. Scrollbars are hidden.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_FEED = ROOT.parent / "shared" / "feeds" / "jekyll-rouge-atom.xml"
BEFORE_COMMIT = "7dea1e0"  # main's parent of ec5f6b7, the merge of issue 14
WIDTHS = (390, 1280)
SCHEMES = ("light", "dark")


def render_preview(source: Path, feed: Path, mode: str, work: Path) -> Path:
    """``digest send --dry-run --output`` with the package under ``source/src``; the digest.html path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_"))}
    env.update(
        {
            "PYTHONPATH": str(source / "src"),
            "DIGEST_FEED_URL": str(feed),
            "DIGEST_DB": str(work / "digest.db"),
            "DIGEST_FROM": "Screenshots <digest@example.org>",
            "DIGEST_MODE": mode,
            "DIGEST_FIRST_RUN": "all",
            "DIGEST_PUBLIC_URL": "https://example.org/digest",
            "DIGEST_SECRET": "screenshots-secret-0123456789",
            "SMTP_HOST": "localhost",
        }
    )
    out = work / "preview"
    command = [sys.executable, "-m", "digest", "send", "--dry-run", "--output", str(out)]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (out / "digest.html").exists():
        raise SystemExit(f"screenshots: the dry run with {source} failed: {done.stderr.strip() or done.stdout}")
    return out / "digest.html"


@contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """A temporary ``git worktree`` of ``commit``, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="digest-before-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def shoot(driver: Any, page: Path, width: int, scheme: str, max_height: int, target: Path) -> tuple[int, int]:
    """Save ``page`` at ``width`` in ``scheme`` as a PNG; the page's full height and the height kept."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    features = [{"name": "prefers-color-scheme", "value": scheme}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "screen", "features": features})
    driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})
    driver.get(page.as_uri())
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    kept = min(full, max_height)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": kept})
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "clip": {"x": 0, "y": 0, "width": width, "height": kept, "scale": 1}},
    )
    target.write_bytes(base64.b64decode(shot["data"]))
    return full, kept


def shoot_all(driver: Any, pages: dict[str, Path], max_height: int, out: Path) -> None:
    for label, page in pages.items():
        for width in WIDTHS:
            for scheme in SCHEMES:
                target = out / f"{label}-{width}-{scheme}.png"
                full, kept = shoot(driver, page, width, scheme, max_height, target)
                cut = f", cut from {full} px" if kept < full else ""
                print(f"{target.name}: {width}x{kept}{cut}, {target.stat().st_size // 1000} KB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--feed", type=Path, default=SHARED_FEED)
    parser.add_argument("--before", default=BEFORE_COMMIT, help="the commit to render the 'before' shots with")
    parser.add_argument("--mode", default="excerpt", choices=("excerpt", "full"))
    parser.add_argument("--max-height", type=int, default=1800, help="cut taller pages here (px)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if not args.feed.is_file():
        print(f"screenshots: no feed at {args.feed}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import chromium  # the one way the project starts headless Chromium

    with tempfile.TemporaryDirectory(prefix="digest-shots-") as folder:
        work = Path(folder)
        pages = {}
        with checkout(args.before) as tree:
            (work / "before").mkdir()
            pages["before"] = render_preview(tree, args.feed.resolve(), args.mode, work / "before")
        (work / "after").mkdir()
        pages["after"] = render_preview(ROOT, args.feed.resolve(), args.mode, work / "after")
        try:
            with chromium(block_remote=True) as driver:
                shoot_all(driver, pages, args.max_height, args.out)
        except BaseException as exc:  # pytest.skip's outcome when Chromium is missing
            if type(exc).__name__ == "Skipped":
                print(f"screenshots: {exc}", file=sys.stderr)
                return 2
            raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
