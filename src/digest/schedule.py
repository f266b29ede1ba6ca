"""Parse DIGEST_SCHEDULE into an APScheduler 3.x trigger, and compute run times.

Accepted forms: a 5-field crontab (``0 8 * * mon``) or an interval
(``every 6h``, ``every 30s``). Kept apart from scheduler.py so config
validation and ``digest status`` can use it without starting a scheduler.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_EVERY = re.compile(r"^\s*every\s+(.+)$", re.IGNORECASE)


def parse_schedule(expr: str, timezone: str) -> BaseTrigger:
    """A trigger for ``expr``; ValueError with a readable message when malformed."""
    from digest.config import parse_duration

    match = _EVERY.match(expr)
    if match:
        seconds = parse_duration(match.group(1))
        return IntervalTrigger(seconds=seconds, timezone=timezone)
    if len(expr.split()) != 5:
        raise ValueError(f"expected a 5-field cron expression or 'every <duration>', not {expr!r}")
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


def previous_fire_time(trigger: BaseTrigger, now: datetime, since: datetime) -> datetime | None:
    """The last fire time in (since, now], or None; used for missed-send catch-up."""
    last = None
    fire = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return last
