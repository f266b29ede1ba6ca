"""Durations and ``DIGEST_SCHEDULE``: parsed here, and only here.

A duration is ``90s``, ``30m``, ``6h``, ``1d`` (every ``*_INTERVAL``,
``*_TIMEOUT`` and ``DIGEST_RETRY_FOR`` key). A schedule is a 5-field crontab
(``0 8 * * mon``) or an interval (``every 6h``, ``every 30s``).

The configuration loader checks a schedule's form with :func:`check_schedule`
(no APScheduler import, which costs 50 ms); the commands that run on the
schedule (the daemon in daemon.py, ``digest status``) build the real trigger
with :func:`parse_schedule`, which applies the same form check and then what
only APScheduler can tell (an out-of-range field, a date that never comes).
It also holds the pure time decisions the daemon and ``digest status`` share
(was a send missed?) and how both write times and durations. It imports only
errors.py from digest, so config, the daemon and status can all use it
without a cycle.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from digest.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days)?\s*$")
# A table of units: one row per unit, which reads better than one name a line.
_UNIT_SECONDS = {
    None: 1, "s": 1, "sec": 1, "secs": 1,
    "m": 60, "min": 60, "mins": 60,
    "h": 3600, "hr": 3600, "hrs": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_MAX_SECONDS = 366 * 86400.0  # no interval or timeout needs more than a year
_EVERY = re.compile(r"^\s*every\s+(.+)$", re.IGNORECASE)
_CRON_FIELD = re.compile(r"[A-Za-z0-9*/,?#-]{1,64}")


def parse_duration(text: str) -> float:
    """``"30m"`` -> 1800.0; ValueError when malformed or not positive."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 6h, 1d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"must be more than zero, not {text!r}")
    if seconds > _MAX_SECONDS:
        raise ValueError(f"must be at most 366 days, not {text!r}")
    return seconds


def check_schedule(expr: str) -> float | None:
    """The schedule's form; the interval in seconds for ``every ...``, None for a crontab.

    ValueError with a readable message when malformed.
    """
    every = _EVERY.match(expr)
    if every:
        return parse_duration(every.group(1))
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected a 5-field cron expression or 'every <duration>', not {expr!r}")
    if not all(_CRON_FIELD.fullmatch(f) for f in fields):
        raise ValueError(f"invalid cron expression {expr!r}")
    return None


def parse_schedule(expr: str, timezone: str) -> BaseTrigger:
    """A trigger for ``expr``; ValueError with a readable message when malformed."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    seconds = check_schedule(expr)
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, timezone=timezone)
    try:
        trigger = CronTrigger.from_crontab(expr, timezone=timezone)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from None
    # A valid expression can still name a date that never comes (31 February):
    # a daemon on it would wait for ever without a word.
    if trigger.get_next_fire_time(None, datetime.now(trigger.timezone)) is None:
        raise ValueError(f"the cron expression {expr!r} never fires (no such date)")
    return trigger


def next_fire_time(trigger: BaseTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (an aware datetime)."""
    return trigger.get_next_fire_time(None, after + timedelta(microseconds=1))  # type: ignore[no-any-return]


def send_trigger(expr: str, timezone: str) -> BaseTrigger:
    """DIGEST_SCHEDULE's trigger; what only APScheduler can reject is a ConfigError here (exit 2)."""
    try:
        return parse_schedule(expr, timezone)
    except ValueError as exc:
        raise ConfigError(f"DIGEST_SCHEDULE: {exc}") from None


def should_catch_up(trigger: BaseTrigger, last_send: datetime | None, now: datetime) -> bool:
    """Whether the schedule had a send time in (last_send, now]: a send was missed.

    ``last_send`` None means a brand-new database that never sent: nothing was
    missed, and the first digest waits for the first scheduled time.
    """
    from apscheduler.triggers.interval import IntervalTrigger

    if last_send is None:
        return False
    if isinstance(trigger, IntervalTrigger):
        # An interval counts from the daemon's start, so measure from the last send.
        return bool(last_send + trigger.interval <= now)
    fire = next_fire_time(trigger, last_send)
    return fire is not None and fire <= now


def when_text(moment: datetime | None, zone: ZoneInfo) -> str:
    """A moment as the daemon's log and ``digest status`` write it, in DIGEST_TIMEZONE."""
    if moment is None:
        return "never"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def duration_text(seconds: float) -> str:
    """1800.0 -> ``30m``: the shortest exact unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
