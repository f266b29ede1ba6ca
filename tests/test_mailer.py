"""The SMTP transport against real aiosmtpd servers, some of them hostile.

Faults are injected by handlers on the server side: 451s, dropped
connections, 421s, 550s for some recipients, AUTH, STARTTLS with a
self-signed certificate. Every test asserts exactly who received what.
"""

from __future__ import annotations

import random
import ssl
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest import pipeline, store
from digest.mailer import DeliveryOptions
from digest.smtp import SmtpTransport
from digest.store import get_by_email
from digest.wiring import smtp_options, wire
from helpers import RecordingHandler, SmtpServer, add_subscribers, run_cli, settings_from, start_smtp

FAST = DeliveryOptions(attempts=4, backoff=0, connections=2, rate=0.0)


def deliveries(environ: dict[str, str]) -> dict[str, tuple[str, int, str | None]]:
    db = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        return {
            row["email"]: (row["status"], row["attempts"], row["last_error"])
            for row in db.query(
                "SELECT s.email, d.status, d.attempts, d.last_error FROM deliveries d "
                "JOIN subscribers s ON s.id = d.subscriber_id"
            )
        }
    finally:
        db.close()


def digest_status(environ: dict[str, str]) -> list[str]:
    db = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        return [row["status"] for row in db.query("SELECT status FROM digests ORDER BY id")]
    finally:
        db.close()


