"""Every error digest raises on purpose, each with a hint for the user.

The tree::

    DigestError                 base; ``exit_code`` 1 (runtime failure)
    ├── ConfigError             bad or missing setting, bad CLI input; exit 2
    │   └── InputError          bad user-supplied data (an address, a CSV); exit 2
    ├── FeedError               a feed could not be fetched or is not a feed
    ├── StoreError              the database is unusable (locked, corrupt, newer schema)
    │   └── LockHeldError       another process holds the single-sender lock
    ├── RenderError             a template failed to render
    └── SendError               SMTP failed (connection, auth, policy)

The CLI turns any DigestError into one ``Error: ...`` line and its exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re

# A quoted value longer than this is shortened in a message: the line stays one readable line.
_LONG_QUOTED = re.compile(r"'([^'\n]{60})[^'\n]{20,}'")


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


class StoreError(DigestError):
    """The SQLite database cannot be used."""


class LockHeldError(StoreError):
    """Another digest process is sending from the same database."""


class RenderError(DigestError):
    """A template could not be rendered."""


class SendError(DigestError):
    """The SMTP transport failed in a way that stops the run."""
