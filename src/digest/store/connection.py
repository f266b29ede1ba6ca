"""Opening the database: a migrated connection, write transactions (dry runs: dryrun.py).

Connections run in autocommit mode; every multi-step change happens inside
``db.atomic()``, :func:`transaction` or :func:`write_transaction`, so a crash
leaves either all of a change or none of it. SQLite's own errors leave the
store as DatabaseError (:func:`guarded`).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlite_utils import Database

from digest.errors import DatabaseError, StoreError, database_hint
from digest.store.schema import migrate

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` raising DatabaseError where SQLite raised its own error.

    Every public store function wears this, so callers catch the error tree
    (errors.py) and never import sqlite3: the CLI prints one line, the web
    app answers 503, the daemon logs and goes on.
    """

    @functools.wraps(func)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except sqlite3.Error as exc:
            raise DatabaseError(str(exc)) from exc

    return call


def guarded_iter(func: Callable[P, Iterator[T]]) -> Callable[P, Iterator[T]]:
    """:func:`guarded` for a generator: errors while it is consumed are wrapped too."""

    @functools.wraps(func)
    def call(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        try:
            yield from func(*args, **kwargs)
        except sqlite3.Error as exc:
            raise DatabaseError(str(exc)) from exc

    return call


def configure(conn: sqlite3.Connection, *pragmas: str, busy_timeout_ms: int = 10000) -> Database:
    """The migrated Database over ``conn``; ``conn`` is closed if that fails."""
    try:
        for pragma in (*pragmas, "PRAGMA foreign_keys = ON", f"PRAGMA busy_timeout = {int(busy_timeout_ms)}"):
            conn.execute(pragma)
        db = Database(conn, execute_plugins=False)
        migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


@guarded
def open_db(path: Path, *, busy_timeout_ms: int = 10000) -> Database:
    """Open (creating when absent) and migrate the database at ``path``.

    ``busy_timeout_ms``: how long a statement waits for another writer (the
    web app waits less, and queues a one-click unsubscribe that cannot wait).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # NORMAL is durable across process crashes in WAL mode; only a power
        # cut can lose the last commits, which the send log tolerates.
        return configure(
            conn, "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", busy_timeout_ms=busy_timeout_ms
        )
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}", hint=sqlite_hint(exc, path)) from None
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror}") from None


def sqlite_hint(exc: sqlite3.Error, path: Path | None = None) -> str:
    """What to do about a SQLite error, by its cause (a damaged file is not fixed by running again)."""
    return database_hint(str(exc), path)


@contextlib.contextmanager
def transaction(db: Database) -> Iterator[None]:
    """Store calls made inside commit together or not at all (a savepoint when already in one)."""
    try:
        with db.atomic():
            yield
    except sqlite3.Error as exc:
        raise DatabaseError(str(exc)) from exc


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[None]:
    """A transaction that takes the write lock first (BEGIN IMMEDIATE).

    A deferred transaction that reads and then writes while another process
    writes gets "database is locked" at once, without busy_timeout's wait;
    taking the lock first waits like every other command.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.rollback()
        raise
    db.execute("COMMIT")


@contextlib.contextmanager
def busy_timeout(db: Database, milliseconds: int) -> Iterator[None]:
    """Inside the block, statements on ``db`` wait at most ``milliseconds`` for another writer."""
    try:
        before = int(db.execute("PRAGMA busy_timeout").fetchone()[0])
        db.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
    except sqlite3.Error as exc:
        raise DatabaseError(str(exc)) from exc
    try:
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute(f"PRAGMA busy_timeout = {before}")


@contextlib.contextmanager
def opened(path: Path, *, snapshot: bool = False) -> Iterator[Database]:
    """The database at ``path`` (with ``snapshot``, for a dry run: nothing committed) for one command, closed after."""
    from digest.store.dryrun import open_snapshot  # dryrun.py builds on this module

    db = open_snapshot(path) if snapshot else open_db(path)
    try:
        yield db
    finally:
        db.close()


def one_row(db: Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    return next(iter(db.query(sql, params)), None)