@dataclass
class FaultyHandler(RecordingHandler):
    """Counts sessions; refuses some recipients; fails some DATA commands."""

    sessions: set[int] = field(default_factory=set)
    refuse: tuple[str, ...] = ()  # substrings of addresses that get a 550
    defer_always: tuple[str, ...] = ()  # substrings of addresses that always get a 451
    reject_data: tuple[str, ...] = ()  # substrings of addresses whose message gets a 554 (content)
    temporary_rate: float = 0.0  # chance of a 451 to DATA (at most twice per address)
    drop_rate: float = 0.0  # chance of dropping the connection at DATA (at most twice per address)
    close_421_every: int = 0  # answer 421 and hang up on every n-th DATA
    faults: Counter[str] = field(default_factory=Counter)
    random: random.Random = field(default_factory=lambda: random.Random(5))
    data_count: int = 0
    _sessions: list[Any] = field(default_factory=list)  # keep them alive so ids stay unique

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if any(bad in address for bad in self.refuse):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if id(session) not in self.sessions:
                self.sessions.add(id(session))
                self._sessions.append(session)
            self.data_count += 1
            rcpt = envelope.rcpt_tos[0]
            if any(bad in rcpt for bad in self.defer_always):
                return "451 4.7.1 try again later"
            if any(bad in rcpt for bad in self.reject_data):
                return "554 5.7.1 message refused as spam"
            if self.close_421_every and self.data_count % self.close_421_every == 0:
                server.transport.close()
                return "421 4.3.2 service shutting down"
            if self.faults[rcpt] < 2 and self.random.random() < self.drop_rate:
                self.faults[rcpt] += 1
                server.transport.close()
                return "451 never seen: the connection is gone"
            if self.faults[rcpt] < 2 and self.random.random() < self.temporary_rate:
                self.faults[rcpt] += 1
                return "451 4.3.0 temporary failure, try again"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def faulty(request: pytest.FixtureRequest) -> Any:
    servers: list[SmtpServer] = []

    def start(handler: FaultyHandler, **kwargs: Any) -> SmtpServer:
        server = start_smtp(handler, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.controller.stop()


def test_twenty_messages_reuse_at_most_the_pool_size_of_connections(env: dict[str, str], faulty: Any) -> None:
    server = faulty(FaultyHandler())
    environ = {**env, "SMTP_PORT": str(server.port), "SMTP_CONNECTIONS": "2"}
    addresses = [f"reader{n}@example.com" for n in range(20)]
    add_subscribers(environ, *addresses)

    outcome = pipeline.send(wire(settings_from(environ), delivery=FAST))

    assert sorted(server.handler.recipients()) == sorted(addresses)
    assert 1 <= len(server.handler.sessions) <= 2
    assert outcome.digests[0].sent == 20 and outcome.digests[0].finished


def test_temporary_failures_and_drops_are_retried_and_everyone_gets_exactly_one(
    env: dict[str, str], faulty: Any
) -> None:
    handler = FaultyHandler(temporary_rate=0.3, drop_rate=0.15, close_421_every=7)
    server = faulty(handler)
    environ = {**env, "SMTP_PORT": str(server.port)}
    addresses = [f"reader{n}@example.com" for n in range(40)]
    add_subscribers(environ, *addresses)

    outcome = pipeline.send(
        wire(settings_from(environ), delivery=DeliveryOptions(attempts=5, backoff=0, connections=2, rate=0.0))
    )

    assert sum(handler.faults.values()) > 5, "the faults did happen"
    assert sorted(handler.recipients()) == sorted(addresses)  # each exactly once
    assert len(handler.sessions) > 2, "dropped connections were reopened"
    report = outcome.digests[0]
    assert (report.sent, report.failed, report.deferred, report.finished) == (40, 0, 0, True)
    rows = deliveries(environ)
    assert {status for status, _, _ in rows.values()} == {"sent"}
    assert any(attempts > 1 for _, attempts, _ in rows.values())


def test_a_550_fails_that_recipient_only_and_marks_it_bounced(env: dict[str, str], faulty: Any) -> None:
    server = faulty(FaultyHandler(refuse=("gone",)))
    environ = {**env, "SMTP_PORT": str(server.port)}
    add_subscribers(environ, *["ada@example.com", "gone@example.com", "grace@example.com"])

    result = run_cli(["send"], environ)

    # A failed delivery is a failure to report, even though the others went out.
    assert result.exit_code == 1, result.output
    assert "Error: not everything was sent: 1 delivery(ies) failed (exit 1)" in result.output
    assert sorted(server.handler.recipients()) == ["ada@example.com", "grace@example.com"]
    status, attempts, error = deliveries(environ)["gone@example.com"]
    assert (status, attempts) == ("failed", 1)
    assert error == "550 5.1.1 <gone@example.com>: mailbox unavailable"
    db = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        assert get_by_email(db, "gone@example.com").status == "bounced"  # type: ignore[union-attr]
    finally:
        db.close()
    # Recorded like a mailed bounce, in the same table (digest bounces list).
    listing = run_cli(["bounces", "list", "--email", "gone@example.com"], environ)
    assert "gone@example.com  hard  5.1.1  digest 1  smtp" in listing.output, listing.output
    assert digest_status(environ) == ["sent"]
    assert "2 sent, 1 failed" in result.output
    status_output = run_cli(["status"], environ).output
    assert "2 sent, 1 failed" in status_output
    assert "gone@example.com" in status_output and "550 5.1.1" in status_output


def test_a_5xx_about_the_content_fails_the_message_without_bouncing_the_subscriber(
    env: dict[str, str], faulty: Any
) -> None:
    server = faulty(FaultyHandler(reject_data=("grace",)))
    environ = {**env, "SMTP_PORT": str(server.port)}
    add_subscribers(environ, *["ada@example.com", "grace@example.com", "linus@example.org"])

    report = pipeline.send(wire(settings_from(environ), delivery=FAST)).digests[0]

    assert (report.sent, report.failed, report.bounced, report.finished) == (2, 1, 0, True)
    assert deliveries(environ)["grace@example.com"] == ("failed", 1, "554 5.7.1 message refused as spam")
    db = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        assert get_by_email(db, "grace@example.com").status == "active"  # type: ignore[union-attr]
    finally:
        db.close()


def test_a_non_ascii_address_goes_out_with_smtputf8(env: dict[str, str], faulty: Any) -> None:
    server = faulty(FaultyHandler(), enable_SMTPUTF8=True)
    environ = {**env, "SMTP_PORT": str(server.port)}
    add_subscribers(environ, *["jörg@example.com", "ada@example.com"])

    report = pipeline.send(wire(settings_from(environ), delivery=FAST)).digests[0]

    assert report.sent == 2, report.errors
    assert sorted(server.handler.recipients()) == ["ada@example.com", "jörg@example.com"]
    (to_jorg,) = [r for r in server.received if r.rcpt_tos == ["jörg@example.com"]]
    assert "jörg@example.com".encode() in to_jorg.data


def test_a_550_does_not_bounce_when_configured_off(env: dict[str, str], faulty: Any) -> None:
    server = faulty(FaultyHandler(refuse=("gone",)))
    environ = {**env, "SMTP_PORT": str(server.port), "DIGEST_BOUNCE_ON_5XX": "false"}
    add_subscribers(environ, *["ada@example.com", "gone@example.com"])

    assert run_cli(["send"], environ).exit_code == 1

    db = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        assert get_by_email(db, "gone@example.com").status == "active"  # type: ignore[union-attr]
    finally:
        db.close()
    assert deliveries(environ)["gone@example.com"][0] == "failed"
    assert digest_status(environ) == ["sent"]  # a permanent failure is final: not retried


def time_passes(environ: dict[str, str], *, deferred_for: float = 0.0) -> None:
    """Make every deferred delivery due now, as if its wait had passed (and it had been deferred that long)."""
    db = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        past = store.to_text(store.utcnow() - timedelta(seconds=deferred_for + 1))
        db.execute("UPDATE deliveries SET next_attempt = ?, first_deferred = ? WHERE status = 'deferred'",
                   [store.to_text(store.utcnow() - timedelta(seconds=1)), past])  # fmt: skip
    finally:
        db.close()


def retry_row(environ: dict[str, str]) -> tuple[int, float]:
    """(deferrals, seconds until the next attempt) of the one deferred delivery."""
    db = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        row = next(db.query("SELECT deferrals, next_attempt FROM deliveries WHERE status = 'deferred'"))
    finally:
        db.close()
    due = store.from_text(row["next_attempt"])
    assert due is not None
    return row["deferrals"], (due - store.utcnow()).total_seconds()


def test_persistent_temporary_failures_are_deferred_and_retried_by_later_runs_only_boundedly(
    env: dict[str, str], faulty: Any
) -> None:
    handler = FaultyHandler(defer_always=("slow",))
    server = faulty(handler)
    environ = {**env, "SMTP_PORT": str(server.port)}
    add_subscribers(environ, *["ada@example.com", "slow@example.com"])
    settings = settings_from(environ)
    options = DeliveryOptions(attempts=2, backoff=0, connections=1, rate=0.0)

    first = pipeline.send(wire(settings, delivery=options)).digests[0]

    assert (first.sent, first.deferred, first.remaining, first.finished) == (1, 1, 1, False)
    assert digest_status(environ) == ["sending"]
    assert deliveries(environ)["slow@example.com"][:2] == ("deferred", 2)

    # Not retried before its wait (a minute after the first deferral: enough
    # for most greylisting) is over, however often send runs.
    deferrals, wait = retry_row(environ)
    assert deferrals == 1 and 30 < wait <= 60
    early = pipeline.send(wire(settings, delivery=options)).digests
    assert [(r.resumed, r.sent, r.deferred, r.remaining, r.finished) for r in early] == [(True, 0, 0, 1, False)]
    assert early[0].next_retry is not None

    # Once due, the next run resumes that digest for the deferred subscriber
    # alone; the wait grows (1, 5, 15, 60 minutes, ...).
    time_passes(environ)
    second = pipeline.send(wire(settings, delivery=options)).digests
    assert [(r.resumed, r.sent, r.deferred) for r in second] == [(True, 0, 1)]
    deferrals, wait = retry_row(environ)
    assert deferrals == 2 and 240 < wait <= 300
    # Deferred for longer than DIGEST_RETRY_FOR (2 days): the failure is final.
    time_passes(environ, deferred_for=settings.retry_for)
    third = pipeline.send(wire(settings, delivery=options)).digests
    assert [(r.resumed, r.failed, r.finished) for r in third] == [(True, 1, True)]
    status, attempts, error = deliveries(environ)["slow@example.com"]
    assert (status, attempts) == ("failed", 6)
    assert error is not None and "gave up" in error
    assert digest_status(environ) == ["sent"]
    assert handler.recipients() == ["ada@example.com"]
    assert pipeline.send(wire(settings, delivery=options)).digests == []


def test_a_deferred_subscriber_gets_the_digest_when_the_server_recovers(env: dict[str, str], faulty: Any) -> None:
    handler = FaultyHandler(defer_always=("slow",))
    server = faulty(handler)
    environ = {**env, "SMTP_PORT": str(server.port)}
    add_subscribers(environ, *["ada@example.com", "slow@example.com"])
    settings = settings_from(environ)
    options = DeliveryOptions(attempts=2, backoff=0, connections=1, rate=0.0)
    pipeline.send(wire(settings, delivery=options))

    handler.defer_always = ()
    time_passes(environ)
    again = pipeline.send(wire(settings, delivery=options)).digests

    assert [(r.resumed, r.sent, r.skipped, r.finished) for r in again] == [(True, 1, 1, True)]
    assert sorted(handler.recipients()) == ["ada@example.com", "slow@example.com"]


def test_an_unreachable_server_is_one_clear_error_and_loses_nothing(
    env: dict[str, str], smtp_server: SmtpServer
) -> None:
    add_subscribers(env, *["ada@example.com", "grace@example.com"])  # env's SMTP_PORT 9: nothing listens

    result = run_cli(["send"], env)

    assert result.exit_code == 1
    (error_line,) = result.output.splitlines()
    assert error_line.startswith("Error: SMTP 127.0.0.1:9: cannot connect: "), result.output
    assert "Traceback" not in result.output
    assert digest_status(env) == ["sending"]
    assert deliveries(env) == {}

    fixed = run_cli(["send"], {**env, "SMTP_PORT": str(smtp_server.port)})
    assert fixed.exit_code == 0, fixed.output
    assert "Resumed digest" in fixed.output
    assert sorted(smtp_server.handler.recipients()) == ["ada@example.com", "grace@example.com"]


class Authenticator:
    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        self.attempts += 1
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"blog", b"hunter2")
        return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_auth_required_works_with_the_right_password_and_fails_clearly_otherwise(
    env: dict[str, str], faulty: Any
) -> None:
    server = faulty(FaultyHandler(), authenticator=Authenticator(), auth_required=True, auth_require_tls=False)
    environ = {**env, "SMTP_PORT": str(server.port), "SMTP_USERNAME": "blog", "SMTP_PASSWORD": "wrong-password"}
    add_subscribers(environ, *["ada@example.com", "grace@example.com"])

    bad = run_cli(["send"], environ)

    assert bad.exit_code == 1
    assert bad.output.count("Error:") == 1 and "authentication failed" in bad.output, bad.output
    assert "wrong-password" not in bad.output
    assert server.handler.recipients() == []
    assert digest_status(environ) == ["sending"]

    good = run_cli(["send"], {**environ, "SMTP_PASSWORD": "hunter2"})
    assert good.exit_code == 0, good.output
    assert sorted(server.handler.recipients()) == ["ada@example.com", "grace@example.com"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_without_credentials_a_server_that_requires_auth_refuses_the_sender_once(
    env: dict[str, str], faulty: Any
) -> None:
    server = faulty(FaultyHandler(), authenticator=Authenticator(), auth_required=True, auth_require_tls=False)
    environ = {**env, "SMTP_PORT": str(server.port)}
    add_subscribers(environ, *["ada@example.com"])

    result = run_cli(["send"], environ)

    assert result.exit_code == 1
    assert result.output.count("Error:") == 1 and "refused" in result.output, result.output
    assert deliveries(environ) == {}


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def test_starttls_with_a_self_signed_certificate(env: dict[str, str], faulty: Any, self_signed: ssl.SSLContext) -> None:
    server = faulty(FaultyHandler(), tls_context=self_signed, require_starttls=True,
                    authenticator=Authenticator(), auth_required=True)  # fmt: skip
    environ = {**env, "SMTP_PORT": str(server.port), "SMTP_SECURITY": "starttls",
               "SMTP_USERNAME": "blog", "SMTP_PASSWORD": "hunter2"}  # fmt: skip
    add_subscribers(environ, *["ada@example.com", "grace@example.com"])

    # Verified against the system store (the default), the certificate is refused.
    refused = run_cli(["send"], environ)
    assert refused.exit_code == 1
    assert [line for line in refused.output.splitlines() if line.startswith("Error:")] == [
        f"Error: SMTP 127.0.0.1:{server.port}: TLS certificate not trusted: self-signed certificate "
        "(the server must present a certificate valid for SMTP_HOST)"
    ], refused.output
    assert server.handler.recipients() == []

    # The documented opt-out, used only here against the local test server.
    accepted = run_cli(["send"], {**environ, "SMTP_VERIFY_CERT": "false"})
    assert accepted.exit_code == 0, accepted.output
    assert sorted(server.handler.recipients()) == ["ada@example.com", "grace@example.com"]


def test_a_stop_finishes_in_flight_messages_and_the_next_run_sends_the_rest(env: dict[str, str], faulty: Any) -> None:
    handler = FaultyHandler()
    server = faulty(handler)
    environ = {**env, "SMTP_PORT": str(server.port)}
    addresses = [f"reader{n}@example.com" for n in range(30)]
    add_subscribers(environ, *addresses)
    settings = settings_from(environ)
    stop = threading.Event()

    def stop_after_five(report: pipeline.SendReport, total: int) -> None:
        if report.sent >= 5:
            stop.set()

    db = store.open_db(settings.db_path)
    try:
        outcome = pipeline.send_locked(db, wire(settings, delivery=FAST), progress=stop_after_five, stop=stop)
    finally:
        db.close()

    report = outcome.digests[0]
    # When the 5th is recorded (during its worker's next send), that worker has one message in flight and
    # every other worker up to two: one accepted and not yet recorded, and the one it is sending.
    assert 5 <= report.sent <= 5 + 2 * FAST.connections - 1 and not report.finished
    assert len(handler.recipients()) == report.sent  # everything accepted was recorded
    assert digest_status(environ) == ["sending"]

    rest = pipeline.send(wire(settings, delivery=FAST)).digests
    assert rest[0].resumed and rest[0].sent == 30 - report.sent
    assert sorted(handler.recipients()) == sorted(addresses)  # no one twice, no one missing


def test_implicit_tls_with_a_self_signed_certificate(
    env: dict[str, str], faulty: Any, self_signed: ssl.SSLContext
) -> None:
    server = faulty(FaultyHandler(), ssl_context=self_signed)
    environ = {**env, "SMTP_PORT": str(server.port), "SMTP_SECURITY": "ssl", "SMTP_VERIFY_CERT": "false"}
    add_subscribers(environ, *["ada@example.com", "grace@example.com"])

    result = run_cli(["send"], environ)

    assert result.exit_code == 0, result.output
    assert sorted(server.handler.recipients()) == ["ada@example.com", "grace@example.com"]


def test_starttls_against_a_server_without_it_is_one_clear_error(env: dict[str, str], smtp_server: SmtpServer) -> None:
    environ = {**env, "SMTP_PORT": str(smtp_server.port), "SMTP_SECURITY": "starttls"}
    add_subscribers(environ, *["ada@example.com"])

    result = run_cli(["send"], environ)

    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == [
        f"Error: SMTP 127.0.0.1:{smtp_server.port} does not offer STARTTLS "
        "(set SMTP_SECURITY=ssl for port 465, or check SMTP_PORT)"
    ]
    assert smtp_server.received == []


def test_a_connection_that_cannot_be_opened_leaves_the_work_to_the_others(
    env: dict[str, str], smtp_server: SmtpServer
) -> None:
    # Like a provider that allows fewer connections than SMTP_CONNECTIONS:
    # the second connection of the pool can never be opened.
    environ = {**env, "SMTP_PORT": str(smtp_server.port)}
    settings = settings_from(environ)
    addresses = [f"reader{n}@example.com" for n in range(12)]
    add_subscribers(environ, *addresses)
    made: list[SmtpTransport] = []

    def factory() -> SmtpTransport:
        port = smtp_server.port if not made else 9  # nothing listens on 9
        made.append(SmtpTransport(replace(smtp_options(settings), port=port)))
        return made[-1]

    report = pipeline.send(wire(settings, transport=factory, delivery=FAST)).digests[0]

    assert len(made) == 2
    assert (report.sent, report.failed, report.finished) == (12, 0, True)
    assert sorted(smtp_server.handler.recipients()) == sorted(addresses)


def test_smtp_options_carry_the_smtp_settings_and_never_show_the_password(env: dict[str, str]) -> None:
    settings = settings_from(
        {**env, "SMTP_HOST": "mail.example.net", "SMTP_PORT": "2525", "SMTP_PASSWORD": "hunter2-secret"}
    )
    options = smtp_options(settings)
    assert (options.host, options.port, options.password) == ("mail.example.net", 2525, "hunter2-secret")
    assert "hunter2-secret" not in repr(options)
    assert SmtpTransport(options).where == "SMTP mail.example.net:2525"
