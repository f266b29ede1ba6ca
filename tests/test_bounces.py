"""Bounce and complaint processing: real MTA formats, scoring, idempotence, VERP end to end."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest import store, verp
from digest.bounces import classify
from helpers import SmtpServer, add_subscribers, run_cli
from test_web_signup import confirm_path, serve

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
SUBSCRIBERS = [
    "alice@example.com", "bob@example.net", "carol@example.edu", "dave@example.org", "erin@outlook.com",
    "frank@gmail.com", "grace@yahoo.com", "heidi@example.com", "ivan@example.com", "judy@example.com",
    "kate@example.com",
]  # fmt: skip

EXPECTED = {
    "postfix": ("bounce", "hard", "alice@example.com", "5.1.1"),
    "exim": ("bounce", "hard", "bob@example.net", "5.1.1"),
    "sendmail": ("bounce", "soft", "carol@example.edu", "5.2.2"),  # mailbox full
    "qmail": ("bounce", "hard", "dave@example.org", "5.1.1"),
    "outlook": ("bounce", "hard", "erin@outlook.com", "5.5.0"),
    "gmail": ("bounce", "hard", "frank@gmail.com", "5.1.1"),
    "yahoo": ("bounce", "hard", "grace@yahoo.com", "554"),
    "arf": ("complaint", "complaint", "heidi@example.com", None),
    "vacation": ("auto-reply", None, None, None),
    "autoreply": ("auto-reply", None, None, None),
    "ordinary": ("unrecognised", None, None, None),
}


def fixture(name: str) -> bytes:
    (path,) = (FIXTURES / "new").glob(f"*.{name}.fixture")
    return path.read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_format_is_classified(name: str) -> None:
    verdict, kind, address, code = EXPECTED[name]
    found = classify(fixture(name))
    assert found.verdict == verdict
    if kind is None:
        assert found.failures == ()
    else:
        assert [(f.kind, f.email, f.status_code) for f in found.failures] == [(kind, address, code)]


def maildir_copy(tmp_path: Path) -> Path:
    box = tmp_path / "Maildir"
    shutil.copytree(FIXTURES, box)
    for sub in ("cur", "tmp"):
        (box / sub).mkdir(exist_ok=True)
    return box


def rows(environ: dict[str, str]) -> dict[str, tuple[str, float, str | None]]:
    with sqlite3.connect(environ["DIGEST_DB"]) as conn:
        found = conn.execute("SELECT email, status, bounce_score, unsubscribe_reason FROM subscribers").fetchall()
    return {email: (status, score, reason) for email, status, score, reason in found}


def dump(environ: dict[str, str]) -> list[str]:
    with sqlite3.connect(environ["DIGEST_DB"]) as conn:
        return list(conn.iterdump())


def test_maildir_processing_marks_exactly_the_failed_subscribers(env: dict[str, str], tmp_path: Path) -> None:
    add_subscribers(env, *SUBSCRIBERS)
    box = maildir_copy(tmp_path)

    result = run_cli(["bounces", "process", "--maildir", str(box)], env)

    assert result.exit_code == 0, result.output
    assert "11 message(s): 7 bounce, 1 complaint, 2 auto-reply, 0 delayed, 1 unrecognised" in result.output
    bounced = {a: ("bounced", 1.0, "bounce") for a in SUBSCRIBERS[:7] if a != "carol@example.edu"}
    assert rows(env) == {
        **bounced,
        "carol@example.edu": ("active", 0.5, None),
        "heidi@example.com": ("unsubscribed", 0.0, "complaint"),
        "ivan@example.com": ("active", 0.0, None),
        "judy@example.com": ("active", 0.0, None),
        "kate@example.com": ("active", 0.0, None),
    }
    # The ordinary message is untouched where it was; the rest moved to .processed.
    assert sorted(p.name for p in (box / "new").iterdir()) == ["1764500011.ordinary.fixture"]
    assert (box / "new" / "1764500011.ordinary.fixture").read_bytes() == fixture("ordinary")
    processed = box / ".processed"
    assert len(list((processed / "new").iterdir()) + list((processed / "cur").iterdir())) == 10

    listing = run_cli(["bounces", "list", "--email", "alice@example.com"], env)
    assert listing.exit_code == 0 and "hard  5.1.1" in listing.output and "User unknown" in listing.output

    before = dump(env)
    again = run_cli(["bounces", "process", "--maildir", str(box)], env)
    assert again.exit_code == 0, again.output
    assert "1 message(s)" in again.output and "0 subscriber(s) changed" in again.output
    assert dump(env) == before


def test_mbox_twice_and_dry_run_change_nothing_more(env: dict[str, str], tmp_path: Path) -> None:
    add_subscribers(env, *SUBSCRIBERS)
    mbox = tmp_path / "bounces.mbox"
    mbox.write_bytes(b"".join(b"From MAILER-DAEMON Mon Nov 30 08:00:00 2026\n" + fixture(n) + b"\n"
                              for n in ("postfix", "sendmail", "ordinary")))  # fmt: skip
    original = mbox.read_bytes()
    db_before = dump(env)

    dry = run_cli(["bounces", "process", "--mbox", str(mbox), "--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    assert "alice@example.com: hard (score 1), would become bounced" in dry.output
    assert dump(env) == db_before and mbox.read_bytes() == original

    first = run_cli(["bounces", "process", "--mbox", str(mbox)], env)
    assert "2 subscriber(s) changed" not in first.output and "1 subscriber(s) changed" in first.output
    after = dump(env)
    second = run_cli(["bounces", "process", "--mbox", str(mbox)], env)
    assert "0 subscriber(s) changed" in second.output
    assert dump(env) == after and mbox.read_bytes() == original


def test_reactivate_undoes_a_bounce_and_a_complaint_only_by_confirming(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    env = smtp_env
    add_subscribers(env, *SUBSCRIBERS)
    run_cli(["bounces", "process", "--maildir", str(maildir_copy(tmp_path))], env)

    assert run_cli(["subscribers", "reactivate", "alice@example.com"], env).exit_code == 0
    assert rows(env)["alice@example.com"] == ("active", 0.0, None)  # a bounce is undone at once
    refused = run_cli(["subscribers", "reactivate", "heidi@example.com"], env)
    assert refused.exit_code == 2 and "Error: heidi@example.com reported the digest as spam" in refused.output
    assert rows(env)["heidi@example.com"][0] == "unsubscribed"
    forced = run_cli(["subscribers", "reactivate", "heidi@example.com", "--force"], env)
    assert forced.exit_code == 0 and forced.stdout.startswith("Mailed a confirmation link to heidi@example.com")
    assert rows(env)["heidi@example.com"][0] == "unsubscribed"  # a complaint: only her own confirmation undoes it
    target = confirm_path(smtp_server, "heidi@example.com")
    for site in serve(env):
        assert site.request("POST", target, {}).status == 200
    assert rows(env)["heidi@example.com"][0] == "active"
    assert [m.rcpt_tos for m in smtp_server.received] == [["heidi@example.com"]]  # one mail: the confirmation


def _apply(db: Any, kind: str, when: datetime, key: str, policy: store.BouncePolicy) -> store.AppliedBounce:
    subscriber = store.get_by_email(db, "kate@example.com")
    assert subscriber is not None
    return store.apply_event(db, subscriber, kind=kind, digest_id=None, status_code=None, diagnostic="",
                                   source="test", message_key=key, policy=policy, when=when)  # fmt: skip


def test_scoring_counts_once_a_day_and_resets_after_a_quiet_period(env: dict[str, str]) -> None:
    add_subscribers(env, "kate@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    policy = store.BouncePolicy(threshold=2.0, hard_immediate=False, reset=timedelta(days=30))
    day = datetime(2026, 11, 1, 9, tzinfo=UTC)
    try:
        assert _apply(db, "soft", day, "a", policy).score == 0.5
        assert _apply(db, "hard", day + timedelta(hours=5), "b", policy).score == 0.5  # same day: not counted
        assert _apply(db, "hard", day + timedelta(days=1), "c", policy).score == 1.5
        assert _apply(db, "hard", day + timedelta(days=40), "d", policy).score == 1.0  # reset, then counted
        last = _apply(db, "soft", day + timedelta(days=41), "e", policy)
        assert (last.score, last.status) == (1.5, "active")
        final = _apply(db, "soft", day + timedelta(days=42), "f", policy)
        assert (final.score, final.status, final.changed) == (2.0, "bounced", True)
        assert _apply(db, "soft", day + timedelta(days=42), "f", policy).duplicate
    finally:
        db.close()


def test_bounce_address_needs_the_secret(env: dict[str, str]) -> None:
    environ = {k: v for k, v in env.items() if k != "DIGEST_SECRET"}
    result = run_cli(["bounces", "list"], {**environ, "DIGEST_BOUNCE_ADDRESS": "bounces@fieldnotes.example.org"})
    assert result.exit_code == 2
    assert "Error: DIGEST_BOUNCE_ADDRESS: needs DIGEST_SECRET" in result.output


def dsn_for(envelope_sender: str, failed: str) -> bytes:
    """A Postfix-style DSN, as a relay mails it back to the VERP envelope sender."""
    text = fixture("postfix").decode()
    text = text.replace("Delivered-To: bounces@fieldnotes.example.org", f"Delivered-To: {envelope_sender.lower()}")
    return text.replace("alice@example.com", failed).encode()


def test_verp_send_then_dsn_on_stdin_marks_exactly_that_subscriber(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    environ = {**smtp_env, "DIGEST_BOUNCE_ADDRESS": "bounces@fieldnotes.example.org"}
    add_subscribers(environ, "ada@example.com", "grace@example.net", "linus@example.org")
    assert run_cli(["send"], environ).exit_code == 0

    by_rcpt = {r.rcpt_tos[0]: r for r in smtp_server.received}
    assert len(by_rcpt) == 3
    grace = by_rcpt["grace@example.net"]
    local, _, domain = grace.mail_from.partition("@")
    assert domain == "fieldnotes.example.org" and local.startswith("bounces+")
    token = local.removeprefix("bounces+")
    assert grace.message[verp.HEADER] == token
    assert verp.verify_token(environ["DIGEST_SECRET"], token.upper()) is not None  # survives case changes
    assert len({r.mail_from for r in smtp_server.received}) == 3

    # The DSN names another address (a forwarder rewrote it): the token decides.
    child_env = {**os.environ, **environ}
    done = subprocess.run([sys.executable, "-m", "digest", "bounces", "process", "-"],
                          input=dsn_for(grace.mail_from, "someone-else@example.org"), env=child_env,
                          capture_output=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    statuses = {email: status for email, (status, _, _) in rows(environ).items()}
    assert statuses == {"ada@example.com": "active", "grace@example.net": "bounced", "linus@example.org": "active"}
    listing = run_cli(["bounces", "list"], environ)
    assert "grace@example.net  hard  5.1.1  digest 1  stdin" in listing.output


def test_status_warns_when_the_complaint_rate_passes_the_limit(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    environ = {**smtp_env, "DIGEST_BOUNCE_ADDRESS": "bounces@fieldnotes.example.org"}
    add_subscribers(environ, "ada@example.com", "heidi@example.com", "linus@example.org")
    assert run_cli(["send"], environ).exit_code == 0
    quiet = run_cli(["status"], environ)
    assert "#1: 0 hard bounce(s) 0.0% (limit 2%), 0 complaint(s) 0.00% (limit 0.3%)" in quiet.output
    assert "WARNING" not in quiet.output
    (heidi,) = [r for r in smtp_server.received if r.rcpt_tos == ["heidi@example.com"]]
    # The feedback report returns the original message, VERP header included.
    report = fixture("arf").replace(b"To: heidi@example.com\n", f"To: heidi@example.com\n{verp.HEADER}: "
                                    f"{heidi.message[verp.HEADER]}\n".encode())  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "digest", "bounces", "process", "-"], input=report,
                          env={**os.environ, **environ}, capture_output=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    loud = run_cli(["status"], environ)
    assert "1 complaint(s) 33.33% (limit 0.3%)  WARNING: complaint rate over the Gmail/Yahoo limit" in loud.output
    assert rows(environ)["heidi@example.com"] == ("unsubscribed", 0.0, "complaint")


def test_a_diagnostic_s_terminal_escapes_are_shown_never_obeyed(env: dict[str, str]) -> None:
    add_subscribers(env, *SUBSCRIBERS)
    hostile = fixture("postfix").replace(
        b"Diagnostic-Code: smtp; 550", b"Diagnostic-Code: smtp; 550 \x1b]0;owned\x07\x1b[2J"
    )
    assert run_cli(["bounces", "process", "-"], env, input=hostile).exit_code == 0

    listing = run_cli(["bounces", "list"], env)

    assert "550 \\x1b]0;owned\\x07\\x1b[2J" in listing.output
    assert not {"\x1b", "\x07"} & set(listing.output)


def test_odd_mail_is_classified_moved_byte_for_byte_and_never_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    add_subscribers(env, *SUBSCRIBERS)
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    # A raw 8-bit byte in the boundary: re-serialising the parsed message raised UnicodeEncodeError.
    eight_bit = fixture("postfix").replace(b"4A3B21C0F2.1764489672", b"\xf84A3B21C0F2.1764489672")
    (box / "new" / "1.eight-bit").write_bytes(eight_bit)
    # A raw byte in Message-ID: the email package hands back a Header object, not a str.
    (box / "new" / "2.header").write_bytes(fixture("exim").replace(b"Message-Id: <", b"Message-Id: <\xe9", 1))
    # No From at all: one of flufl.bounce's detectors raises, and flufl.bounce logs the traceback at ERROR.
    no_from = b"To: bounces@fieldnotes.example.org\nSubject: hello\nMessage-ID: <n@x>\n\nJust a note.\n"
    (box / "new" / "3.no-from").write_bytes(no_from)

    result = subprocess.run(
        [sys.executable, "-m", "digest", "-v", "bounces", "process", "--maildir", str(box)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    assert "Exception in detector" not in result.stderr  # at -v; a DEBUG line only with -vv
    assert "3 message(s): 1 bounce, 0 complaint, 1 auto-reply, 0 delayed, 1 unrecognised" in result.stdout
    assert rows(env)["bob@example.net"][0] == "bounced"
    assert sorted(p.name for p in (box / "new").iterdir()) == ["3.no-from"]  # unrecognised: left for a person
    moved = sorted(p.read_bytes() for p in (box / ".processed" / "new").iterdir())
    assert moved == sorted([eight_bit, fixture("exim").replace(b"Message-Id: <", b"Message-Id: <\xe9", 1)])
