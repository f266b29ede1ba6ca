"""Bad input: one readable line, the documented exit code, no traceback."""

from __future__ import annotations

import json

import pytest

from helpers import add_subscribers, free_port, run_cli


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SMTP_PORT", "abc", "Error: SMTP_PORT: not a whole number: 'abc'"),
        ("SMTP_SECURITY", "tls", "Error: SMTP_SECURITY: must be starttls, ssl or none"),
        ("DIGEST_FROM", "not an address", "Error: DIGEST_FROM: not an email address"),
        ("DIGEST_FIRST_RUN", "newest", "Error: DIGEST_FIRST_RUN: must be latest:N, all or none"),
        ("DIGEST_SCHEDULE", "every day at 8", "Error: DIGEST_SCHEDULE:"),
        ("DIGEST_TIMEZONE", "Mars/Olympus", "Error: DIGEST_TIMEZONE: unknown time zone"),
    ],
)
def test_bad_config_value_is_one_line_and_exit_2(env: dict[str, str], key: str, value: str, expected: str) -> None:
    result = run_cli(["send", "--dry-run"], {**env, key: value})

    assert result.exit_code == 2
    assert result.output.startswith(expected)
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_removing_an_unknown_subscriber_is_exit_2(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "remove", "nobody@example.com"], env)

    assert result.exit_code == 2
    assert result.output == "Error: no subscriber nobody@example.com\n"


def test_adding_an_invalid_address_is_exit_2(env: dict[str, str]) -> None:
    result = run_cli(["subscribers", "add", "not-an-address"], env)

    assert result.exit_code == 2
    assert result.output.startswith("Error: invalid email address 'not-an-address'")
    assert result.output.count("\n") == 1


def test_unreachable_smtp_server_is_exit_1_and_keeps_the_digest(env: dict[str, str]) -> None:
    environ = {**env, "SMTP_PORT": str(free_port()), "DIGEST_SEND_ATTEMPTS": "1"}
    add_subscribers(environ, "ada@example.com")

    result = run_cli(["send"], environ)

    assert result.exit_code == 1
    assert result.output.startswith("Error: SMTP 127.0.0.1:")
    assert "cannot connect" in result.output
    assert "nothing is lost" in result.output
    status = json.loads(run_cli(["status", "--json"], environ).output)
    [digest] = status["digests"]  # kept, still owed to its one subscriber
    assert (digest["status"], digest["pending"], digest["sent"], digest["failed"]) == ("sending", 1, 0, 0)


def test_missing_env_file_is_exit_2(env: dict[str, str]) -> None:
    result = run_cli(["--env", "nope.env", "status"], env)

    assert result.exit_code == 2
    assert result.output == "Error: --env: no such file: nope.env\n"


def test_send_without_public_url_refuses(env: dict[str, str]) -> None:
    environ = dict(env)
    del environ["DIGEST_PUBLIC_URL"]

    result = run_cli(["send"], environ)

    assert result.exit_code == 2
    assert result.output.startswith("Error: DIGEST_PUBLIC_URL: not set")


def test_log_level_setting_applies_to_one_shot_commands(env: dict[str, str]) -> None:
    quiet = run_cli(["check"], env)
    loud = run_cli(["check"], {**env, "DIGEST_DB": env["DIGEST_DB"] + "-2", "DIGEST_LOG_LEVEL": "debug"})

    assert quiet.exit_code == loud.exit_code == 0
    assert " DEBUG " not in quiet.stderr
    assert " DEBUG digest.store: database migrated" in loud.stderr
