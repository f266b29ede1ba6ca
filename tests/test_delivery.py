"""Exactly once, test sends, streaming, rendering once, and what the operator sees."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jinja2
import premailer
import pytest

from digest import feedcheck, pipeline, planning, store
from digest.mailer import DeliveryOptions
from digest.pipeline import SendReport
from digest.progress import SendProgress
from digest.store import add_subscriber, get_by_email, set_subscriber_status
from digest.wiring import wire
from helpers import SmtpServer, add_subscribers, run_cli, settings_from

FAST = DeliveryOptions(attempts=2, backoff=0, connections=2, rate=0.0)


def db_state(db_path: Path) -> tuple[bytes, bytes]:
    """The database file and its write-ahead log (where uncheckpointed writes live)."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes(), wal.read_bytes() if wal.exists() else b""


def test_resuming_sends_only_to_subscribers_without_a_sent_row(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    addresses = [f"reader{n}@example.com" for n in range(6)]
    add_subscribers(smtp_env, *addresses)
    settings = settings_from(smtp_env)
    db = store.open_db(settings.db_path)
    try:
        # A run that died after three accepted messages: digest made, rows for three.
        feedcheck.check_feeds(db, wire(settings))
        plan = planning.create_next_digest(db, wire(settings))
        assert plan is not None
        store.set_digest_status(db, plan.id, "sending")
        for address in addresses[:3]:
            subscriber = get_by_email(db, address)
            assert subscriber is not None
            store.record_delivery(db, plan.id, subscriber.id, status="sent", attempts=1, message_id="<x@y>")
    finally:
        db.close()

    result = run_cli(["send"], smtp_env)

    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == addresses[3:]
    assert f"Resumed digest {plan.id}" in result.output
    assert "3 sent, 0 failed, 0 deferred, 3 skipped" in result.output
    assert run_cli(["send"], smtp_env).output.strip() == "Nothing new to send."


def test_test_send_reaches_one_address_and_leaves_the_database_byte_identical(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    add_subscribers(smtp_env, *["ada@example.com", "grace@example.com"])
    db_path = Path(smtp_env["DIGEST_DB"])
    before = db_state(db_path)

    result = run_cli(["send", "--to", "Owner@Example.org"], smtp_env)

    assert result.exit_code == 0, result.output
    assert "to owner@example.org only" in result.output
    assert smtp_server.handler.recipients() == ["owner@example.org"]
    assert db_state(db_path) == before
    test_copy = smtp_server.received[0].message

    # The real send afterwards still goes to everyone, with different Message-IDs.
    assert run_cli(["send"], smtp_env).exit_code == 0
    assert sorted(smtp_server.handler.recipients()[1:]) == ["ada@example.com", "grace@example.com"]
    assert test_copy["Subject"] == smtp_server.received[1].message["Subject"]


def test_test_send_to_a_subscriber_uses_their_name_but_a_fresh_message_id(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    db = store.open_db(Path(smtp_env["DIGEST_DB"]))
    try:
        add_subscriber(db, "ada@example.com", "Ada Lovelace")
    finally:
        db.close()

    assert run_cli(["send", "--to", "ada@example.com"], smtp_env).exit_code == 0
    assert run_cli(["send"], smtp_env).exit_code == 0

    test_copy, real = (r.message for r in smtp_server.received)
    assert test_copy["To"] == real["To"] == "Ada Lovelace <ada@example.com>"
    assert test_copy["List-Unsubscribe"] == real["List-Unsubscribe"]
    assert test_copy["Message-ID"] != real["Message-ID"]  # Gmail would drop the real one as a duplicate


def test_unsubscribed_mid_send_is_skipped_from_the_next_batch_on(env: dict[str, str]) -> None:
    addresses = [f"reader{n}@example.com" for n in range(6)]
    add_subscribers(env, *addresses)
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        feedcheck.check_feeds(db, wire(settings_from(env)))
        plan = planning.create_next_digest(db, wire(settings_from(env)))
        assert plan is not None
        streamed = []
        for subscriber in store.undelivered_subscribers(db, plan.id, batch=2):
            streamed.append(subscriber.email)
            if subscriber.email == "reader0@example.com":
                leaver = get_by_email(db, "reader4@example.com")
                assert leaver is not None
                set_subscriber_status(db, leaver.id, "unsubscribed")
    finally:
        db.close()
    assert streamed == [a for a in addresses if a != "reader4@example.com"]


def test_rendering_work_does_not_grow_with_the_number_of_subscribers(
    env: dict[str, str], smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = {"premailer": 0, "jinja": 0}
    real_transform, real_render = premailer.Premailer.transform, jinja2.Template.render

    def counting_transform(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["premailer"] += 1
        return real_transform(self, *args, **kwargs)

    def counting_render(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["jinja"] += 1
        return real_render(self, *args, **kwargs)

    monkeypatch.setattr(premailer.Premailer, "transform", counting_transform)
    monkeypatch.setattr(jinja2.Template, "render", counting_render)

    def rendering_work(subscribers: int, name: str) -> dict[str, int]:
        environ = {**env, "SMTP_PORT": str(smtp_server.port), "DIGEST_DB": str(tmp_path / name / "digest.db")}
        add_subscribers(environ, *[f"{name}{n}@example.com" for n in range(subscribers)])
        calls.update(premailer=0, jinja=0)
        outcome = pipeline.send(wire(settings_from(environ), delivery=FAST))
        assert outcome.digests[0].sent == subscribers
        return dict(calls)

    one = rendering_work(1, "one")
    many = rendering_work(60, "many")
    assert one["premailer"] >= 1 and one["jinja"] >= 1  # the spies do see rendering
    assert many == one


def test_status_shows_pending_counts_for_an_unfinished_digest(env: dict[str, str]) -> None:
    add_subscribers(env, *["ada@example.com", "grace@example.com"])
    assert run_cli(["send"], env).exit_code == 1  # nothing listens on SMTP_PORT

    output = run_cli(["status"], env).output

    assert "sending" in output and "0 sent, 0 failed, 0 deferred, 2 pending" in output


def test_progress_draws_a_bar_on_a_terminal_and_plain_lines_otherwise() -> None:
    now = [0.0]
    report = SendReport(digest_id=7, subject="s", entries=1, resumed=False, total=1000)

    def advance(progress: SendProgress, sent: int, at: float) -> None:
        now[0] = at
        report.sent, report.elapsed = sent, at
        progress(report, 1000)

    terminal = io.StringIO()
    bar = SendProgress(terminal, interactive=True, clock=lambda: now[0])
    advance(bar, 1, 0.0)
    advance(bar, 500, 5.0)
    assert "\r[##############..............] 500/1,000 100 msg/s ETA 0:05" in terminal.getvalue()
    advance(bar, 1000, 10.0)
    assert terminal.getvalue().endswith("\n")

    log = io.StringIO()
    plain = SendProgress(log, interactive=False, every=10.0, clock=lambda: now[0])
    advance(plain, 1, 0.0)
    advance(plain, 200, 2.0)  # too soon for another line
    advance(plain, 250, 10.0)
    advance(plain, 600, 20.0)
    advance(plain, 1000, 25.0)  # the end: the command's summary reports it
    lines = log.getvalue().splitlines()
    assert lines == [
        "digest 7: 250/1,000 (25%) 25 msg/s, ETA 0:30",
        "digest 7: 600/1,000 (60%) 30 msg/s, ETA 0:13",
    ]
    assert "\r" not in log.getvalue()


def test_dkim_settings_sign_every_message_sent(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    import base64
    import subprocess

    import dkim

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    environ = {
        **smtp_env,
        "DIGEST_DKIM_SELECTOR": "news",
        "DIGEST_DKIM_DOMAIN": "fieldnotes.example.org",
        "DIGEST_DKIM_KEY_FILE": str(key),
    }
    add_subscribers(environ, *["ada@example.com", "grace@example.com"])

    assert run_cli(["send"], environ).exit_code == 0

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news._domainkey.fieldnotes.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert len(smtp_server.received) == 2
    for received in smtp_server.received:
        assert dkim.verify(received.data, dnsfunc=dns), received.rcpt_tos
        headers = received.data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"").replace(b"\t", b"")
        signature = headers.split(b"DKIM-Signature:", 1)[1].replace(b" ", b"")
        tags = dict(part.split(b"=", 1) for part in signature.split(b";") if b"=" in part)
        assert tags[b"c"] == b"relaxed/relaxed"
        signed = tags[b"h"].lower().split(b":")
        assert signed.count(b"from") == 2 and signed.count(b"subject") == 2  # over-signed
        assert b"auto-submitted" in signed


@pytest.mark.parametrize("key_text", [None, "not a key\n"])
def test_an_unusable_dkim_key_is_a_config_error_before_anything_is_sent(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path, key_text: str | None
) -> None:
    key = tmp_path / "dkim.pem"
    if key_text is not None:
        key.write_text(key_text)
    environ = {
        **smtp_env,
        "DIGEST_DKIM_SELECTOR": "news",
        "DIGEST_DKIM_DOMAIN": "fieldnotes.example.org",
        "DIGEST_DKIM_KEY_FILE": str(key),
    }
    add_subscribers(environ, *["ada@example.com"])

    result = run_cli(["send"], environ)

    assert result.exit_code == 2
    assert result.output.startswith("Error: DIGEST_DKIM_KEY_FILE:"), result.output
    assert smtp_server.received == []
    assert run_cli(["status"], environ).output.count("none yet") == 1  # no digest was made
