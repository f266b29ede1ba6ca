"""`digest subscribers import`: real CSV exports in, one transaction, honest counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from helpers import FIXTURES, run_cli, subscriber_rows

CSV = FIXTURES / "csv"


def db_bytes(environ: dict[str, str]) -> bytes:
    path = Path(environ["DIGEST_DB"])
    return path.read_bytes() if path.exists() else b""


def test_mailchimp_export_imports_names_and_signup_times(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", str(CSV / "mailchimp_subscribed.csv")], env)

    assert result.exit_code == 0, result.output
    assert "Added: 3" in result.stdout
    assert "Invalid (see above): 0" in result.stdout
    stored = subscriber_rows(env)
    assert set(stored) == {"ada@example.com", "grace.hopper@example.org", "alan@example.net"}
    assert stored["ada@example.com"]["name"] == "Ada Lovelace"
    assert stored["ada@example.com"]["created"] == "2019-03-14T19:32:12+00:00"
    assert stored["alan@example.net"]["name"] == "Alan"
    assert all(r["status"] == "active" and r["source"] == "import:mailchimp_subscribed.csv" for r in stored.values())
    assert len({r["token"] for r in stored.values()}) == 3


def test_mailchimp_unsubscribed_export_is_recorded_and_never_resubscribes(env: dict[str, str]) -> None:
    assert run_cli(["subscribers", "import", str(CSV / "mailchimp_subscribed.csv")], env).exit_code == 0

    result = run_cli(["subscribers", "import", str(CSV / "mailchimp_unsubscribed.csv")], env)

    assert result.exit_code == 0, result.output
    assert "Recorded as unsubscribed/bounced (so they are never mailed): 1" in result.stdout
    # ada is active here but unsubscribed in the later export: her choice wins.
    assert "Unsubscribed (left or bounced in the file, active here): 1" in result.stdout
    stored = subscriber_rows(env)
    assert stored["left@example.com"]["status"] == "unsubscribed"
    assert stored["left@example.com"]["updated"] == "2022-02-02T12:00:00+00:00"  # UNSUB_TIME kept
    assert (stored["ada@example.com"]["status"], stored["ada@example.com"]["updated"]) == (
        "unsubscribed",
        "2023-05-05T05:05:05+00:00",
    )
    # A recorded unsubscribe blocks a later plain add.
    again = run_cli(["subscribers", "add", "left@example.com"], env)
    assert again.exit_code == 2
    assert again.stderr.strip() == (
        "Error: left@example.com is unsubscribed (they chose to leave; "
        "pass --resubscribe only with their renewed consent: it mails them a confirmation link)"
    )


def test_previously_unsubscribed_addresses_are_skipped_not_resubscribed(env: dict[str, str]) -> None:
    assert run_cli(["subscribers", "add", "ada@example.com"], env).exit_code == 0
    assert run_cli(["subscribers", "remove", "ada@example.com"], env).exit_code == 0

    result = run_cli(["subscribers", "import", str(CSV / "mailchimp_subscribed.csv")], env)

    assert result.exit_code == 0, result.output
    assert "Added: 2" in result.stdout
    assert "Skipped (unsubscribed or bounced here, not re-subscribed): 1" in result.stdout
    assert subscriber_rows(env)["ada@example.com"]["status"] == "unsubscribed"


def test_substack_export_honours_email_disabled(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", str(CSV / "substack.csv")], env)

    assert result.exit_code == 0, result.output
    stored = subscriber_rows(env)
    assert stored["reader@example.com"]["status"] == "active"
    assert stored["paid@example.com"]["status"] == "active"
    assert stored["quiet@example.com"]["status"] == "unsubscribed"
    assert stored["paid@example.com"]["created"] == "2022-01-15T08:30:00+00:00"


def test_buttondown_export_refuses_unconfirmed_rows(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", str(CSV / "buttondown.csv")], env)

    assert result.exit_code == 0, result.output
    assert (
        f"{CSV / 'buttondown.csv'}: line 4: three@example.com: status 'unactivated' is not a confirmed "
        "subscription; not imported"
    ) in result.stderr
    stored = subscriber_rows(env)
    assert stored["one@example.com"]["status"] == "active"
    assert stored["two@example.com"]["status"] == "unsubscribed"
    assert "three@example.com" not in stored


def test_listmonk_export_with_json_attributes(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", str(CSV / "listmonk.csv")], env)

    assert result.exit_code == 0, result.output
    stored = subscriber_rows(env)
    assert stored["lm1@example.com"]["name"] == "Listmonk One"
    assert stored["lm1@example.com"]["status"] == "active"
    assert stored["lm2@example.com"]["status"] == "unsubscribed"


def test_excel_bom_semicolon_crlf(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", str(CSV / "excel_semicolon_bom.csv")], env)

    assert result.exit_code == 0, result.output
    assert "delimiter ';'" in result.stdout
    assert "email='E-mail'" in result.stdout  # the BOM did not stick to the first header
    stored = subscriber_rows(env)
    assert stored["zoë@example.com"]["name"] == "Zoë Ästrom"
    assert stored["semi@example.com"]["name"] == "Semi; Colon"


def test_utf16_tab_separated(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", str(CSV / "utf16.csv")], env)

    assert result.exit_code == 0, result.output
    assert subscriber_rows(env)["utf16@example.com"]["name"] == "Ünal Ünlü"


def test_headerless_list_of_addresses(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", str(CSV / "headerless.csv")], env)

    assert result.exit_code == 0, result.output
    stored = subscriber_rows(env)
    assert stored["plain@example.com"]["name"] == "Plain Person"
    assert stored["second@example.com"]["name"] is None


def test_bad_rows_are_reported_by_line_and_good_rows_imported_once(env: dict[str, str]) -> None:
    path = CSV / "bad_rows.csv"

    result = run_cli(["subscribers", "import", str(path)], env)

    assert result.exit_code == 0, result.output
    problems = result.stderr.splitlines()
    assert [p.split(": ", 2)[1] for p in problems] == ["line 3", "line 4", "line 6", "line 8", "line 9"]
    assert (
        problems[0] == f"{path}: line 3: invalid email address 'not-an-address': An email address must have an @-sign."
    )
    assert problems[1] == f"{path}: line 4: no email address"
    assert "special-use or reserved name" in problems[3]
    assert "Added: 3" in result.stdout
    assert "Duplicates within the file (counted once): 1" in result.stdout
    assert "Invalid (see above): 5" in result.stdout
    stored = subscriber_rows(env)
    assert set(stored) == {"good1@example.com", "good2@example.com", "good3@example.com"}
    assert stored["good1@example.com"]["name"] == "Good One"  # the first occurrence wins
    assert stored["good3@example.com"]["name"] == "Carriage Return"  # no CR/LF stored


def test_strict_imports_nothing_when_any_row_is_bad(env: dict[str, str]) -> None:
    assert run_cli(["subscribers", "add", "keep@example.com"], env).exit_code == 0
    before = db_bytes(env)

    result = run_cli(["subscribers", "import", "--strict", str(CSV / "bad_rows.csv")], env)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: {CSV / 'bad_rows.csv'}: 5 invalid row(s); nothing was imported (--strict)"
    )
    assert set(subscriber_rows(env)) == {"keep@example.com"}
    assert db_bytes(env) == before


def test_dry_run_changes_nothing(env: dict[str, str]) -> None:
    assert run_cli(["subscribers", "add", "ada@example.com"], env).exit_code == 0
    before = db_bytes(env)

    result = run_cli(["subscribers", "import", "--dry-run", str(CSV / "mailchimp_subscribed.csv")], env)

    assert result.exit_code == 0, result.output
    assert "Would add: 2" in result.stdout
    assert "Already present: 1" in result.stdout
    assert "Dry run: nothing was imported." in result.stdout
    assert db_bytes(env) == before


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("no_email_column.csv", "no email column in the header row (found 'name', 'city') "
                                "(name the column 'email' or 'Email Address')"),
        ("cp1252.csv", "line 2: not valid utf-8-sig text (save it as 'CSV UTF-8', or pass --encoding, "
                       "e.g. --encoding cp1252)"),
        ("broken_quote.csv", "line 3: unexpected end of data"),
    ],
)  # fmt: skip
def test_unusable_files_import_nothing_and_exit_2(env: dict[str, str], fixture: str, message: str) -> None:
    assert run_cli(["subscribers", "add", "keep@example.com"], env).exit_code == 0
    before = db_bytes(env)

    result = run_cli(["subscribers", "import", str(CSV / fixture)], env)

    assert result.exit_code == 2
    assert result.stderr == f"Error: {CSV / fixture}: {message}\n"
    assert db_bytes(env) == before


def test_encoding_option_reads_legacy_excel_files(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "import", "--encoding", "cp1252", str(CSV / "cp1252.csv")], env)

    assert result.exit_code == 0, result.output
    assert subscriber_rows(env)["cafe@example.com"]["name"] == "Café Owner"


def test_missing_file_and_unknown_encoding(env: dict[str, str], tmp_path: Path) -> None:
    missing = run_cli(["subscribers", "import", str(tmp_path / "nope.csv")], env)
    assert missing.exit_code == 2
    assert missing.stderr == f"Error: cannot read {tmp_path / 'nope.csv'}: No such file or directory\n"

    unknown = run_cli(["subscribers", "import", "--encoding", "klingon", str(CSV / "headerless.csv")], env)
    assert unknown.exit_code == 2
    assert unknown.stderr == "Error: --encoding: unknown encoding 'klingon'\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_an_encoding_that_wants_a_bom_the_file_lacks_is_one_line(env: dict[str, str], encoding: str) -> None:
    # These codecs raise UnicodeError itself, not UnicodeDecodeError, when the BOM is missing.
    result = run_cli(["subscribers", "import", "--encoding", encoding, str(CSV / "headerless.csv")], env)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {CSV / 'headerless.csv'}: line 1: not valid {encoding} text")
    assert subscriber_rows(env) == {}


def test_a_busy_database_imports_nothing_and_exits_1(env: dict[str, str]) -> None:
    assert run_cli(["subscribers", "add", "keep@example.com"], env).exit_code == 0
    blocker = sqlite3.connect(env["DIGEST_DB"], isolation_level=None, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for the whole import
    try:
        from digest import csvimport, store
        from digest.errors import StoreError

        db = store.open_db(Path(env["DIGEST_DB"]))
        db.execute("PRAGMA busy_timeout = 0")  # fail at once instead of waiting 10 s
        try:
            with pytest.raises(StoreError, match="nothing was imported"):
                csvimport.import_csv(db, CSV / "mailchimp_subscribed.csv")
        finally:
            db.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert set(subscriber_rows(env)) == {"keep@example.com"}


def test_export_then_import_round_trips_every_status(env: dict[str, str], tmp_path: Path) -> None:
    for args in (["add", "ada@example.com", "--name", 'Ada "Countess" Lovelace, FRS'],
                 ["add", "bob@example.com"], ["add", "eve@example.com"], ["remove", "eve@example.com"]):  # fmt: skip
        assert run_cli(["subscribers", *args], env).exit_code == 0
    export = tmp_path / "export.csv"
    assert run_cli(["subscribers", "export", str(export)], env).exit_code == 0
    other = {**env, "DIGEST_DB": str(tmp_path / "other.db")}

    result = run_cli(["subscribers", "import", str(export)], other)

    assert result.exit_code == 0, result.output
    original, copy = subscriber_rows(env), subscriber_rows(other)
    for email in original:
        for column in ("name", "status", "created"):
            assert copy[email][column] == original[email][column], (email, column)


def test_an_address_that_signed_up_here_and_has_not_confirmed_stays_pending(env: dict[str, str]) -> None:
    from datetime import UTC, datetime

    from digest import store
    from digest.store import signups

    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        signups.request_signup(db, "ada@example.com", "Ada", datetime(2026, 11, 1, tzinfo=UTC))
    finally:
        db.close()

    result = run_cli(["subscribers", "import", str(CSV / "mailchimp_subscribed.csv")], env)

    assert result.exit_code == 0, result.output
    assert "Left pending (signed up here, not confirmed yet; only they can confirm): 1" in result.stdout
    assert "Skipped (unsubscribed or bounced here, not re-subscribed): 0" in result.stdout
    assert subscriber_rows(env)["ada@example.com"]["status"] == "pending"
