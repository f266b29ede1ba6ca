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

* beside its connection the dry run opens a second, read-only one (the
  keeper) and reads through it once: a connection in WAL mode keeps its
  shared lock on the file while it is open, so while the keeper is open the
  dry run's close cannot take the exclusive lock a checkpoint needs, and the
  keeper, read-only, cannot checkpoint or delete -wal when it closes;
* when -wal had frames at open, or another connection committed meanwhile
  (the keeper's ``PRAGMA data_version`` moved: a daemon that opened the
  file, committed and closed during the dry run), the keeper is closed last:
  -wal stays as it was. Otherwise there is nothing committed to checkpoint,
  and the dry run's connection closes last, which removes the -wal and -shm
  files it created, as a real run's would. The window left is a commit and
  close by another process between that check and the close.

(Python 3.11, which has no ``setconfig``, used to copy the database into
memory instead whenever -wal had frames: 7.7 GiB for 1M subscribers and 50
past digests, so a dry run while the daemon ran could exhaust memory.)
"""

from __future__ import annotations

import sqlite3
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._noted = []

    _keeper: _Keeper | None = None

    def _open(self) -> None:
        if not self.in_transaction:
            super().execute("BEGIN IMMEDIATE")
            for name in self._noted:
                super().execute(f'SAVEPOINT "{name}"')
            self._noted.clear()

    def _savepoint(self, verb: str, second: str, sql: str) -> bool:
        """Handle a savepoint statement without a transaction (reads need no lock); False: run it."""
        noted = self._noted
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
            keeper, self._keeper = self._keeper, None
            if keeper is not None and not keeper.needed():
                keeper.close()  # nothing committed to checkpoint: closing last tidies -wal and -shm away
                keeper = None
            super().close()
            if keeper is not None:
                keeper.close()  # after this one: read-only, its close cannot checkpoint or delete -wal

    def _authorize(self, action: int, arg1: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_TRANSACTION and arg1 in ("COMMIT", "ROLLBACK"):
            return sqlite3.SQLITE_DENY
        if action in _WRITES and not self.in_transaction:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def _connect(path: Path, target: str) -> NeverCommits:
    try:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, factory=NeverCommits)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
    assert isinstance(conn, NeverCommits)
    return conn


def _wal_has_frames(path: Path) -> bool:
    try:
        return path.with_name(path.name + "-wal").stat().st_size > 0
    except FileNotFoundError:
        return False


class _Keeper:
    """A read-only connection holding the database file open while a dry run runs (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.frames = _wal_has_frames(path)  # before the dry run could spill into it
        self.conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            self.conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # in WAL mode: locked until closed
            self.version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        except BaseException:
            self.conn.close()
            raise

    def needed(self) -> bool:
        """Whether the dry run's connection closing last could checkpoint committed frames."""
        try:
            return self.frames or self.conn.execute("PRAGMA data_version").fetchone()[0] != self.version
        except sqlite3.Error:
            return True

    def close(self) -> None:
        self.conn.close()


def _open_connection(path: Path) -> NeverCommits:
    if not path.exists():
        return _connect(path, ":memory:")  # a dry run creates no file
    conn = _connect(path, str(path))
    try:
        conn._keeper = _Keeper(path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"cannot read database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
    return conn


@guarded
def open_snapshot(path: Path) -> Database:
    """The database at ``path`` for a dry run: changes are seen here and never reach the file.

    When ``path`` does not exist, an empty in-memory database (a dry run creates no file).
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
