"""One-click unsubscribes that could not wait for the database: a durable queue beside it.

When another process holds SQLite's write lock longer than the web app's busy
timeout (a big import in one transaction), the web app appends the
subscriber's token to ``<database>.unsubscribe-queue``, one line each, and
fsyncs it before answering; nothing is lost if the process dies right after.
Every send applies the queue (:func:`apply`) before choosing recipients, so an
unsubscribe that arrived during an import is honoured by the very next send.

A plain append-only file rather than a table: writing it needs no lock that
the import holds. Lines are appended under an exclusive flock so concurrent
requests never interleave; applying takes the same lock, applies every line
in one transaction, and empties the file only after that commits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

from sqlite_utils import Database

from digest import store

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def queue_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".unsubscribe-queue")


def append(db_path: Path, token: str) -> None:
    """Record ``token``'s unsubscribe durably (OSError when the file cannot be written)."""
    if not _TOKEN.fullmatch(token):
        raise ValueError("not a subscriber token")
    fd = os.open(queue_path(db_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, token.encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def pending(db_path: Path) -> list[str]:
    try:
        text = queue_path(db_path).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if _TOKEN.fullmatch(line)]


def apply(db: Database, db_path: Path) -> int:
    """Unsubscribe everyone in the queue, then empty it; the number of lines applied."""
    path = queue_path(db_path)
    if not path.exists():
        return 0
    with open(path, "r+", encoding="ascii", errors="replace") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        lines = [line.strip() for line in handle if _TOKEN.fullmatch(line.strip())]
        if lines:
            with store.write_transaction(db):
                for token in lines:
                    store.unsubscribe_token(db, token)
            log.info("applied %d queued one-click unsubscribe(s)", len(lines))
        handle.truncate(0)
        handle.flush()
        os.fsync(handle.fileno())
    return len(lines)
