"""`digest status` on a big delivery log (run by hand).

    python bench/status.py [--subscribers 100000] [--digests 10] [--rounds 5] [--quick]

Builds a database with N subscribers and D sent digests, each delivered to
every subscriber (N x D delivery rows, 1M by default), then times the whole
status use case (``status.build_status``: feeds, pending entries, schedule,
subscriber counts, bounce rates and the recent digests with their counts)
in the same run on:

1. the database as digest creates it now: the counts per digest and status
   are kept in ``delivery_tallies`` by triggers as deliveries are written;
2. the baseline, the previous version's way: a copy without the new index,
   the counts made by correlated ``COUNT(*)`` subqueries over the delivery
   log at every status (the exact SQL the previous version ran).

Prints the medians and their ratio. ``--quick`` (1,000 subscribers, two
digests, two rounds) is a smoke test that checks the counts, not a measurement.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlite_utils import Database  # noqa: E402

from _data import build_db, failed_deliveries  # noqa: E402
from digest import status  # noqa: E402
from digest.config import load_settings  # noqa: E402
from digest.store import bounces, digests  # noqa: E402

INDEX = "deliveries_digest_status"
_COUNTED = """SELECT (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = :d AND x.status = 'sent'),
                     (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = :d AND x.status = 'failed'),
                     (SELECT COUNT(*) FROM deliveries x WHERE x.digest_id = :d AND x.status = 'deferred')"""


def counted_tallies(db: Database, digest_ids: list[int]) -> dict[int, dict[str, int]]:
    """The previous version's counts: correlated COUNT(*) over the delivery log, per digest."""
    out = {}
    for digest_id in digest_ids:
        sent, failed, deferred = db.execute(_COUNTED, {"d": digest_id}).fetchone()
        out[digest_id] = {"sent": sent, "failed": failed, "deferred": deferred}
    return out


def timed(path: Path, rounds: int, *, counting: bool = False) -> tuple[float, status.StatusReport]:
    kept = digests.delivery_tallies
    if counting:
        digests.delivery_tallies = counted_tallies
        setattr(bounces, "delivery_tallies", counted_tallies)  # noqa: B010 - its import of the same name
    try:
        return _timed(path, rounds)
    finally:
        digests.delivery_tallies = kept
        setattr(bounces, "delivery_tallies", kept)  # noqa: B010


def _timed(path: Path, rounds: int) -> tuple[float, status.StatusReport]:
    settings = load_settings(None, {"DIGEST_DB": str(path), "DIGEST_FEED_URL": "examples/feed.xml"})
    timings, report = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        report = status.build_status(settings)
        timings.append(time.perf_counter() - start)
    assert report is not None
    return statistics.median(timings), report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--digests", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a small smoke test, not a measurement")
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.digests, args.rounds = 1000, 2, 2
    with tempfile.TemporaryDirectory() as folder:
        ours = Path(folder) / "status.db"
        build_db(ours, args.subscribers, args.digests, domain="example.org", html="<p>x</p>")
        before = Path(folder) / "before.db"
        shutil.copy(ours, before)
        conn = sqlite3.connect(before)
        conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
        conn.close()
        base, counted = timed(before, args.rounds, counting=True)
        mine, report = timed(ours, args.rounds)
        again, _ = timed(before, args.rounds, counting=True)  # the baseline on both sides of ours
    assert [(r.sent, r.failed) for r in counted.digests] == [(r.sent, r.failed) for r in report.digests]
    failed_each = failed_deliveries(args.subscribers)
    expected = [(args.subscribers - failed_each, failed_each)] * min(args.digests, 10)
    assert [(row.sent, row.failed) for row in report.digests] == expected, report.digests
    baseline = statistics.median([base, again])
    rows = args.subscribers * args.digests
    print(f"deliveries: {rows:,} ({args.subscribers:,} subscribers x {args.digests} digests)")
    print(f"digest status (counts kept by triggers): {mine * 1000:.1f} ms")
    print(f"baseline, the previous version (correlated counts, no new index): {baseline * 1000:.1f} ms")
    print(f"ratio status/baseline: {mine / baseline:.3f} ({baseline / mine:.0f}x faster)")


if __name__ == "__main__":
    main()
