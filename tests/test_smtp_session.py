"""What smtp.py adds to smtplib's session, against a real aiosmtpd server.

DATA dot-stuffs with bytes.replace (the server must get the message back
byte for byte), and ``meanwhile`` (the previous delivery's record) runs
exactly once per send, before the server can accept the message, whether
the send succeeds, is refused or cannot connect at all. ``ahead`` (the next
recipient's copy) runs while the server reads the data, before its reply.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
from dataclasses import replace
from email.headerregistry import Address
from functools import partial
from typing import Any

import pytest

from digest.config import Settings
from digest.errors import ConnectFailure
from digest.mailer import DeliveryOptions, DeliveryResult, deliver
from digest.message import OutgoingMessage, prepare_message
from digest.models import Subscriber
from digest.smtp import SmtpTransport
from digest.wiring import smtp_options
from helpers import RecordingHandler, free_port, running_smtp, settings_from

BODIES = [
    b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nplain\r\n",
    b"Subject: no final line end\r\n\r\nlast line\r\n.still here",
    b".Starts-With: a period\r\n\r\nbody\r\n",
    b"Subject: none at all\r\n\r\nnothing to stuff\r\n",
]


def message(data: bytes, recipient: str = "reader@example.com") -> OutgoingMessage:
    return OutgoingMessage(recipient=recipient, message_id="<m@example.org>", data=data)


def transport_for(env: dict[str, str], port: int) -> SmtpTransport:
    settings: Settings = settings_from(env)
    return SmtpTransport(replace(smtp_options(settings), port=port))


@pytest.mark.parametrize("data", BODIES, ids=range(len(BODIES)))
def test_the_server_gets_the_message_back_byte_for_byte(env: dict[str, str], data: bytes) -> None:
    with running_smtp() as server:
        transport = transport_for(env, server.port)
        try:
            transport.send("news@fieldnotes.example.org", message(data))
        finally:
            transport.close()
    (got,) = server.received
    assert got.data == (data if data.endswith(b"\r\n") else data + b"\r\n")
    assert (got.mail_from, got.rcpt_tos) == ("news@fieldnotes.example.org", ["reader@example.com"])


class Ordered(RecordingHandler):
    def __init__(self, events: list[str], refuse: bool = False) -> None:
        super().__init__()
        self.events = events
        self.refuse = refuse

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.events.append("accepted")
        return await super().handle_DATA(server, session, envelope)


def test_meanwhile_runs_once_before_the_message_is_accepted(env: dict[str, str]) -> None:
    events: list[str] = []
    with running_smtp(Ordered(events)) as server:
        transport = transport_for(env, server.port)
        try:
            for n in range(3):
                transport.send("news@fieldnotes.example.org", message(BODIES[3]), partial(events.append, f"work {n}"))
        finally:
            transport.close()
    assert events == ["work 0", "accepted", "work 1", "accepted", "work 2", "accepted"]


def test_meanwhile_runs_once_when_the_recipient_is_refused(env: dict[str, str]) -> None:
    events: list[str] = []
    with running_smtp(Ordered(events, refuse=True)) as server:
        transport = transport_for(env, server.port)
        try:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                transport.send("news@fieldnotes.example.org", message(BODIES[3]), lambda: events.append("work"))
        finally:
            transport.close()
    assert events == ["work"]


def test_meanwhile_runs_once_when_there_is_no_server(env: dict[str, str]) -> None:
    events: list[str] = []
    transport = transport_for(env, free_port())
    with pytest.raises(ConnectFailure):
        transport.send("news@fieldnotes.example.org", message(BODIES[3]), lambda: events.append("work"))
    assert events == ["work"]


def test_a_failing_meanwhile_stops_the_send_before_data(env: dict[str, str]) -> None:
    def broken() -> None:
        raise RuntimeError("the database is gone")

    with running_smtp() as server:
        transport = transport_for(env, server.port)
        try:
            with pytest.raises(RuntimeError, match="database is gone"):
                transport.send("news@fieldnotes.example.org", message(BODIES[3]), broken)
            assert not transport.connected  # its MAIL FROM reply unread: the session is not reused
            transport.send("news@fieldnotes.example.org", message(BODIES[0]))  # a fresh one
        finally:
            transport.close()
    assert [got.data for got in server.received] == [BODIES[0]]


class WaitsForAhead(RecordingHandler):
    """Answers DATA only once the client's ``ahead`` work has run: proof that it ran before the reply was read."""

    def __init__(self) -> None:
        super().__init__()
        self.ahead_ran = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        ran = await asyncio.get_running_loop().run_in_executor(None, self.ahead_ran.wait, 30)
        self.ahead_ran.clear()
        if not ran:
            return "451 4.3.0 ahead never ran while the data was being read"
        return await super().handle_DATA(server, session, envelope)


def test_ahead_runs_once_while_the_server_reads_the_data(env: dict[str, str]) -> None:
    handler = WaitsForAhead()
    runs: list[int] = []

    def ahead(n: int) -> None:
        runs.append(n)
        handler.ahead_ran.set()

    with running_smtp(handler) as server:
        transport = transport_for(env, server.port)
        try:
            for n in range(3):
                transport.send("news@fieldnotes.example.org", message(BODIES[3]), None, partial(ahead, n))
        finally:
            transport.close()
    assert runs == [0, 1, 2]
    assert [got.data for got in server.received] == [BODIES[3]] * 3


