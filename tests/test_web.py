"""The one-click unsubscribe endpoint, against the real waitress server on 127.0.0.1."""

from __future__ import annotations

import http.client
import io
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from digest import tokens
from digest.errors import ConfigError, DigestError
from digest.web import MAX_BODY_BYTES
from digest.web.server import WebServer
from helpers import add_subscribers, run_cli, settings_from

ONE_CLICK = b"List-Unsubscribe=One-Click"


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[tuple[WebServer, int]]:
    add_subscribers(env, "ada@example.com", "bob@example.com")
    settings = settings_from(env)
    endpoint = WebServer(settings, listen=("127.0.0.1", 0), timeout=5)
    _, port = endpoint.start()
    try:
        yield endpoint, port
    finally:
        endpoint.stop()


def link(environ: dict[str, str], email: str) -> str:
    conn = sqlite3.connect(environ["DIGEST_DB"])
    try:
        (token,) = conn.execute("SELECT token FROM subscribers WHERE email = ?", [email]).fetchone()
    finally:
        conn.close()
    return "/unsubscribe?token=" + tokens.link_token(environ["DIGEST_SECRET"], token)


def status_of(environ: dict[str, str], email: str) -> str:
    conn = sqlite3.connect(environ["DIGEST_DB"])
    try:
        return str(conn.execute("SELECT status FROM subscribers WHERE email = ?", [email]).fetchone()[0])
    finally:
        conn.close()


