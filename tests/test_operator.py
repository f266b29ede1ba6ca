"""What digest tells its operator: exit codes, JSON, warnings about the configuration.

Exit codes are checked on a real subprocess (what cron and systemd see) as
well as through click, against a real aiosmtpd server and a real HTTP feed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from digest import exitcodes
from digest.config_warnings import sender_warnings, unknown_keys
from helpers import (
    FeedHost,
    FeedResource,
    RecordingHandler,
    SmtpServer,
    add_subscribers,
    run_cli,
    running_smtp,
    settings_from,
)

ROOT = Path(__file__).resolve().parents[1]


class Defers(RecordingHandler):
    """Answers 451 to every recipient whose address contains "grey"."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if "grey" in address:
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def deferring_smtp() -> Any:
    with running_smtp(Defers()) as server:
        yield server


def run_digest(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    child = {"PATH": "/usr/bin:/bin", **environ}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args], env=child, capture_output=True, text=True, timeout=120, check=False
    )


# --- exit codes ------------------------------------------------------------------------------


def test_send_exits_0_only_when_everything_went_out(smtp_env: dict[str, str]) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    done = run_digest(["send"], smtp_env)
    assert done.returncode == exitcodes.OK, done.stderr
    again = run_digest(["send"], smtp_env)
    assert again.returncode == exitcodes.OK and "Nothing new to send." in again.stdout


def test_a_feed_that_is_an_html_page_makes_send_fail(smtp_env: dict[str, str], feed_host: FeedHost) -> None:
    page = b"<!doctype html><html><head><title>Blog</title></head><body>hi</body></html>"
    feed_host.resources["/blog/"] = FeedResource(page, content_type="text/html")
    environ = {**smtp_env, "DIGEST_FEED_URL": feed_host.url("/blog/")}
    add_subscribers(environ, "ada@example.com")
    done = run_digest(["send"], environ)
    assert done.returncode == exitcodes.FAILURE
    assert "HTML page, not an RSS or Atom feed" in done.stderr
    assert "Error: not everything was sent: 1 feed(s) could not be read (exit 1)" in done.stderr
    dry = run_digest(["send", "--dry-run", "--output", str(Path(environ["DIGEST_DB"]).parent / "p")], environ)
    assert dry.returncode == exitcodes.FAILURE


def test_deferred_recipients_exit_75_and_are_kept_apart_from_failures(
    env: dict[str, str], deferring_smtp: SmtpServer
) -> None:
    environ = {**env, "SMTP_PORT": str(deferring_smtp.port), "DIGEST_SEND_ATTEMPTS": "1"}
    add_subscribers(environ, "ada@example.com", "grey@example.com")
    done = run_digest(["send"], environ)
    assert done.returncode == exitcodes.DEFERRED, done.stderr
    assert "1 sent, 0 failed, 1 deferred" in done.stdout
    assert "1 subscriber(s) still owed this digest (1 deferred after temporary failures)" in done.stdout
    status = run_cli(["status"], environ)
    assert "1 sent, 0 failed, 1 deferred" in status.output


def test_send_json_has_the_documented_shape(smtp_env: dict[str, str]) -> None:
    add_subscribers(smtp_env, "ada@example.com", "grace@example.com")
    result = run_cli(["send", "--json"], smtp_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"exit_code", "feeds", "digests"}
    assert data["exit_code"] == 0
    (digest,) = data["digests"]
    assert {k: digest[k] for k in ("sent", "failed", "deferred", "remaining", "finished")} == {
        "sent": 2, "failed": 0, "deferred": 0, "remaining": 0, "finished": True,
    }  # fmt: skip
    assert data["feeds"][0]["first_run"] is True


