"""DIGEST_SCHEDULE parsing and the daemon's time decisions, with injected clocks (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest import store
from digest.daemon_watch import LAST_SEND_RUN, last_send_reference
from digest.schedule import next_fire_time, parse_schedule, should_catch_up

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- parse_schedule ----------------------------------------------------------------


def test_cron_schedule_fires_at_its_slots_in_the_given_time_zone() -> None:
    trigger = parse_schedule("0 8 * * mon", "Europe/Paris")
    fire = next_fire_time(trigger, NOW)
    assert fire is not None
    assert fire.astimezone(UTC) == at("2026-11-23T07:00:00")  # 08:00 in Paris is 07:00 UTC in winter


def test_interval_schedule_accepts_every_with_a_duration() -> None:
    trigger = parse_schedule("every 6h", "UTC")
    first = next_fire_time(trigger, NOW - timedelta(days=1))
    assert first is not None
    second = next_fire_time(trigger, first)
    assert second is not None and second - first == timedelta(hours=6)


@pytest.mark.parametrize("expr", ["0 8 * *", "every", "every soon", "61 8 * * *", "0 8 * * funday", "weekly"])
def test_malformed_schedule_is_a_readable_value_error(expr: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_schedule(expr, "UTC")


# --- should_catch_up ---------------------------------------------------------------------


DAILY = parse_schedule("30 4 * * *", "UTC")


def test_catch_up_when_a_slot_passed_since_the_last_send() -> None:
    assert should_catch_up(DAILY, last_send=NOW - timedelta(days=3), now=NOW)


def test_no_catch_up_when_the_last_send_followed_the_last_slot() -> None:
    assert not should_catch_up(DAILY, last_send=at("2026-11-21T04:30:05"), now=NOW)


def test_catch_up_boundary_is_the_slot_itself() -> None:
    last = at("2026-11-20T04:31:00")
    assert not should_catch_up(DAILY, last, now=at("2026-11-21T04:29:59"))
    assert should_catch_up(DAILY, last, now=at("2026-11-21T04:30:00"))


def test_brand_new_database_never_catches_up() -> None:
    assert not should_catch_up(DAILY, last_send=None, now=NOW)


def test_catch_up_follows_the_schedule_time_zone() -> None:
    monday_paris = parse_schedule("0 8 * * mon", "Europe/Paris")  # 07:00 UTC on 2026-11-23
    last = at("2026-11-16T07:00:01")  # just after the previous Monday's slot
    assert not should_catch_up(monday_paris, last, now=at("2026-11-23T06:59:59"))
    assert should_catch_up(monday_paris, last, now=at("2026-11-23T07:00:00"))


def test_interval_schedule_catches_up_when_an_interval_passed_since_the_last_send() -> None:
    every_6h = parse_schedule("every 6h", "UTC")
    assert should_catch_up(every_6h, last_send=NOW - timedelta(hours=7), now=NOW)
    assert not should_catch_up(every_6h, last_send=NOW - timedelta(hours=5), now=NOW)


# --- what counts as the last send ----------------------------------------------------------


def test_last_send_is_the_latest_of_digest_rows_and_recorded_scheduled_runs(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "digest.db")
    try:
        assert last_send_reference(db) is None
        db.execute(
            "INSERT INTO digests (created, subject, status, html, text, entry_count, finished_at)"
            " VALUES (?, 's', 'sent', '', '', 0, ?)",
            ["2026-11-10T08:00:00+00:00", "2026-11-10T09:15:00+00:00"],
        )
        assert last_send_reference(db) == at("2026-11-10T09:15:00")
        # A scheduled send that found nothing new leaves no digest row, only this record.
        store.set_state(db, LAST_SEND_RUN, "2026-11-17T08:00:00+00:00")
        assert last_send_reference(db) == at("2026-11-17T08:00:00")
    finally:
        db.close()
