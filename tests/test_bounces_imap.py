"""`digest bounces process --imap` against a real Dovecot started here, on loopback."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.wiring import wire
from helpers import add_subscribers, answering, free_port, run_cli

DOVECOT = Path("/usr/sbin/dovecot")
FIXTURES = Path(__file__).parent / "fixtures" / "bounces" / "new"
PASSWORD = "imap-secret-987"


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[int]:
    if not DOVECOT.exists():
        if os.environ.get("CI"):
            pytest.fail("dovecot is missing (.ci/run installs dovecot-imapd)")
        pytest.skip("dovecot is not installed")
    port = free_port()
    user = pwd.getpwuid(os.getuid()).pw_name
    internal = "dovecot" if os.getuid() == 0 else user
    login = "dovenull" if os.getuid() == 0 else user
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        # Dovecot never delivers as root: mail belongs to its own user, in a
        # folder it can reach (pytest's tmp_path is 0700 root).
        entry = pwd.getpwnam("dovecot")
        uid, gid = entry.pw_uid, entry.pw_gid
        scratch = Path(tempfile.mkdtemp(prefix="digest-dovecot-"))
        scratch.chmod(0o755)
        root = scratch
    else:
        scratch, root = None, tmp_path / "dovecot"
    (root / "run").mkdir(parents=True)
    (root / "mail").mkdir()
    os.chown(root / "mail", uid, gid)
    (root / "passwd").write_text(f"bounces:{{PLAIN}}{PASSWORD}::::::\n")
    (root / "dovecot.conf").write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:{root}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {user}
}}
service auth-worker {{
  user = {user}
}}
service imap-login {{
  chroot =
}}
""")
    (root / "state").mkdir()
    process = subprocess.Popen([str(DOVECOT), "-F", "-c", str(root / "dovecot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(200):  # wait until it listens (not a timed assertion: it fails only if it never does)
            if process.poll() is not None:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                pytest.fail(f"dovecot exited: {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def test_imap_moves_classified_mail_and_leaves_the_rest(env: dict[str, str], dovecot: int) -> None:
    client = imaplib.IMAP4("127.0.0.1", dovecot)
    client.login("bounces", PASSWORD)
    for name in ("1764500001.postfix.fixture", "1764500009.vacation.fixture", "1764500011.ordinary.fixture"):
        client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), (FIXTURES / name).read_bytes())
    client.logout()
    environ = {**env, "DIGEST_BOUNCE_IMAP_HOST": "127.0.0.1", "DIGEST_BOUNCE_IMAP_PORT": str(dovecot),
               "DIGEST_BOUNCE_IMAP_USER": "bounces", "DIGEST_BOUNCE_IMAP_PASSWORD": PASSWORD,
               "DIGEST_BOUNCE_IMAP_SECURITY": "none", "DIGEST_LOG_LEVEL": "DEBUG"}  # fmt: skip
    add_subscribers(environ, "alice@example.com", "ivan@example.com")

    result = run_cli(["bounces", "process", "--imap"], environ)

    assert result.exit_code == 0, result.output
    assert "alice@example.com: hard (score 1), now bounced" in result.output
    assert PASSWORD not in result.output
    client = imaplib.IMAP4("127.0.0.1", dovecot)
    client.login("bounces", PASSWORD)
    client.select("INBOX")
    _, inbox = client.search(None, "ALL")
    _, seen = client.search(None, "SEEN")
    assert len(inbox[0].split()) == 1 and seen == [b""]  # the ordinary mail, untouched (not even read)
    client.select("processed")
    _, processed = client.search(None, "ALL")
    assert len(processed[0].split()) == 2
    client.logout()

    again = run_cli(["bounces", "process", "--imap"], environ)
    assert "1 message(s)" in again.output and "0 subscriber(s) changed" in again.output


def test_imap_login_failure_is_one_line_without_the_password(env: dict[str, str], dovecot: int) -> None:
    environ = {**env, "DIGEST_BOUNCE_IMAP_HOST": "127.0.0.1", "DIGEST_BOUNCE_IMAP_PORT": str(dovecot),
               "DIGEST_BOUNCE_IMAP_USER": "bounces", "DIGEST_BOUNCE_IMAP_PASSWORD": "wrong-pass-123",
               "DIGEST_BOUNCE_IMAP_SECURITY": "none"}  # fmt: skip
    result = run_cli(["bounces", "process", "--imap"], environ)
    assert result.exit_code == 1
    assert f"Error: IMAP 127.0.0.1:{dovecot}: login failed for bounces" in result.output
    assert "wrong-pass-123" not in result.output


def test_the_daemon_polls_the_mailbox_when_imap_is_configured(env: dict[str, str], dovecot: int) -> None:
    from digest import store
    from digest.daemon import build_scheduler
    from digest.daemon_jobs import Daemon
    from helpers import settings_from

    environ = {**env, "DIGEST_BOUNCE_IMAP_HOST": "127.0.0.1", "DIGEST_BOUNCE_IMAP_PORT": str(dovecot),
               "DIGEST_BOUNCE_IMAP_USER": "bounces", "DIGEST_BOUNCE_IMAP_PASSWORD": PASSWORD,
               "DIGEST_BOUNCE_IMAP_SECURITY": "none", "DIGEST_BOUNCE_INTERVAL": "10m"}  # fmt: skip
    add_subscribers(environ, "frank@gmail.com")
    client = imaplib.IMAP4("127.0.0.1", dovecot)
    client.login("bounces", PASSWORD)
    client.append(
        "INBOX", "", imaplib.Time2Internaldate(time.time()), (FIXTURES / "1764500006.gmail.fixture").read_bytes()
    )
    client.logout()
    settings = settings_from(environ)
    db = store.open_db(settings.db_path)
    try:
        daemon = Daemon(wire(settings), db)
        scheduler = build_scheduler(daemon)
        job = scheduler.get_job("bounces")
        assert job is not None and job.trigger.interval.total_seconds() == 600
        daemon.bounce_job()
        status = db.execute("SELECT status FROM subscribers WHERE email = 'frank@gmail.com'").fetchone()[0]
        assert status == "bounced"
        assert build_scheduler(Daemon(wire(settings_from(env)), db)).get_job("bounces") is None  # no IMAP: no job
    finally:
        db.close()


def test_an_imap_server_s_words_in_an_error_are_shown_never_obeyed(env: dict[str, str]) -> None:
    # No Dovecot needed: a server that says BYE with escape sequences in its greeting.
    with answering(b"* BYE \x1b]0;owned\x07\x1b[2Jgo away\r\n", speaks_first=True) as port:
        environ = {**env, "DIGEST_BOUNCE_IMAP_HOST": "127.0.0.1", "DIGEST_BOUNCE_IMAP_PORT": str(port),
                   "DIGEST_BOUNCE_IMAP_USER": "bounces", "DIGEST_BOUNCE_IMAP_SECURITY": "none"}  # fmt: skip
        result = run_cli(["bounces", "process", "--imap"], environ)

    assert result.exit_code == 1
    assert "\\x1b]0;owned\\x07\\x1b[2Jgo away" in result.output
    assert not {"\x1b", "\x07"} & set(result.output)