def test_dry_run_json_and_status_json(smtp_env: dict[str, str], tmp_path: Path) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    dry = json.loads(run_cli(["send", "--dry-run", "--json", "--output", str(tmp_path / "p")], smtp_env).stdout)
    assert dry["dry_run"] is True and dry["digest"]["recipients"] == 1 and len(dry["digest"]["entries"]) == 3
    assert Path(dry["digest"]["files"]["eml"]).is_file()
    run_cli(["send"], smtp_env)
    status = json.loads(run_cli(["status", "--json"], smtp_env).stdout)
    assert status["subscribers"]["active"] == 1 and status["pending_entries"] == 0
    (row,) = status["digests"]
    assert (row["status"], row["sent"], row["failed"], row["deferred"]) == ("sent", 1, 0, 0)


def test_readme_exit_code_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\d+)` \| (.+?) \|$", section, flags=re.MULTILINE)
    assert [(int(code), text) for code, text in rows] == list(exitcodes.TABLE)


# --- what the first run did ---------------------------------------------------------------------


def test_send_and_dry_run_say_what_the_first_run_marked_seen(smtp_env: dict[str, str], tmp_path: Path) -> None:
    environ = {**smtp_env, "DIGEST_FIRST_RUN": "latest:1"}
    add_subscribers(environ, "ada@example.com")
    dry = run_cli(["send", "--dry-run", "--output", str(tmp_path / "p")], environ)
    assert "first check: 3 older posts would be marked as already sent; DIGEST_FIRST_RUN=latest:1" in dry.output
    sent = run_cli(["send"], environ)
    assert "first check: 3 older posts were marked as already sent; DIGEST_FIRST_RUN=latest:1" in sent.output
    assert "marked as already sent" not in run_cli(["send"], environ).output


# --- configuration warnings ---------------------------------------------------------------------


def test_unknown_keys_get_a_did_you_mean(env: dict[str, str]) -> None:
    environ = {**env, "SMTP_HOTS": "mail.example.org", "DIGEST_SHEDULE": "0 9 * * *", "DIGEST_ZZZ": "1"}
    result = run_cli(["status"], environ)
    assert result.exit_code == 0
    assert "Warning: SMTP_HOTS: not a digest setting, ignored; did you mean SMTP_HOST?" in result.output
    assert "Warning: DIGEST_SHEDULE: not a digest setting, ignored; did you mean DIGEST_SCHEDULE?" in result.output
    assert "Warning: DIGEST_ZZZ: not a digest setting, ignored\n" in result.output


def test_unknown_keys_in_the_env_file_are_reported_too(env: dict[str, str], tmp_path: Path) -> None:
    env_file = tmp_path / "digest.env"
    env_file.write_text("SMTP_PASWORD=hunter2\n", encoding="utf-8")
    settings = settings_from(env)
    assert not settings.warnings
    from digest.config import load_settings

    warnings = load_settings(env_file, env).warnings
    assert warnings == ("SMTP_PASWORD: not a digest setting, ignored; did you mean SMTP_PASSWORD?",)
    assert "hunter2" not in " ".join(warnings)


def test_every_known_key_is_silent(env: dict[str, str]) -> None:
    example = (ROOT / "config.example.env").read_text(encoding="utf-8")
    keys = set(re.findall(r"^#?\s*((?:DIGEST|SMTP)_[A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert unknown_keys(keys, keys) == []
    assert len(keys) > 20


def test_free_mail_from_and_unaligned_dkim_warn() -> None:
    assert "free-mail provider" in sender_warnings("gmail.com", None)[0]
    assert sender_warnings("news.example.org", "example.org") == []
    assert sender_warnings("example.org", "mail.example.org") == []
    (warning,) = sender_warnings("example.org", "other.example")
    assert warning.startswith("DIGEST_DKIM_DOMAIN: other.example is not aligned with the From domain example.org")


def test_free_mail_from_warns_at_start_up(env: dict[str, str]) -> None:
    result = run_cli(["status"], {**env, "DIGEST_FROM": "Me <me@yahoo.co.uk>"})
    assert "Warning: DIGEST_FROM: yahoo.co.uk is a free-mail provider" in result.output


def test_a_schedule_that_never_fires_is_a_config_error(env: dict[str, str]) -> None:
    never = {**env, "DIGEST_SCHEDULE": "0 0 31 2 *"}
    for command in (["run"], ["status"]):
        assert run_cli(["check"], env).exit_code == 0  # a database, so status gets to the schedule
        result = run_cli(command, never)
        assert result.exit_code == exitcodes.USAGE, result.output
        assert "DIGEST_SCHEDULE: the cron expression '0 0 31 2 *' never fires" in result.output
    assert run_cli(["status"], {**env, "DIGEST_SCHEDULE": "0 0 29 2 *"}).exit_code == 0  # leap years
    assert run_cli(["status"], {**env, "DIGEST_SCHEDULE": "0 0 * *"}).exit_code == exitcodes.USAGE  # 4 fields


# --- test sends that test -----------------------------------------------------------------------


def test_send_to_resends_the_last_digest_when_nothing_is_due(smtp_env: dict[str, str], smtp_server: SmtpServer) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    assert run_cli(["send"], smtp_env).exit_code == 0
    result = run_cli(["send", "--to", "me@example.com"], smtp_env)
    assert result.exit_code == 0, result.output
    assert "Sent digest 1 again" in result.output
    assert smtp_server.received[-1].rcpt_tos == ["me@example.com"]
    assert smtp_server.received[-1].message["Subject"] == smtp_server.received[0].message["Subject"]
    # The copy is personalised like any other: no placeholder is left in it.
    resent = smtp_server.received[-1]
    assert "/unsubscribe?token=" in resent.part("html")
    assert "DIGESTUNSUBSCRIBEURL" not in resent.part("html") and "DIGESTRECIPIENT" not in resent.part("plain")
    by_number = run_cli(["send", "--to", "me@example.com", "--digest", "1"], smtp_env)
    assert by_number.exit_code == 0 and len(smtp_server.received) == 3
    missing = run_cli(["send", "--to", "me@example.com", "--digest", "7"], smtp_env)
    assert missing.exit_code == 2 and "--digest: no digest 7" in missing.output
    assert run_cli(["send", "--digest", "1"], smtp_env).exit_code == 2  # --digest goes with --to
    for number in ("0", "9" * 30):  # past SQLite's 64 bits it was an OverflowError traceback
        beyond = run_cli(["send", "--to", "me@example.com", "--digest", number], smtp_env)
        assert beyond.exit_code == 2 and "Invalid value for '--digest'" in beyond.output, beyond.output


def test_send_to_says_when_the_unsubscribe_link_is_a_placeholder(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    environ = {k: v for k, v in smtp_env.items() if k != "DIGEST_SECRET"}
    result = run_cli(["send", "--to", "me@example.com"], environ)
    assert result.exit_code == 0, result.output
    assert "its unsubscribe link is a placeholder that works for nobody (DIGEST_SECRET not set)" in result.output
    refused = run_cli(["send"], environ)
    assert refused.exit_code == 2 and "DIGEST_SECRET: not set" in refused.output
    assert len(smtp_server.received) == 1


def test_special_use_domains_need_the_setting(smtp_env: dict[str, str], smtp_server: SmtpServer) -> None:
    refused = run_cli(["subscribers", "add", "root@localhost"], smtp_env)
    assert refused.exit_code == 2
    allowed = {**smtp_env, "DIGEST_ALLOW_TEST_DOMAINS": "on"}
    for address in ("root@localhost", "Dev@Box.Test"):
        assert run_cli(["subscribers", "add", address], allowed).exit_code == 0
    assert run_cli(["subscribers", "add", "x@bad_host.test"], allowed).exit_code == 2
    assert run_cli(["send"], allowed).exit_code == 0
    assert sorted(smtp_server.handler.recipients()) == ["dev@box.test", "root@localhost"]
    assert run_cli(["send", "--to", "me@mail.test"], allowed).exit_code == 0
