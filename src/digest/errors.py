"""Every error digest raises on purpose, each with a hint for the user.

The tree::

    DigestError                 base; ``exit_code`` 1 (runtime failure)
    ├── ConfigError             bad or missing setting, bad CLI input; exit 2
    │   └── InputError          bad user-supplied data (an address, a CSV); exit 2
    ├── FeedError               a feed could not be fetched or is not a feed
    │   └── FetchError          the fetch failed; ``status`` is what feeds.last_status records
    ├── StoreError              the database is unusable (locked, corrupt, newer schema)
    │   ├── DatabaseError       SQLite failed mid-command (busy, full, damaged): its own error, wrapped
    │   └── LockHeldError       another process holds the single-sender lock
    ├── RenderError             a template failed to render
    └── SendError               SMTP failed (connection, auth, policy)

    Exception
    ├── ConnectFailure          mailer: an SMTP connection could not be made (a retry might work)
    ├── TemplateLimitError      sandbox: the subject template broke a limit (RenderError for the user)
    └── InvalidRequest          web: a bad token or body, answered with the neutral page

The CLI turns any DigestError into one ``Error: ...`` line and its exit code;
anything else is a bug and keeps its traceback. The three outside the
DigestError tree never reach the user: each is caught by the stage that
raises it and turned into an outcome (a retry, a RenderError, a web page).
"""

from __future__ import annotations

import re

# A quoted value longer than this is shortened in a message: the line stays one readable line.
_LONG_QUOTED = re.compile(r"'([^'\n]{60})[^'\n]{20,}'")


def shown(text: object, limit: int = 120) -> str:
    """Text from outside (a server's reply, a header) fit for a one-line message on a terminal.

    Every character that is not printable (controls, C1, bidi and zero-width
    formats: a terminal would obey an escape sequence) is written as its
    Python escape, and the text is cut at ``limit`` characters.
    """
    cleaned = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class DigestError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = _LONG_QUOTED.sub(lambda m: f"'{m.group(1)}...' (shortened)", message)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(DigestError):
    """A setting is missing or malformed; names the key."""

    exit_code = 2


class InputError(ConfigError):
    """User-supplied data (an address, a CSV row, a path) is invalid."""


class FeedError(DigestError):
    """A feed could not be fetched, or what came back is not a feed."""


class FetchError(FeedError):
    """The feed could not be fetched; ``status`` is what ``feeds.last_status`` records."""

    def __init__(self, message: str, *, status: str = "error", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status

    @property
    def gone(self) -> bool:
        return self.status == "410"


class StoreError(DigestError):
    """The SQLite database cannot be used."""


class DatabaseError(StoreError):
    """SQLite failed during a command; the store raises this in place of the driver's own error.

    ``detail`` is SQLite's message; the hint says what to do by its cause, since
    a damaged file is not fixed by running again.
    """

    def __init__(self, detail: str, *, path: object = None) -> None:
        super().__init__(f"database error: {detail}", hint=database_hint(detail, path))
        self.detail = detail

    @property
    def busy(self) -> bool:
        """Another connection held the lock past the busy timeout (waiting longer might work)."""
        return "locked" in self.detail.lower() or "busy" in self.detail.lower()


def database_hint(detail: str, path: object = None) -> str:
    """What to do about SQLite's error message ``detail`` (about the file at ``path``, when known)."""
    text = detail.lower()
    where = f" {path}" if path else ""
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return (
            f"the database file{where} is damaged; running again will not fix it: restore a backup, "
            "or move the file aside to start afresh (subscribers are lost unless exported)"
        )
    if "full" in text:
        return "the disk is full: free some space, then run it again (what was recorded is kept)"
    if "locked" in text or "busy" in text:
        return "another process is writing to the database; run it again when it has finished"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"check that the database{where} and its folder are writable by this user"
    return "what was already recorded is kept; run it again"


class LockHeldError(StoreError):
    """Another digest process is sending from the same database."""


class RenderError(DigestError):
    """A template could not be rendered."""


class SendError(DigestError):
    """The SMTP transport failed in a way that stops the run."""


class ConnectFailure(Exception):
    """An SMTP connection could not be made; a retry later might succeed."""


class TemplateLimitError(Exception):
    """The sandboxed subject template exceeded a limit or failed; the message is one line."""


class InvalidRequest(Exception):
    """Anything wrong with a web request's token or body: answered with the neutral page."""