def raw(port: int, request: bytes) -> bytes:
    """Send ``request`` as is and return every byte of the response (the server closes)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass  # a server that closes without reading the request resets the connection
    return b"".join(chunks)


def get(port: int, target: str) -> bytes:
    return raw(port, f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())


def post(port: int, target: str, body: bytes = ONE_CLICK,
         content_type: str = "application/x-www-form-urlencoded") -> bytes:  # fmt: skip
    head = f"POST {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
    return raw(port, head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def status_line(response: bytes) -> bytes:
    return response.split(b"\r\n", 1)[0]


def without_date(response: bytes) -> bytes:
    """The response without its Date header (the one part that differs from second to second)."""
    head, _, body = response.partition(b"\r\n\r\n")
    return b"\r\n".join(line for line in head.split(b"\r\n") if not line.startswith(b"Date: ")) + b"\r\n\r\n" + body


def body_of(response: bytes) -> str:
    return response.split(b"\r\n\r\n", 1)[1].decode("utf-8")


def test_get_shows_masked_address_and_button_but_does_not_unsubscribe(
    env: dict[str, str], server: tuple[WebServer, int]
) -> None:
    _, port = server

    response = get(port, link(env, "ada@example.com"))

    assert status_line(response) == b"HTTP/1.1 200 OK"
    page = body_of(response)
    assert "a***a@example.com" in page and "ada@example.com" not in page
    assert '<form method="post">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert status_of(env, "ada@example.com") == "active"


def test_one_click_post_unsubscribes_at_once(env: dict[str, str], server: tuple[WebServer, int]) -> None:
    _, port = server

    response = post(port, link(env, "ada@example.com"))

    assert status_line(response) == b"HTTP/1.1 200 OK"
    head = response.split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nlocation:" not in head and b"\r\nset-cookie:" not in head
    assert "You are unsubscribed" in body_of(response)
    assert status_of(env, "ada@example.com") == "unsubscribed"
    assert status_of(env, "bob@example.com") == "active"
    # Repeating it (a retrying mail provider) is harmless; GET now says so.
    assert status_line(post(port, link(env, "ada@example.com"))) == b"HTTP/1.1 200 OK"
    assert "Already unsubscribed" in body_of(get(port, link(env, "ada@example.com")))


def test_multipart_one_click_post_unsubscribes(env: dict[str, str], server: tuple[WebServer, int]) -> None:
    _, port = server
    body = b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--XyZ--\r\n'

    response = post(port, link(env, "bob@example.com"), body, "multipart/form-data; boundary=XyZ")

    assert status_line(response) == b"HTTP/1.1 200 OK"
    assert status_of(env, "bob@example.com") == "unsubscribed"


def test_empty_post_body_is_accepted(env: dict[str, str], server: tuple[WebServer, int]) -> None:
    _, port = server

    response = post(port, link(env, "bob@example.com"), b"")

    assert status_line(response) == b"HTTP/1.1 200 OK"
    assert status_of(env, "bob@example.com") == "unsubscribed"


def test_post_with_another_body_is_refused(env: dict[str, str], server: tuple[WebServer, int]) -> None:
    _, port = server

    response = post(port, link(env, "bob@example.com"), b"List-Unsubscribe=Maybe")

    assert status_line(response) == b"HTTP/1.1 400 Bad Request"
    assert status_of(env, "bob@example.com") == "active"


def test_bad_tokens_are_indistinguishable_from_unknown_ones(env: dict[str, str], server: tuple[WebServer, int]) -> None:
    _, port = server
    secret = env["DIGEST_SECRET"]
    good = link(env, "ada@example.com").split("=", 1)[1]
    token, _signature = good.split(".")
    unknown = tokens.link_token(secret, "A" * 32)  # well signed, no such subscriber
    candidates = [
        unknown,
        f"{token}.{'B' * 22}",  # bad signature for a real subscriber
        tokens.link_token("another-secret", token),  # signed with the wrong secret
        token,  # unsigned
        "not a token",
        "",
        f"{good}&token={good}",  # two tokens
    ]

    for method in (get, post):
        responses = {without_date(method(port, f"/unsubscribe?token={c.replace(' ', '%20')}")) for c in candidates}
        responses.add(without_date(method(port, "/unsubscribe")))
        assert len(responses) == 1, method
        (response,) = responses
        assert status_line(response) == b"HTTP/1.1 400 Bad Request"
        assert "not valid" in body_of(response)
    assert status_of(env, "ada@example.com") == "active"
    assert without_date(get(port, "/unsubscribe?token=" + unknown)) == without_date(
        post(port, "/unsubscribe?token=" + unknown)
    )


def test_oversized_bodies_are_refused_and_chunked_ones_held_to_the_same_limit(
    env: dict[str, str], server: tuple[WebServer, int]
) -> None:
    _, port = server
    target = link(env, "ada@example.com")

    def chunked(body: bytes) -> bytes:
        head = f"POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        return raw(port, head.encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")

    too_big = post(port, target, ONE_CLICK + b"&" + b"x" * MAX_BODY_BYTES)
    too_big_chunked = chunked(ONE_CLICK + b"&" + b"x" * MAX_BODY_BYTES)
    bad_length = raw(port, f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".encode())

    assert status_line(too_big) == b"HTTP/1.1 413 Request Entity Too Large"
    assert status_line(too_big_chunked) == b"HTTP/1.1 413 Request Entity Too Large"
    assert status_line(bad_length) == b"HTTP/1.1 400 Bad Request"
    assert status_of(env, "ada@example.com") == "active"
    # waitress decodes chunked bodies itself: a small one is a one-click like any other.
    assert status_line(chunked(ONE_CLICK)) == b"HTTP/1.1 200 OK"
    assert status_of(env, "ada@example.com") == "unsubscribed"


def test_silent_clients_are_dropped_by_the_channel_timeout(env: dict[str, str]) -> None:
    settings = settings_from(env)
    with WebServer(settings, listen=("127.0.0.1", 0), timeout=1) as endpoint:
        sock = socket.create_connection(("127.0.0.1", endpoint.port), timeout=20)
        with sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never finishes the request
            # The server gives up and closes: recv returns b"" well before our own 20 s limit.
            assert sock.recv(1024) == b""


def test_dripping_clients_are_dropped_by_the_request_deadline(env: dict[str, str]) -> None:
    settings = settings_from(env)
    with WebServer(settings, listen=("127.0.0.1", 0), timeout=60, request_deadline=1.0) as endpoint:
        sock = socket.create_connection(("127.0.0.1", endpoint.port), timeout=20)
        with sock:
            closed = False
            for byte in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"x" * 200:
                try:
                    sock.sendall(bytes([byte]))  # never silent long enough for the channel timeout
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                sock.settimeout(0.2)
                try:
                    if sock.recv(1024) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
            assert closed, "a request dripped over 40 s was never cut off"


def test_connections_over_the_cap_wait_for_a_slot(env: dict[str, str]) -> None:
    settings = settings_from(env)
    # waitress counts its listening socket and its wake-up pipe: a limit of 3 leaves one connection.
    with WebServer(settings, listen=("127.0.0.1", 0), connection_limit=3, timeout=20) as endpoint:
        port = endpoint.port
        hog = socket.create_connection(("127.0.0.1", port), timeout=20)  # takes the only slot, says nothing
        answers: list[bytes] = []
        waiting = threading.Thread(target=lambda: answers.append(get(port, "/healthz")))
        try:
            waiting.start()
            waiting.join(0.5)
            assert waiting.is_alive() and not answers  # not served while the hog holds the slot...
        finally:
            hog.close()
        waiting.join(20)
        assert status_line(answers[0]) == b"HTTP/1.1 200 OK"  # ...and served, not reset, once it frees


def test_healthz_and_unknown_paths(server: tuple[WebServer, int]) -> None:
    _, port = server

    health = get(port, "/healthz")
    assert status_line(health) == b"HTTP/1.1 200 OK"
    assert health.endswith(b"\r\n\r\nok\n")
    for path in ("/", "/unsubscribe/x", "/admin", "/healthz/../unsubscribe", "/static/x.css"):
        assert status_line(get(port, path)) == b"HTTP/1.1 404 Not Found", path
    assert status_line(post(port, "/healthz")) == b"HTTP/1.1 405 Method Not Allowed"
    head = raw(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_line(head) == b"HTTP/1.1 200 OK"
    assert b"\r\nContent-Length: 3\r\n" in head and head.endswith(b"\r\n\r\n")  # the length, no body
    put = raw(port, b"PUT /unsubscribe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert status_line(put) == b"HTTP/1.1 405 Method Not Allowed"


def test_public_url_prefix_is_accepted(env: dict[str, str], server: tuple[WebServer, int]) -> None:
    _, port = server  # DIGEST_PUBLIC_URL is https://fieldnotes.example.org/digest

    response = get(port, "/digest" + link(env, "ada@example.com"))

    assert status_line(response) == b"HTTP/1.1 200 OK"


def test_security_headers_and_self_contained_pages(env: dict[str, str], server: tuple[WebServer, int]) -> None:
    _, port = server
    for response in (get(port, link(env, "ada@example.com")), get(port, "/unsubscribe?token=x"), get(port, "/x")):
        conn_headers = http.client.parse_headers(io_of(response))
        assert conn_headers["Cache-Control"] == "no-store"
        assert conn_headers["X-Content-Type-Options"] == "nosniff"
        assert conn_headers["Referrer-Policy"] == "no-referrer"
        assert conn_headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'sha256-")
        assert "unsafe-inline" not in conn_headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in conn_headers["Content-Security-Policy"]
        assert conn_headers["Server"] == "digest"
        assert conn_headers["Date"]
        assert "Set-Cookie" not in conn_headers
        page = body_of(response)
        assert page.startswith('<!doctype html><html lang="en">')
        assert "http" not in page.split("</head>")[1]  # no external resources or links
        assert "<script" not in page and "src=" not in page


def io_of(response: bytes) -> io.BufferedReader:
    head = response.split(b"\r\n", 1)[1].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    return io.BufferedReader(io.BytesIO(head))


def test_start_reports_a_busy_port_as_one_line(env: dict[str, str]) -> None:
    settings = settings_from(env)
    with WebServer(settings, listen=("127.0.0.1", 0)) as first:
        port = first.port
        second = WebServer(settings, listen=("127.0.0.1", port))
        with pytest.raises(DigestError, match=rf"DIGEST_HTTP_LISTEN: cannot listen on 127.0.0.1:{port}: "):
            second.start()


def test_server_requires_secret_and_listen_address(env: dict[str, str]) -> None:
    settings = settings_from(env)
    with pytest.raises(ConfigError, match="DIGEST_HTTP_LISTEN: not set"):
        WebServer(settings)
    with pytest.raises(ConfigError, match="DIGEST_SECRET: not set"):
        WebServer(replace(settings, secret=None), listen=("127.0.0.1", 0))


# --- the effect on sending -------------------------------------------------------------


def test_a_send_after_the_post_skips_that_subscriber(smtp_env: dict[str, str], smtp_server: object) -> None:
    add_subscribers(smtp_env, "ada@example.com", "bob@example.com", "cy@example.com")
    with WebServer(settings_from(smtp_env), listen=("127.0.0.1", 0)) as endpoint:
        port = endpoint.port
        assert status_line(post(port, link(smtp_env, "bob@example.com"))) == b"HTTP/1.1 200 OK"

    result = run_cli(["send"], smtp_env)

    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == ["ada@example.com", "cy@example.com"]  # type: ignore[attr-defined]


def test_unsubscribe_during_a_send_skips_the_address_from_the_next_batch(
    smtp_env: dict[str, str], tmp_path: Path
) -> None:
    """A real send of more than one batch (500); a one-click POST arrives while it runs."""
    from helpers import RecordingHandler, start_smtp

    count = 520
    listing = tmp_path / "list.csv"
    listing.write_text("email\n" + "".join(f"reader{n:04d}@example.com\n" for n in range(count)), encoding="utf-8")
    assert run_cli(["subscribers", "import", str(listing)], smtp_env).exit_code == 0
    last = f"reader{count - 1:04d}@example.com"
    settings = settings_from(smtp_env)

    with WebServer(settings, listen=("127.0.0.1", 0)) as endpoint:
        port = endpoint.port
        target = link(smtp_env, last)

        class UnsubscribingHandler(RecordingHandler):
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                if not self.received:  # the first message: the send is under way
                    assert status_line(post(port, target)) == b"HTTP/1.1 200 OK"
                return await super().handle_DATA(server, session, envelope)

        smtp = start_smtp(UnsubscribingHandler())
        try:
            result = run_cli(["send"], {**smtp_env, "SMTP_PORT": str(smtp.port), "SMTP_CONNECTIONS": "1"})
        finally:
            smtp.controller.stop()

    assert result.exit_code == 0, result.output
    recipients = smtp.handler.recipients()
    assert last not in recipients
    assert len(recipients) == len(set(recipients)) == count - 1


def test_header_injection_in_a_name_never_breaks_the_to_header(smtp_env: dict[str, str], smtp_server: object) -> None:
    hostile = 'Mallory "the \\"Quote\\"", Esq.\r\nBcc: victim@example.net\r\nSubject: pwned'
    added = run_cli(["subscribers", "add", "mallory@example.com", "--name", hostile], smtp_env)
    assert added.exit_code == 0, added.output
    conn = sqlite3.connect(smtp_env["DIGEST_DB"])
    (stored,) = conn.execute("SELECT name FROM subscribers").fetchone()
    conn.close()
    assert "\r" not in stored and "\n" not in stored

    assert run_cli(["send"], smtp_env).exit_code == 0

    (received,) = smtp_server.received  # type: ignore[attr-defined]
    assert received.rcpt_tos == ["mallory@example.com"]
    message = received.message
    assert message["Bcc"] is None
    assert len(message.get_all("Subject")) == 1 and "pwned" not in message["Subject"]
    (address,) = message["To"].addresses
    assert address.addr_spec == "mallory@example.com"
    assert address.display_name == stored
    assert b"\r\nBcc:" not in received.data
