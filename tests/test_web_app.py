"""The Flask app's guarantees on every page, against the real waitress server on 127.0.0.1."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import flask
import pytest

from digest import unsubscribe_queue
from digest.web import create_app
from digest.web.server import WebServer
from helpers import add_subscribers, run_cli, settings_from
from test_web import body_of, get, link, post, raw, status_line, status_of


def headers_of(response: bytes) -> dict[str, str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {name.lower(): value for name, _, value in (line.partition(": ") for line in head)}


@pytest.fixture
def port(env: dict[str, str]) -> Iterator[int]:
    add_subscribers(env, "ada@example.com")
    with WebServer(settings_from(env), listen=("127.0.0.1", 0)) as server:
        yield server.port


def test_every_answer_has_the_headers_and_no_cookie(env: dict[str, str], port: int) -> None:
    targets = [link(env, "ada@example.com"), "/unsubscribe?token=x", "/nowhere", "/healthz"]
    responses = [get(port, target) for target in targets] + [post(port, "/healthz")]
    for response in responses:
        headers = headers_of(response)
        csp = headers["content-security-policy"]
        assert "'unsafe-inline'" not in csp and "script-src" not in csp and csp.startswith("default-src 'none'")
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "set-cookie" not in headers and "vary" not in headers


def test_the_inline_stylesheet_is_the_one_the_csp_allows(env: dict[str, str], port: int) -> None:
    import base64
    import hashlib

    response = get(port, link(env, "ada@example.com"))
    page = body_of(response)
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in headers_of(response)["content-security-policy"]
    assert " style=" not in page and "<script" not in page


def test_a_view_that_touches_the_session_sets_no_cookie(env: dict[str, str]) -> None:
    app = create_app(settings_from(env))

    @app.get("/touch")
    def touch() -> str:
        try:
            flask.session["x"] = "1"
        except RuntimeError:
            return "refused"
        return "stored"

    response = app.test_client().get("/touch")
    assert response.get_data(as_text=True) == "refused"
    assert "Set-Cookie" not in response.headers


def test_template_dir_overrides_a_page_and_the_style(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "style.css").write_text("body{color:#123456}", encoding="utf-8")
    (tmp_path / "web" / "message.html.j2").write_text(
        "<!doctype html><style>{{ style }}</style><h1>Custom: {{ title }}</h1>", encoding="utf-8"
    )
    settings = replace(settings_from(env), template_dir=tmp_path)
    with WebServer(settings, listen=("127.0.0.1", 0)) as server:
        response = get(server.port, "/nowhere")
    assert "<h1>Custom: Not found</h1>" in body_of(response)
    assert "body{color:#123456}" in body_of(response)


def test_forwarded_for_counts_only_from_trusted_proxies(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n"
    caplog.set_level(logging.DEBUG, logger="digest.web.app")
    clients = {}
    for trusted in (0, 1, ("10.0.0.0/8",), ("127.0.0.0/8",)):
        caplog.clear()
        with WebServer(replace(settings_from(env), trusted_proxies=trusted), listen=("127.0.0.1", 0)) as server:
            assert status_line(raw(server.port, request)) == b"HTTP/1.1 200 OK"
        (line,) = [r.getMessage() for r in caplog.records if r.getMessage().endswith(" GET /healthz 200")]
        clients[str(trusted)] = line.split()[0]
    assert clients == {"0": "127.0.0.1", "1": "203.0.113.9", "('10.0.0.0/8',)": "127.0.0.1",
                       "('127.0.0.0/8',)": "203.0.113.9"}  # fmt: skip


def test_the_public_url_prefix_works_for_every_route(env: dict[str, str], port: int) -> None:
    assert body_of(get(port, "/digest/healthz")) == "ok\n"  # DIGEST_PUBLIC_URL ends in /digest
    assert status_line(get(port, "/digestx/healthz")) == b"HTTP/1.1 404 Not Found"


# --- a one-click that meets a long write transaction ------------------------------------


def test_an_unsubscribe_during_a_long_import_is_queued_and_applied_before_the_next_send(
    smtp_env: dict[str, str], smtp_server: object
) -> None:
    add_subscribers(smtp_env, "ada@example.com", "bob@example.com")
    target = link(smtp_env, "bob@example.com")
    importer = sqlite3.connect(smtp_env["DIGEST_DB"], isolation_level=None)
    with WebServer(settings_from(smtp_env), listen=("127.0.0.1", 0)) as server:
        importer.execute("BEGIN IMMEDIATE")  # a big import holds the write lock ...
        try:
            importer.execute("UPDATE subscribers SET name = 'importing'")
            response = post(server.port, target)  # ... past the web app's busy timeout
            assert status_line(response) == b"HTTP/1.1 200 OK"
            assert "You are unsubscribed" in body_of(response)
            assert unsubscribe_queue.pending(Path(smtp_env["DIGEST_DB"])) != []
        finally:
            importer.execute("COMMIT")
            importer.close()
    assert status_of(smtp_env, "bob@example.com") == "active"  # not yet written: queued

    result = run_cli(["send"], smtp_env)

    assert result.exit_code == 0, result.output
    assert smtp_server.handler.recipients() == ["ada@example.com"]  # type: ignore[attr-defined]
    assert status_of(smtp_env, "bob@example.com") == "unsubscribed"
    assert unsubscribe_queue.pending(Path(smtp_env["DIGEST_DB"])) == []


def test_an_unsubscribe_that_waits_for_a_short_transaction_is_written_at_once(env: dict[str, str]) -> None:
    add_subscribers(env, "ada@example.com")
    target = link(env, "ada@example.com")
    writer = sqlite3.connect(env["DIGEST_DB"], isolation_level=None, check_same_thread=False)
    with WebServer(settings_from(env), listen=("127.0.0.1", 0)) as server:
        writer.execute("BEGIN IMMEDIATE")
        answers: list[bytes] = []
        request = threading.Thread(target=lambda: answers.append(post(server.port, target)))
        request.start()
        request.join(0.1)
        writer.execute("COMMIT")  # well within the one-click's wait (web.unsubscribe.ONE_CLICK_WAIT_MS)
        request.join(20)
    writer.close()
    assert status_line(answers[0]) == b"HTTP/1.1 200 OK"
    assert status_of(env, "ada@example.com") == "unsubscribed"
    assert unsubscribe_queue.pending(Path(env["DIGEST_DB"])) == []


def test_stop_still_closes_the_server_when_its_wake_up_pipe_is_gone(env: dict[str, str]) -> None:
    # Seen rarely under load: os.write on waitress's trigger failed with EBADF inside stop().
    import errno
    import os
    import socket

    server = WebServer(settings_from(env), listen=("127.0.0.1", 0), timeout=5)
    _, port = server.start()
    assert status_line(get(port, "/unsubscribe")).startswith(b"HTTP/1.1 ")  # it serves
    inner = server._server
    assert inner is not None

    def dead_pipe() -> None:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    inner.trigger._physical_pull = dead_pipe  # what waitress's os.write on the pipe raised
    server.stop()  # no exception
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # nobody listens any more
