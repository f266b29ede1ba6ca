"""SQLite's own errors leave the store as DatabaseError: callers never need sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from digest import store
from digest.errors import DatabaseError, StoreError
from helpers import add_subscribers, run_cli


def _drop_subscribers(db_path: Path) -> None:
    """Break the database behind the store's back, as a hand edit or a bad restore would."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("DROP TABLE subscribers")
        conn.commit()
    finally:
        conn.close()


def test_a_locked_database_is_a_database_error_with_the_hint_for_its_cause(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    db = store.open_db(path)
    db.execute("PRAGMA busy_timeout = 0")  # fail at once instead of waiting 10 s
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(DatabaseError) as caught:
            store.set_state(db, "key", "value")
    finally:
        other.execute("ROLLBACK")
        other.close()
        db.close()
    assert isinstance(caught.value, StoreError)
    assert caught.value.detail == "database is locked"
    assert str(caught.value).startswith("database error: database is locked (another process is writing")


def test_a_streamed_listing_wraps_the_error_too(env: dict[str, str]) -> None:
    add_subscribers(env, "ada@example.com")
    path = Path(env["DIGEST_DB"])
    db = store.open_db(path)
    try:
        _drop_subscribers(path)
        rows = store.iter_subscribers(db)  # a generator: the error comes while it is read
        with pytest.raises(DatabaseError, match="no such table: subscribers"):
            list(rows)
    finally:
        db.close()


def test_a_database_error_mid_command_is_one_line_and_exit_1(env: dict[str, str]) -> None:
    add_subscribers(env, "ada@example.com")
    _drop_subscribers(Path(env["DIGEST_DB"]))

    result = run_cli(["subscribers", "add", "bob@example.com"], env)

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: database error: no such table: subscribers (what was already recorded is kept; run it again)"
    ]
