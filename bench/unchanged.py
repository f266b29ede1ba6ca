"""A check of a feed served without ETag or Last-Modified that has not changed (run by hand).

    python bench/unchanged.py [--rounds 20] [--quick]

Serves the user's feed (../shared/feeds/jekyll-rouge-atom.xml; examples/feed.xml
when it is not there) from a plain HTTP server on 127.0.0.1 that sends no
validators, so every check gets a 200 with the whole body. After a first
check, times in the same run, interleaved:

1. ``feedcheck.check_feeds`` now: the body's sha256 matches the stored one, so
   nothing is parsed or stored;
2. the baseline, the previous version's work: the same check with the stored
   hash cleared first, so the body is parsed by feedparser and its entries
   matched against the stored ones, as every check did before.

Prints the medians and their ratio. ``--quick`` (2 rounds) is a smoke test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from digest import feedcheck, store  # noqa: E402
from digest.config import load_settings  # noqa: E402
from digest.wiring import wire  # noqa: E402

SHARED = ROOT.parent / "shared" / "feeds" / "jekyll-rouge-atom.xml"
FEED = SHARED if SHARED.exists() else ROOT / "examples" / "feed.xml"


def serve(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # no ETag, no Last-Modified: a 200 every time
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a small smoke test, not a measurement")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    body = FEED.read_bytes()
    server = serve(body)
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        settings = load_settings(None, {"DIGEST_DB": str(path), "DIGEST_FEED_URL": url, "DIGEST_FIRST_RUN": "all"})
        db = store.open_db(path)
        (first,) = feedcheck.check_feeds(db, wire(settings))
        assert first.status == "ok" and first.new, first.error
        ours, baseline = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            (report,) = feedcheck.check_feeds(db, wire(settings))
            ours.append(time.perf_counter() - start)
            assert report.status == "not-modified", report.status
            db.execute("UPDATE feeds SET content_hash = NULL")  # as if the previous version: parse it again
            start = time.perf_counter()
            (report,) = feedcheck.check_feeds(db, wire(settings))
            baseline.append(time.perf_counter() - start)
            assert report.status == "ok" and report.new == [], report.status
        db.close()
    server.shutdown()
    mine, base = statistics.median(ours), statistics.median(baseline)
    print(f"feed: {FEED.name}, {len(body):,} bytes, served without validators; {args.rounds} rounds")
    print(f"check, same body (hash matches, not parsed): {mine * 1000:.1f} ms")
    print(f"baseline, parsed and matched again (the previous version): {base * 1000:.1f} ms")
    print(f"ratio unchanged/baseline: {mine / base:.3f} ({base / mine:.0f}x cheaper)")


if __name__ == "__main__":
    main()
