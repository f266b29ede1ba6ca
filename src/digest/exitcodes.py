"""The exit codes of every command, in one table that scripts can rely on.

The README's "Exit codes" table is checked against :data:`TABLE` by
tests/test_exit_codes.py, so the two cannot drift apart.
"""

from __future__ import annotations

OK = 0
FAILURE = 1
USAGE = 2
DEFERRED = 75  # sysexits.h EX_TEMPFAIL: what an MTA says for "try again later"
INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C)
TERMINATED = 143  # 128 + SIGTERM (systemd, timeout, a cron wrapper)

TABLE: tuple[tuple[int, str], ...] = (
    (OK, "everything asked for happened (for `send`: every feed was read and every owed message was accepted)"),
    (
        FAILURE,
        "a runtime failure: a feed could not be read, a delivery failed for good, "
        "the digest did not go out, the SMTP server or the database failed",
    ),
    (USAGE, "a usage or configuration error: a bad option, a bad or missing setting, an unreadable input file"),
    (
        DEFERRED,
        "`send` only: nothing failed for good, but some recipients are deferred after temporary "
        "failures (4xx); the next `digest send` or the daemon retries them",
    ),
    (INTERRUPTED, "stopped by SIGINT (Ctrl-C): messages in flight were finished and recorded"),
    (TERMINATED, "stopped by SIGTERM: messages in flight were finished and recorded"),
)


def for_send(*, feeds_failed: int, failed: int, still_owed: int) -> int:
    """The exit code of a ``send`` run from its tallies (failure outranks deferral)."""
    if feeds_failed or failed:
        return FAILURE
    if still_owed:
        return DEFERRED
    return OK
