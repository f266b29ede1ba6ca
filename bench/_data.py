"""The data the benchmarks share: a CSV export to import and a database full of sent digests.

Not a benchmark (tests/test_bench_quick.py runs every other ``bench/*.py``):
the scripts import it as ``_data``, which works because ``python bench/x.py``
puts ``bench/`` first on ``sys.path``. Each builder makes exactly what the
scripts made before they shared it, so the figures in bench/RESULTS.md stay
comparable.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from digest import store

NOW = "2026-12-01T08:00:00+00:00"


def export_address(n: int) -> str:
    """Row ``n``'s address in a CSV export: mixed case, and every 1,000th row invalid, like real exports."""
    return valid_address(n) if n % 1000 else f"broken-{n}"


def valid_address(n: int) -> str:
    return f"Reader.{n:07d}@Example{n % 97}.com"


def invalid_rows(rows: int) -> int:
    """How many of the first ``rows`` rows of an export have an invalid address."""
    return len(range(0, rows, 1000))


def make_csv(path: Path, rows: int) -> None:
    """A Mailchimp-style export of ``rows`` rows (see ``export_address``)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write('"Email Address","First Name","Last Name",OPTIN_TIME\r\n')
        for n in range(rows):
            out.write(f'{export_address(n)},Reader,"Number {n}","2020-01-01 00:00:00"\r\n')


def build_db(path: Path, subscribers: int, digests: int, *, domain: str, html: str) -> None:
    """A database as digest leaves it: ``subscribers`` active subscribers and ``digests`` sent digests.

    The real schema (every migration applied); subscriber ``n`` is
    ``reader{n}@{domain}``; each digest's HTML is ``html`` and it has one
    delivery per subscriber, every 500th failed, the rest sent; the kept
    counts (``delivery_tallies``) match. The rows are bulk-loaded without the
    tally triggers and counted once, as the migration does: the same rows as
    with the triggers, in a fraction of the time.
    """
    store.open_db(path).close()
    conn = sqlite3.connect(path)
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'deliveries'"
    ).fetchall()
    with conn:
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        conn.executemany(
            "INSERT INTO subscribers (email, name, status, token, created, updated, source) "
            "VALUES (?, ?, 'active', ?, ?, ?, 'bench')",
            ((f"reader{n}@{domain}", f"Reader {n}", f"tok{n:020d}", NOW, NOW) for n in range(subscribers)),
        )
        for digest in range(1, digests + 1):
            conn.execute(
                "INSERT INTO digests (id, created, subject, status, html, text, entry_count, started_at, finished_at) "
                "VALUES (?, ?, ?, 'sent', ?, 'x', 3, ?, ?)",
                [digest, NOW, f"Digest {digest}", html, NOW, NOW],
            )
            conn.executemany(
                "INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, sent_at) VALUES (?, ?, ?, 1, ?)",
                ((digest, n + 1, "failed" if n % 500 == 0 else "sent", NOW) for n in range(subscribers)),
            )
        conn.execute("DELETE FROM delivery_tallies")
        conn.execute(
            "INSERT INTO delivery_tallies (digest_id, status, n) "
            "SELECT digest_id, status, COUNT(*) FROM deliveries GROUP BY digest_id, status"
        )
        for _, sql in triggers:
            conn.execute(sql)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def failed_deliveries(subscribers: int) -> int:
    """How many of one digest's deliveries to ``subscribers`` subscribers ``build_db`` marks failed."""
    return len(range(0, subscribers, 500))
