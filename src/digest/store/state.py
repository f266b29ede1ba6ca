"""The state table: small facts outside the main tables (the daemon's last run, its heartbeat)."""

from __future__ import annotations

from sqlite_utils import Database

from digest.store.connection import guarded


@guarded
def get_state(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


@guarded
def set_state(db: Database, key: str, value: str) -> None:
    db.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               [key, value])  # fmt: skip