def test_ahead_does_not_run_when_the_recipient_is_refused(env: dict[str, str]) -> None:
    events: list[str] = []
    with running_smtp(Ordered(events, refuse=True)) as server:
        transport = transport_for(env, server.port)
        try:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                transport.send("news@fieldnotes.example.org", message(BODIES[3]), None, lambda: events.append("ahead"))
        finally:
            transport.close()
    assert events == []


def _weekly() -> Any:
    return prepare_message(
        subject="Weekly notes",
        html="<p>Hello</p>",
        text="Hello",
        sender=Address("Field Notes", "news", "fieldnotes.example.org"),
        digest_key="digest-1",
        list_name="Field Notes",
        public_url="https://fieldnotes.example.org/digest",
        secret="s3cret-s3cret",
    )


def test_an_error_taking_the_next_recipient_comes_after_this_message_is_recorded(env: dict[str, str]) -> None:
    # The subscriber list fails while the first message's data is being read (the next
    # recipient is taken then): the first outcome is still read and recorded, the run stops.
    def readers() -> Any:
        yield Subscriber(1, "reader1@example.com", "", "active", "T" * 32)
        raise RuntimeError("the subscriber list is gone")

    recorded: list[str] = []
    options = DeliveryOptions(attempts=1, connections=1, rate=0, backoff=0)
    with running_smtp() as server, pytest.raises(RuntimeError, match="subscriber list is gone"):
        deliver(
            _weekly(),
            readers(),
            transport_factory=lambda: transport_for(env, server.port),
            options=options,
            on_result=lambda result: recorded.append(result.recipient.email),
        )
    assert recorded == ["reader1@example.com"]
    assert [got.rcpt_tos for got in server.received] == [["reader1@example.com"]]


def test_a_record_that_fails_is_tried_again_before_the_worker_ends(env: dict[str, str]) -> None:
    # The first outcome's record fails during the second send's MAIL FROM (a locked database, say):
    # the run stops, the second message is never accepted, and the first outcome is still recorded.
    recorded: list[str] = []
    failures = [RuntimeError("database is locked")]

    def on_result(result: DeliveryResult) -> None:
        if failures:
            raise failures.pop()
        recorded.append(result.recipient.email)

    readers = [Subscriber(n, f"reader{n}@example.com", "", "active", "T" * 32) for n in (1, 2, 3)]
    options = DeliveryOptions(attempts=1, connections=1, rate=0, backoff=0)
    with running_smtp() as server, pytest.raises(RuntimeError, match="database is locked"):
        deliver(
            _weekly(),
            readers,
            transport_factory=lambda: transport_for(env, server.port),
            options=options,
            on_result=on_result,
        )
    assert recorded == ["reader1@example.com"]
    assert [got.rcpt_tos for got in server.received] == [["reader1@example.com"]]


class _Fake:
    """A transport without a server, for the worker's own logic: what each send does is given."""

    where = "SMTP fake"

    def __init__(self, on_send: Any, on_connect: Any = None) -> None:
        self.connected = False
        self._on_send, self._on_connect = on_send, on_connect

    def connect(self) -> None:
        self.connected = True
        if self._on_connect is not None:
            self._on_connect()

    def send(self, sender: str, message: OutgoingMessage, meanwhile: Any = None, ahead: Any = None) -> None:
        if meanwhile is not None:
            meanwhile()
        self._on_send(ahead)

    def reset(self) -> None:
        self.connected = False

    def close(self) -> None:
        self.connected = False


def test_an_error_taking_the_next_recipient_is_raised_even_when_that_connection_is_given_up() -> None:
    # Connection A takes the next recipient while its message is read; the list fails then,
    # and A's connection drops for good. A is given up (B still works), but the run must
    # stop with the list's error, not end as if everyone had been sent.
    b_connected, a_done = threading.Event(), threading.Event()

    def readers() -> Any:
        yield Subscriber(1, "reader1@example.com", "", "active", "T" * 32)
        yield Subscriber(2, "reader2@example.com", "", "active", "T" * 32)
        raise RuntimeError("the subscriber list is gone")

    def a_sends(ahead: Any) -> None:
        b_connected.wait(30)
        ahead()
        a_done.set()
        raise ConnectFailure("SMTP fake: connection dropped")

    def b_sends(ahead: Any) -> None:
        a_done.wait(30)

    fakes = iter([_Fake(a_sends), _Fake(b_sends, on_connect=b_connected.set)])
    recorded: list[str] = []
    with pytest.raises(RuntimeError, match="subscriber list is gone"):
        deliver(
            _weekly(),
            readers(),
            transport_factory=lambda: next(fakes),
            options=DeliveryOptions(attempts=1, connections=2, rate=0, backoff=0),
            on_result=lambda result: recorded.append(result.recipient.email),
        )
    assert len(recorded) == 1  # B's message; A's was never accepted
