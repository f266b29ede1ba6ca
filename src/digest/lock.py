"""The single-sender lock: one sending process per database (invariant 7).

An exclusive ``flock`` on ``<db>.lock`` beside the database. The kernel drops
it when the holder exits or is killed, so a stale file never blocks anyone;
the file's text (pid, host, start time) only serves the error message and
``digest status``, which probes the lock with :func:`lock_holder`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from digest.errors import LockHeldError, StoreError


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


@contextmanager
def sender_lock(db_path: Path, purpose: str = "send") -> Iterator[None]:
    path = lock_path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise StoreError(f"cannot create lock file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockHeldError(
                f"{db_path} is in use by {holder}",
                hint="only one digest process may send from a database at a time",
            ) from None
        started = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"digest {purpose} (pid {os.getpid()} on {socket.gethostname()}, since {started})")
            handle.flush()
        except OSError as exc:
            hint = "the disk is full: free some space, then run it again" if exc.errno == errno.ENOSPC else None
            raise StoreError(f"cannot write lock file {path}: {exc.strerror}", hint=hint) from None
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def lock_holder(db_path: Path) -> str | None:
    """Who holds the sender lock right now (e.g. a running daemon), or None.

    Probes with a shared lock taken and dropped at once; the lock file's text
    alone could be left over from a process killed with -9.
    """
    path = lock_path(db_path)
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
