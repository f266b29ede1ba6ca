"""Dry runs on the real database file: every change is made, seen, and never committed.

A dry run (``send --dry-run``, ``send --to``, ``bounces process --dry-run``)
must see exactly what the real command would (the same rows, its own writes:
a feed's new entries, the digest it would create) and leave the file byte for
byte as it was. It used to copy the whole database into memory first (206 MiB
for 100,000 subscribers and 10 past digests); now it opens the real file on a
connection that cannot commit:

* the first write opens one transaction (``BEGIN IMMEDIATE``, waiting for
  another writer like every command) that lasts until the connection closes,
  and is then rolled back. Reads before it see the file as it is and take no
  lock: the savepoint sqlite-utils wraps around every query is only noted
  while no transaction is open, and made real (after the ``BEGIN
  IMMEDIATE``) only if a write comes inside it;
* the code it runs is the code a real run runs: a ``BEGIN ... COMMIT`` it
  issues becomes a savepoint released inside that transaction (its
  ``ROLLBACK`` rolls back to the savepoint), a plain write simply joins it;
* an authorizer refuses any COMMIT or ROLLBACK statement, and any write
  outside the transaction, so no path can reach the file by accident;
* in WAL mode (the mode digest sets) uncommitted pages may spill only into
  the -wal file, which readers ignore; in a rollback-journal database spilling
  would write the main file before the rollback restores it, so
  ``cache_spill`` is turned off there and changed pages stay in memory.

Memory is the page cache plus the pages the dry run changes (a few feed and
digest rows), whatever the size of the database. The cost: from its first
write to its end a dry run holds the write lock, as a real run's transaction
would; other writers wait for it (busy_timeout).

Checkpoints. A rolled-back transaction never commits, so the automatic
checkpoint (``wal_autocheckpoint``, run by SQLite's WAL hook after a commit)
cannot fire, and digest never runs ``PRAGMA wal_checkpoint``. The one other
trigger is closing the last connection to the file: SQLite then checkpoints
the -wal file into the main file and deletes -wal and -shm. The content is
the same, the bytes are not. When a -wal file with frames is left beside the
file (a writer killed mid-run, or a daemon holding the file open), that
close would rewrite the main file. So:

* Python >= 3.12: the connection is opened with
  ``SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE``, so its close never checkpoints;
* Python 3.11 has no ``setconfig``: when the -wal file is non-empty at open,
  the dry run works on an in-memory copy (``backup`` from a read-only
  connection, which cannot checkpoint) instead, at the old memory cost. An
  empty or absent -wal has nothing to checkpoint. What remains on 3.11 is a
  race: a daemon that opens the file and commits during the dry run, then
  closes before it, leaves the dry run to close last over those frames.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from digest.errors import StoreError
from digest.store.connection import configure, guarded, sqlite_hint

_READS = frozenset({"SELECT", "PRAGMA", "EXPLAIN", "VALUES", "WITH"})  # WITH ... INSERT meets the authorizer
_UNIT = "digest_dry_run_unit"  # the savepoint standing for a transaction the code asked for
_WRITES = frozenset(
    getattr(sqlite3, name)
    for name in dir(sqlite3)
    if name.startswith(("SQLITE_CREATE_", "SQLITE_DROP_"))
    or name in ("SQLITE_INSERT", "SQLITE_UPDATE", "SQLITE_DELETE", "SQLITE_ALTER_TABLE", "SQLITE_REINDEX")
)


def _verb(sql: str) -> tuple[str, str]:
    words = sql.lstrip().rstrip("; \n").split(None, 2)
    return (words[0].upper() if words else ""), (words[1].upper() if len(words) > 1 else "")


def _savepoint_name(sql: str) -> str:
    """The name in SAVEPOINT x, RELEASE [SAVEPOINT] x or ROLLBACK TO [SAVEPOINT] x, unquoted (SQLite ignores case)."""
    return sql.strip().rstrip(";").split()[-1].strip('"`[]').lower()


class NeverCommits(sqlite3.Connection):
    """A connection whose changes live in one transaction that is rolled back when it closes."""

    _unit = False  # inside a BEGIN the code issued (a savepoint here)
    _noted: list[str]  # savepoints the code opened while no transaction was: not made yet

    def _open(self) -> None:
        if not self.in_transaction:
            super().execute("BEGIN IMMEDIATE")
            for name in self._pending():
                super().execute(f'SAVEPOINT "{name}"')
            self._pending().clear()

    def _pending(self) -> list[str]:
        if not hasattr(self, "_noted"):
            self._noted = []
        return self._noted

    def _savepoint(self, verb: str, second: str, sql: str) -> bool:
        """Handle a savepoint statement without a transaction (reads need no lock); False: run it."""
        noted = self._pending()
        if self.in_transaction or (not noted and verb != "SAVEPOINT"):
            return False
        name = _savepoint_name(sql)
        if verb == "SAVEPOINT":
            noted.append(name)
        elif name in noted:  # RELEASE drops it and the ones inside it; ROLLBACK TO only those inside
            innermost = len(noted) - 1 - noted[::-1].index(name)  # a repeated name means the newest, as in SQLite
            del noted[innermost + (1 if verb == "ROLLBACK" else 0) :]
        else:
            return False
        return True

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        verb, second = _verb(sql)
        if (verb in ("SAVEPOINT", "RELEASE") or (verb, second) == ("ROLLBACK", "TO")) and self._savepoint(
            verb, second, sql
        ):
            return super().execute("SELECT 1 WHERE 0")
        if verb == "BEGIN":
            self._open()
            self._unit = True
            return super().execute(f"SAVEPOINT {_UNIT}")
        if verb in ("COMMIT", "END"):
            self.commit()
            return super().execute("SELECT 1 WHERE 0")
        if verb == "ROLLBACK" and second != "TO":
            self.rollback()
            return super().execute("SELECT 1 WHERE 0")
        if verb not in _READS:
            self._open()
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self._open()
        return super().executemany(sql, parameters)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        self._open()  # a COMMIT in the script meets the authorizer
        return super().executescript(script)

    def commit(self) -> None:
        if self._unit:
            self._unit = False
            super().execute(f"RELEASE {_UNIT}")

    def rollback(self) -> None:
        if self._unit:
            self._unit = False
            super().execute(f"ROLLBACK TO {_UNIT}")
            super().execute(f"RELEASE {_UNIT}")

    def close(self) -> None:
        try:
            self.set_authorizer(None)
        except sqlite3.ProgrammingError:  # already closed
            return
        try:
            if self.in_transaction:
                super().execute("ROLLBACK")
        finally:
            super().close()

    def _authorize(self, action: int, arg1: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_TRANSACTION and arg1 in ("COMMIT", "ROLLBACK"):
            return sqlite3.SQLITE_DENY
        if action in _WRITES and not self.in_transaction:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def _wal_has_frames(path: Path) -> bool:
    try:
        return path.with_name(path.name + "-wal").stat().st_size > 0
    except FileNotFoundError:
        return False


def _connect(path: Path, target: str) -> NeverCommits:
    try:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, factory=NeverCommits)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
    assert isinstance(conn, NeverCommits)
    return conn


def _copy_into_memory(path: Path) -> NeverCommits:
    """An in-memory copy of ``path`` and its -wal frames, read without a checkpoint (see above)."""
    memory = _connect(path, ":memory:")
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            source.backup(memory)
        finally:
            source.close()  # read-only: its close cannot checkpoint or delete -wal
    except sqlite3.DatabaseError as exc:
        memory.close()
        raise StoreError(f"cannot read database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
    return memory


def _open_connection(path: Path) -> NeverCommits:
    if not path.exists():
        return _connect(path, ":memory:")  # a dry run creates no file
    if sys.version_info >= (3, 12):
        conn = _connect(path, str(path))
        conn.setconfig(sqlite3.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, True)
        return conn
    if _wal_has_frames(path):
        return _copy_into_memory(path)  # 3.11: closing the real file here could checkpoint it
    return _connect(path, str(path))


@guarded
def open_snapshot(path: Path) -> Database:
    """The database at ``path`` for a dry run: changes are seen here and never reach the file.

    When ``path`` does not exist, an empty in-memory database (a dry run creates no file);
    on Python 3.11 with a non-empty -wal file, an in-memory copy (see the module's docstring).
    Close it (``db.close()``) to roll everything back and release the write lock.
    """
    conn = _open_connection(path)
    conn.set_authorizer(conn._authorize)
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode != "wal":
            conn.execute("PRAGMA cache_spill = OFF")
        return configure(conn)  # a migration, if one is due, happens inside the rolled-back transaction
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"cannot read database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
