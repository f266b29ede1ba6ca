"""Invariant 1: a dry run renders what send would send and changes nothing."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from helpers import SmtpServer, add_subscribers, run_cli


def test_dry_run_leaves_database_byte_identical_and_sends_nothing(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    add_subscribers(smtp_env, "ada@example.com", "grace@example.net")
    db = Path(smtp_env["DIGEST_DB"])
    before = db.read_bytes()
    out = tmp_path / "preview"

    result = run_cli(["send", "--dry-run", "--output", str(out)], smtp_env)

    assert result.exit_code == 0, result.output
    assert db.read_bytes() == before
    assert smtp_server.received == []
    assert "Recipients: 2" in result.output
    assert "Entries: 3" in result.output
    assert "under Gmail" in result.output
    for name in ("digest.html", "digest.txt", "digest.eml"):
        assert (out / name).stat().st_size > 0
    message = email.message_from_bytes((out / "digest.eml").read_bytes(), policy=email.policy.default)
    assert message["To"] == "ada@example.com"


def test_dry_run_shows_exactly_what_send_then_sends(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    out = tmp_path / "preview"
    assert run_cli(["send", "--dry-run", "--output", str(out)], smtp_env).exit_code == 0
    preview = email.message_from_bytes((out / "digest.eml").read_bytes(), policy=email.policy.default)

    assert run_cli(["send"], smtp_env).exit_code == 0

    (received,) = smtp_server.received
    assert received.message["Subject"] == preview["Subject"]
    assert received.part("html") == preview.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert received.part("plain") == preview.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_dry_run_without_a_database_creates_none(env: dict[str, str]) -> None:
    result = run_cli(["send", "--dry-run"], env)

    assert result.exit_code == 0, result.output
    assert not Path(env["DIGEST_DB"]).exists()
    assert "Preview:" in result.output
