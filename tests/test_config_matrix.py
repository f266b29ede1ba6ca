"""Every config key against garbage values: never a traceback, one line naming the key, exit 2.

The keys come from load_settings itself (an environment that records what is
asked for), so a new key is covered without touching this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config import AskedEnvironment, load_settings
from digest.errors import ConfigError
from helpers import run_cli


def known_keys() -> list[str]:
    # The loader's own recorder, the one that finds unknown keys for the warnings.
    recording = AskedEnvironment({})
    load_settings(None, recording)
    return sorted(recording.asked)


KEYS = known_keys()
GARBAGE = {
    "empty": "",
    "huge": "9" * 400,
    "nan": "nan",
    "inf": "inf",
    "negative": "-1",
    "long": "x" * 5000,
    "non-ascii": "日本語 ü \u202e",
    "control": "a\x00b\x1b[31m\r\nc",
    "directory": "{dir}",
    "missing-file": "{dir}/missing/file",
    "unclosed-bracket": "http://[::1",  # urllib.parse raises on these two
    "bad-bracketed-host": "[::ffff:999.1.1.1]:25",
    "port-out-of-range": "https://host.example:99999/",
}


def garbage(tmp_path: Path) -> Iterator[tuple[str, str]]:
    for label, value in GARBAGE.items():
        yield label, value.replace("{dir}", str(tmp_path))


def test_load_settings_knows_the_keys_the_readme_documents() -> None:
    assert {"DIGEST_FEED_URL", "DIGEST_FROM", "SMTP_HOST", "DIGEST_SUBJECT"} <= set(KEYS)
    assert len(KEYS) >= 30


@pytest.mark.parametrize("key", KEYS)
def test_every_garbage_value_is_accepted_or_one_line_naming_the_key(
    key: str, env: dict[str, str], tmp_path: Path
) -> None:
    for label, value in garbage(tmp_path):
        try:
            load_settings(None, {**env, key: value})
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(("DIGEST_", "SMTP_")) and key in message, (label, message)
            assert "\n" not in message and "\r" not in message and len(message) < 400, (label, message)


# Values refused at load: every command says so in one line, exit 2.
REFUSED = [
    ("SMTP_PORT", "9" * 400),
    ("DIGEST_CHECK_INTERVAL", "inf"),
    ("SMTP_RATE", "nan"),
    ("DIGEST_EXCERPT_WORDS", "-1"),
    ("DIGEST_TIMEZONE", "x" * 5000),
    ("DIGEST_FROM", "日本語"),
    ("SMTP_HOST", "a\x01b\r\nc"),  # an environment cannot carry NUL
    ("DIGEST_PUBLIC_URL", "https://u:p@example.com/?q"),
]
COMMANDS = [["check"], ["send", "--dry-run"], ["send"], ["status"], ["serve"], ["run"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("key", "value"), REFUSED, ids=[k for k, _ in REFUSED])
def test_every_command_refuses_a_bad_value_in_one_line(
    command: list[str], key: str, value: str, smtp_env: dict[str, str]
) -> None:
    result = run_cli(command, {**smtp_env, key: value})

    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {key}: "), result.output


@pytest.mark.parametrize("command", COMMANDS[:4], ids=" ".join)
@pytest.mark.parametrize("key", KEYS)
def test_garbage_accepted_at_load_never_gives_a_traceback(
    command: list[str], key: str, smtp_env: dict[str, str], tmp_path: Path
) -> None:
    for label, value in garbage(tmp_path):
        environ = {**smtp_env, key: value.replace("\x00", "\x01")}  # an environment cannot carry NUL
        try:
            load_settings(None, environ)
        except ConfigError:
            continue  # covered above
        result = run_cli(command, environ)  # catch_exceptions=False: a traceback fails the test
        if result.exit_code != 0:
            lines = result.output.strip().splitlines()
            assert result.exit_code in (1, 2) and lines and lines[-1].startswith("Error: "), (label, result.output)
