"""Imports respect consent: each tool's status and date columns; an import never means more mail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import run_cli, subscriber_rows

CSV = Path(__file__).parent / "fixtures" / "csv"


def statuses(environ: dict[str, str]) -> dict[str, str]:
    return {email: row["status"] for email, row in subscriber_rows(environ).items()}


def imported(env: dict[str, str], name: str) -> Any:
    result = run_cli(["subscribers", "import", str(CSV / name)], env)
    assert result.exit_code == 0, result.output
    return result


def test_buttondown_type_column_old_and_new(env: dict[str, str]) -> None:
    imported(env, "buttondown.csv")
    imported(env, "buttondown_new.csv")
    assert statuses(env) == {"one@example.com": "active", "two@example.com": "unsubscribed",
                             "bd-new1@example.com": "active", "bd-new2@example.com": "unsubscribed"}  # fmt: skip
    assert subscriber_rows(env)["bd-new1@example.com"]["created"] == "2024-02-01T09:00:00+00:00"


def test_listmonk_go_dates_are_kept_and_an_unreadable_one_is_warned_with_its_line(env: dict[str, str]) -> None:
    result = imported(env, "listmonk_go_dates.csv")
    stored = subscriber_rows(env)
    assert stored["lmgo1@example.com"]["created"] == "2020-07-01T12:44:19+00:00"
    assert stored["lmgo2@example.com"]["created"] == "2021-03-05T08:00:00+00:00"
    assert f"{CSV / 'listmonk_go_dates.csv'}: warning: line 4: lmgo3@example.com: unreadable date 'last tuesday'" in (
        result.stderr
    )
    assert stored["lmgo3@example.com"]["status"] == "active"


def test_kit_and_ghost_states(env: dict[str, str]) -> None:
    imported(env, "kit.csv")
    imported(env, "ghost.csv")
    assert statuses(env) == {"kit1@example.com": "active", "kit2@example.com": "unsubscribed",
                             "kit3@example.com": "bounced", "kit4@example.com": "unsubscribed",
                             "ghost1@example.com": "active", "ghost2@example.com": "unsubscribed"}  # fmt: skip
    assert subscriber_rows(env)["kit4@example.com"]["unsubscribe_reason"] == "complaint"
    assert subscriber_rows(env)["kit1@example.com"]["created"] == "2022-05-06T07:08:09+00:00"


def test_a_later_cleaned_export_applies_and_an_import_never_resubscribes(env: dict[str, str]) -> None:
    imported(env, "kit.csv")
    imported(env, "ghost.csv")

    result = imported(env, "mailchimp_cleaned.csv")

    assert "Unsubscribed (left or bounced in the file, active here): 2" in result.stdout
    assert statuses(env)["kit1@example.com"] == "bounced"
    assert subscriber_rows(env)["ghost1@example.com"]["updated"] == "2024-09-10T10:10:10+00:00"  # CLEAN_TIME kept
    # Importing the original "active" files again changes nobody back.
    before = statuses(env)
    imported(env, "kit.csv")
    imported(env, "ghost.csv")
    assert statuses(env) == before
