"""The per-digest delivery counts `digest status` reads are kept exact by triggers.

Real sends to an aiosmtpd server that refuses one address and defers
another, a retry that turns the deferral into a delivery, and a purge:
after each step the kept counts equal a fresh count of the delivery log.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from helpers import RecordingHandler, add_subscribers, run_cli, running_smtp


class Picky(RecordingHandler):
    deferring = True

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("later@") and self.deferring:
            return "451 4.7.1 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def kept_and_counted(db_path: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db_path)
    try:
        kept = conn.execute("SELECT digest_id, status, n FROM delivery_tallies WHERE n != 0 ORDER BY 1, 2").fetchall()
        counted = conn.execute(
            "SELECT digest_id, status, COUNT(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        return kept, counted
    finally:
        conn.close()


def test_the_kept_counts_follow_sends_retries_and_purges(env: dict[str, str]) -> None:
    handler = Picky()
    with running_smtp(handler) as smtp:
        environ = {**env, "SMTP_PORT": str(smtp.port), "DIGEST_SEND_ATTEMPTS": "1"}
        add_subscribers(environ, "ada@example.com", "bob@example.com", "gone@example.com", "later@example.com")
        run_cli(["send"], environ)
        kept, counted = kept_and_counted(environ["DIGEST_DB"])
        assert kept == counted == [(1, "deferred", 1), (1, "failed", 1), (1, "sent", 2)]

        handler.deferring = False
        conn = sqlite3.connect(environ["DIGEST_DB"])
        conn.execute("UPDATE deliveries SET next_attempt = '2000-01-01T00:00:00+00:00' WHERE status = 'deferred'")
        conn.commit()
        conn.close()
        run_cli(["send"], environ)  # the retry is due: it goes out now
        kept, counted = kept_and_counted(environ["DIGEST_DB"])
        assert kept == counted == [(1, "failed", 1), (1, "sent", 3)]

        assert run_cli(["subscribers", "remove", "--purge", "bob@example.com"], environ).exit_code == 0
        kept, counted = kept_and_counted(environ["DIGEST_DB"])
        assert kept == counted == [(1, "failed", 1), (1, "sent", 2)]

        status = json.loads(run_cli(["status", "--json"], environ).stdout)
        [digest] = status["digests"]
        assert (digest["sent"], digest["failed"], digest["deferred"]) == (2, 1, 0)


def test_an_older_database_gets_its_counts_from_the_log(env: dict[str, str], tmp_path: Path) -> None:
    from sqlite_utils import Database

    from digest import store
    from digest.store import schema

    path = tmp_path / "old.db"
    before = schema.MIGRATIONS.index(schema._migration_delivery_counts)
    old = Database(path)
    for number, migration in enumerate(schema.MIGRATIONS[:before], start=1):
        migration(old)
        old.execute(f"PRAGMA user_version = {number}")
    now = "2026-12-01T08:00:00+00:00"
    old.execute(
        "INSERT INTO digests (id, created, subject, html, text, entry_count) VALUES (1, ?, 's', '', '', 1)", [now]
    )
    for n, state in enumerate(["sent", "sent", "failed"], start=1):
        old.execute(
            "INSERT INTO subscribers (id, email, status, token, created, updated) VALUES (?, ?, 'active', ?, ?, ?)",
            [n, f"r{n}@example.org", f"token-{n:016d}", now, now],
        )
        old.execute("INSERT INTO deliveries (digest_id, subscriber_id, status) VALUES (1, ?, ?)", [n, state])
    old.close()
    store.open_db(path).close()
    kept, counted = kept_and_counted(str(path))
    assert kept == counted == [(1, "failed", 1), (1, "sent", 2)]
