"""`digest subscribers add/remove/list/export`: every command and its error paths."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SmtpServer, run_cli
from test_web_signup import confirm_path, serve


def statuses(environ: dict[str, str]) -> dict[str, str]:
    conn = sqlite3.connect(environ["DIGEST_DB"])
    try:
        return dict(conn.execute("SELECT email, status FROM subscribers").fetchall())
    finally:
        conn.close()


def test_add_normalises_and_a_second_add_is_a_no_op(env: dict[str, str]) -> None:
    first = run_cli(["subscribers", "add", "  Ada@Example.COM ", "--name", "Ada"], env)
    again = run_cli(["subscribers", "add", "ada@example.com"], env)

    assert first.exit_code == 0 and first.stdout == "Added ada@example.com\n"
    assert again.exit_code == 0 and again.stdout == "Already subscribed (nothing changed): ada@example.com\n"
    assert statuses(env) == {"ada@example.com": "active"}


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("not-an-address", "An email address must have an @-sign."),
        ("a@b@example.com", "The part after the @-sign contains invalid characters: '@'."),
        ("someone@localhost", "The part after the @-sign is not valid. It should have a period."),
    ],
)
def test_add_rejects_invalid_addresses_in_one_line(env: dict[str, str], address: str, reason: str) -> None:
    result = run_cli(["subscribers", "add", address], env)

    assert result.exit_code == 2
    assert result.stderr == f"Error: invalid email address {address!r}: {reason}\n"


def test_an_unsubscribed_address_comes_back_only_by_confirming(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    env = smtp_env
    run_cli(["subscribers", "add", "ada@example.com"], env)
    run_cli(["subscribers", "remove", "ada@example.com"], env)

    refused = run_cli(["subscribers", "add", "ada@example.com"], env)
    assert refused.exit_code == 2 and "--resubscribe" in refused.stderr
    assert statuses(env) == {"ada@example.com": "unsubscribed"} and smtp_server.received == []

    asked = run_cli(["subscribers", "add", "ada@example.com", "--resubscribe"], env)
    assert asked.exit_code == 0, asked.output
    assert asked.stdout.startswith("Mailed a confirmation link to ada@example.com")
    assert statuses(env) == {"ada@example.com": "unsubscribed"}  # not until they confirm
    target = confirm_path(smtp_server, "ada@example.com")
    for site in serve(env):
        assert site.request("POST", target, {}).status == 200
    assert statuses(env) == {"ada@example.com": "active"}


def test_resubscribe_refuses_a_bounced_address_and_a_send_failure_is_one_line(env: dict[str, str]) -> None:
    run_cli(["subscribers", "add", "ada@example.com"], env)
    run_cli(["subscribers", "add", "bob@example.com"], env)
    conn = sqlite3.connect(env["DIGEST_DB"])
    conn.execute("UPDATE subscribers SET status = 'bounced', unsubscribe_reason = 'bounce' WHERE email LIKE 'ada%'")
    conn.commit()
    conn.close()
    bounced = run_cli(["subscribers", "add", "ada@example.com", "--resubscribe"], env)
    assert bounced.exit_code == 2 and "reactivate" in bounced.stderr

    run_cli(["subscribers", "remove", "bob@example.com"], env)
    unsent = run_cli(["subscribers", "add", "bob@example.com", "--resubscribe"], env)  # SMTP_PORT=9: nobody there
    assert unsent.exit_code == 1 and unsent.stderr.startswith("Error: ") and unsent.stderr.count("\n") == 1
    assert statuses(env) == {"ada@example.com": "bounced", "bob@example.com": "unsubscribed"}


def test_remove_keeps_the_record_and_is_idempotent(env: dict[str, str]) -> None:
    run_cli(["subscribers", "add", "ada@example.com"], env)

    first = run_cli(["subscribers", "remove", "ADA@example.com"], env)
    second = run_cli(["subscribers", "remove", "ada@example.com"], env)

    assert first.stdout == "Unsubscribed ada@example.com\n"
    assert second.exit_code == 0 and second.stdout == "Already unsubscribed (nothing changed): ada@example.com\n"
    assert statuses(env) == {"ada@example.com": "unsubscribed"}


def test_remove_unknown_address_is_an_input_error(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "remove", "nobody@example.com"], env)

    assert result.exit_code == 2
    assert result.stderr == "Error: no subscriber nobody@example.com\n"


def test_purge_erases_the_subscriber_and_their_deliveries(env: dict[str, str]) -> None:
    run_cli(["subscribers", "add", "ada@example.com"], env)
    run_cli(["subscribers", "add", "bob@example.com"], env)
    conn = sqlite3.connect(env["DIGEST_DB"], isolation_level=None)
    conn.execute(
        "INSERT INTO digests (created, subject, html, text, entry_count) VALUES ('2026-01-01', 's', '', '', 0)"
    )
    for subscriber_id in (1, 2):
        conn.execute("INSERT INTO deliveries (digest_id, subscriber_id, status) VALUES (1, ?, 'sent')", [subscriber_id])

    result = run_cli(["subscribers", "remove", "ada@example.com", "--purge"], env)

    assert result.exit_code == 0
    assert result.stdout.startswith("Purged ada@example.com: deleted the subscriber and 1 delivery record(s).")
    assert statuses(env) == {"bob@example.com": "active"}
    assert conn.execute("SELECT subscriber_id FROM deliveries").fetchall() == [(2,)]
    assert conn.execute("SELECT COUNT(*) FROM subscribers WHERE email LIKE 'ada%'").fetchone() == (0,)
    conn.close()


@pytest.fixture
def listed(env: dict[str, str]) -> dict[str, str]:
    run_cli(["subscribers", "add", "ada@example.com", "--name", "Ada Lovelace"], env)
    run_cli(["subscribers", "add", "bob@example.com"], env)
    run_cli(["subscribers", "add", "eve@example.com", "--name", 'Eve "E", Esq.'], env)
    run_cli(["subscribers", "remove", "bob@example.com"], env)
    return env


def test_list_defaults_to_csv_when_not_a_terminal(listed: dict[str, str]) -> None:
    result = run_cli(["subscribers", "list"], listed)

    assert result.exit_code == 0
    parsed = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["email"] for r in parsed] == ["ada@example.com", "eve@example.com"]
    assert parsed[1]["name"] == 'Eve "E", Esq.'
    assert list(parsed[0]) == ["email", "name", "status", "created", "updated", "source", "confirmed"]


def test_list_json_all_statuses(listed: dict[str, str]) -> None:
    result = run_cli(["subscribers", "list", "--status", "all", "--format", "json"], listed)

    assert result.exit_code == 0
    parsed = json.loads(result.stdout)
    assert [(r["email"], r["status"]) for r in parsed] == [
        ("ada@example.com", "active"), ("bob@example.com", "unsubscribed"), ("eve@example.com", "active"),
    ]  # fmt: skip
    assert json.loads(run_cli(["subscribers", "list", "--status", "bounced", "--format", "json"], listed).stdout) == []


def test_list_table_has_aligned_columns_and_counts(listed: dict[str, str]) -> None:
    result = run_cli(["subscribers", "list", "--format", "table", "--status", "unsubscribed"], listed)

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["EMAIL", "NAME", "STATUS", "SINCE"]
    assert lines[1].startswith("bob@example.com  ") and "unsubscribed" in lines[1]
    assert lines[-1] == "1 listed. Total: 2 active, 0 pending, 1 unsubscribed, 0 bounced"


def test_list_rejects_unknown_status_and_format(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "list", "--status", "gone"], env)
    assert result.exit_code == 2 and "Invalid value for '--status'" in result.stderr
    result = run_cli(["subscribers", "list", "--format", "xml"], env)
    assert result.exit_code == 2 and "Invalid value for '--format'" in result.stderr


def test_export_to_stdout_and_file(listed: dict[str, str], tmp_path: Path) -> None:
    to_stdout = run_cli(["subscribers", "export"], listed)
    target = tmp_path / "out.csv"
    to_file = run_cli(["subscribers", "export", str(target)], listed)

    assert to_stdout.exit_code == 0 and to_file.exit_code == 0
    assert to_file.stderr == f"Exported 3 subscriber(s) to {target}\n"
    assert target.read_bytes().decode("utf-8") == to_stdout.stdout.replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    parsed = list(csv.DictReader(io.StringIO(to_stdout.stdout)))
    assert {r["email"]: r["status"] for r in parsed} == {
        "ada@example.com": "active", "bob@example.com": "unsubscribed", "eve@example.com": "active",
    }  # fmt: skip
    assert all(r["created"] and r["source"] == "cli" for r in parsed)
    assert not list(tmp_path.glob("*.partial"))


def test_export_to_unwritable_place_is_one_line(listed: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "out.csv"

    result = run_cli(["subscribers", "export", str(target)], listed)

    assert result.exit_code == 2
    assert result.stderr == f"Error: cannot write {target}: No such file or directory\n"


def test_every_subcommand_has_help_naming_its_arguments(env: dict[str, str]) -> None:
    expected = {
        "add": "Usage: digest subscribers add [OPTIONS] EMAIL",
        "remove": "Usage: digest subscribers remove [OPTIONS] EMAIL",
        "list": "Usage: digest subscribers list [OPTIONS]",
        "import": "Usage: digest subscribers import [OPTIONS] FILE",
        "export": "Usage: digest subscribers export [OPTIONS] [FILE]",
    }
    for command, usage in expected.items():
        result = run_cli(["subscribers", command, "--help"], env)
        assert result.exit_code == 0
        assert result.stdout.startswith(usage), result.stdout
        summary = result.stdout.split("\n\n")[1].strip()
        assert summary and not summary.startswith("Options:"), f"{command} has no help text"


@pytest.mark.parametrize("args", [["add", "ada@example.com"], ["list"], ["export"], ["remove", "ada@example.com"],
                                  ["import", "whatever.csv"]])  # fmt: skip
def test_an_unusable_database_is_a_one_line_runtime_error(env: dict[str, str], tmp_path: Path, args: list[str]) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)

    result = run_cli(["subscribers", *args], {**env, "DIGEST_DB": str(broken)})

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot open database {broken}: ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_list_prints_a_table_on_a_terminal(listed: dict[str, str]) -> None:
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "digest", "subscribers", "list"],
            env={**os.environ, **listed}, stdout=terminal, stderr=subprocess.PIPE, timeout=60, check=False,
        )  # fmt: skip
        os.close(terminal)
        terminal = -1
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert process.returncode == 0, process.stderr
    lines = output.decode("utf-8").splitlines()
    assert lines[0].split() == ["EMAIL", "NAME", "STATUS", "SINCE"]
    assert lines[-1] == "2 listed. Total: 2 active, 0 pending, 1 unsubscribed, 0 bounced"


def test_a_name_in_bytes_the_terminal_cannot_decode_is_one_line_and_exit_2(env: dict[str, str]) -> None:
    # "Café" typed in a Latin-1 terminal reaches a UTF-8 locale's Python as a lone surrogate.
    argv: list[str | bytes] = [
        sys.executable,
        "-m",
        "digest",
        "subscribers",
        "add",
        "cafe@example.com",
        "--name",
        b"Caf\xe9",
    ]
    result = subprocess.run(argv, env={**os.environ, **env, "LC_ALL": "C.UTF-8"}, capture_output=True)

    assert result.returncode == 2
    assert result.stderr.decode() == (
        "Error: name 'Caf\\udce9': not valid text (bytes in another encoding than your terminal's?)\n"
    )
    assert not Path(env["DIGEST_DB"]).exists() or statuses(env) == {}
