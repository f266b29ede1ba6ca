"""The data the benchmarks share: a CSV export to import and a database full of sent digests.

Not a benchmark (tests/test_bench_quick.py runs every other ``bench/*.py``):
the scripts import it as ``_data``, which works because ``python bench/x.py``
puts ``bench/`` first on ``sys.path``. ``build_db`` writes its rows with
set-based SQL (1M subscribers x 50 digests, 50M delivery rows, in under 3
minutes) and as a real send does: random tokens, a Message-ID per sent
delivery, the server's reply on a failed one.
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


FAILED = "550 5.1.1 <{address}>: Recipient address rejected: User unknown"


def build_db(path: Path, subscribers: int, digests: int, *, domain: str, html: str) -> None:
    """The database digest leaves after ``digests`` sends to ``subscribers`` active subscribers.

    The real schema (every migration applied); subscriber ``n`` is
    ``reader{n}@{domain}``; each digest's HTML is ``html``. Rows as a send
    writes them: a random token per subscriber, one placeholder nonce per
    digest, one delivery per subscriber and digest, with a Message-ID and a
    send time, except every 500th subscriber's, failed with the server's
    reply; the kept counts (``delivery_tallies``) match. Built with set-based
    SQL in one transaction, journal and syncs off (a build, not digest's own
    writes), the tally triggers dropped for the load and the counts made once
    as the migration does; the file is then put back in WAL mode.
    """
    store.open_db(path).close()  # the real schema, every migration applied
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -1000000"):
        conn.execute(f"PRAGMA {pragma}")
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'deliveries'"
    ).fetchall()
    numbers = "WITH RECURSIVE n(i) AS (SELECT 1 WHERE :count > 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
    conn.execute("BEGIN")
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute(
        "INSERT INTO subscribers (id, email, name, status, token, created, updated, source) "
        + numbers
        + "SELECT i, 'reader' || (i - 1) || '@' || :domain, 'Reader ' || (i - 1), 'active', "
        "lower(hex(randomblob(16))), :now, :now, 'bench' FROM n",
        {"count": subscribers, "now": NOW, "domain": domain},
    )
    conn.execute(
        "INSERT INTO digests (id, created, subject, status, html, text, entry_count, started_at, finished_at, "
        "placeholder_nonce) "
        + numbers
        + "SELECT i, :now, 'Digest ' || i, 'sent', :html, 'x', 3, :now, :now, lower(hex(randomblob(12))) FROM n",
        {"count": digests, "now": NOW, "html": html},
    )
    # Digest by digest, subscriber by subscriber: every index is appended to in order.
    conn.execute(
        """INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, last_error, message_id, sent_at)
           SELECT d.id, s.id, IIF(s.failed, 'failed', 'sent'), 1,
                  IIF(s.failed, replace(:failed, '{address}', s.email), NULL),
                  IIF(s.failed, NULL, '<digest.' || lower(hex(randomblob(10))) || '@' || :domain || '>'),
                  IIF(s.failed, NULL, :now)
           FROM digests d CROSS JOIN (SELECT id, email, (id - 1) % 500 = 0 AS failed FROM subscribers) s
           ORDER BY d.id, s.id""",
        {"now": NOW, "failed": FAILED, "domain": domain},
    )
    conn.execute("DELETE FROM delivery_tallies")
    conn.execute(
        "INSERT INTO delivery_tallies (digest_id, status, n) "
        "SELECT digest_id, status, COUNT(*) FROM deliveries GROUP BY digest_id, status"
    )
    for _, sql in triggers:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


def failed_deliveries(subscribers: int) -> int:
    """How many of one digest's deliveries to ``subscribers`` subscribers ``build_db`` marks failed."""
    return len(range(0, subscribers, 500))
