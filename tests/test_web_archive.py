"""The public archive and "View in browser", against a real send and the real waitress server."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from digest import store
from digest.web.server import WebServer
from helpers import add_subscribers, run_cli, settings_from
from test_web import body_of, get, status_line
from test_web_app import headers_of

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def sent(smtp_env: dict[str, str], smtp_server: object) -> tuple[dict[str, str], str]:
    """One digest sent to two readers; yields the environment and the HTML part Ada received."""
    add_subscribers(smtp_env, "ada@example.com", "bob@example.com")
    result = run_cli(["send"], smtp_env)
    assert result.exit_code == 0, result.output
    received = {r.rcpt_tos[0]: r for r in smtp_server.received}  # type: ignore[attr-defined]
    return smtp_env, received["ada@example.com"].part("html")


def test_every_email_links_to_its_archive_page(sent: tuple[dict[str, str], str]) -> None:
    environ, html_part = sent
    (digest_id,) = [row["id"] for row in store.archived_digests(store.open_db(Path(environ["DIGEST_DB"])), 10)]
    assert f'href="https://fieldnotes.example.org/digest/archive/{digest_id}"' in html_part
    assert "View in browser" in html_part


def test_the_archive_copy_is_the_email_without_its_personal_part(sent: tuple[dict[str, str], str]) -> None:
    environ, html_part = sent
    with WebServer(settings_from(environ), listen=("127.0.0.1", 0)) as server:
        listing = get(server.port, "/archive")
        (digest_url,) = re.findall(r'href="(https://fieldnotes\.example\.org/digest/archive/\d+)"', body_of(listing))
        response = get(server.port, digest_url.removeprefix("https://fieldnotes.example.org"))

    assert status_line(listing) == b"HTTP/1.1 200 OK"
    assert status_line(response) == b"HTTP/1.1 200 OK"
    page = body_of(response)
    personal_parts = ("ada@example.com", "bob@example.com", "token=", "DIGESTRECIPIENT", "DIGESTUNSUBSCRIBEURL",
                      "DIGESTSUBSCRIBERPAGE")  # fmt: skip
    for personal in personal_parts:
        assert personal not in page, personal
    assert "a reader subscribed" in page
    assert 'href="https://fieldnotes.example.org/digest/unsubscribe"' in page
    assert 'href="https://fieldnotes.example.org/digest/subscriber"' in page  # the tokenless page: a neutral 400
    assert "/subscriber?token=" in html_part  # while the email itself links to Ada's own page
    # The same posts, titles and styles as the email.
    for title in re.findall(r'class="dg-entry-title-link"[^>]*>([^<]+)<', html_part):
        assert title in page
    csp = headers_of(response)["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert page.count(' style="') > 0 and "'unsafe-hashes'" in csp


def test_every_style_in_the_copy_is_allowed_by_its_hash(sent: tuple[dict[str, str], str]) -> None:
    import base64
    import hashlib
    import html

    environ, _ = sent
    with WebServer(settings_from(environ), listen=("127.0.0.1", 0)) as server:
        response = get(server.port, "/archive/1")
    csp = headers_of(response)["content-security-policy"]
    page = body_of(response)
    values = {html.unescape(v) for v in re.findall(r' style="([^"]*)"', page)}
    values |= set(re.findall(r"<style[^>]*>(.*?)</style>", page, re.S))
    for value in values:
        digest = base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp, value


def test_atom_feed_lists_the_digests(sent: tuple[dict[str, str], str]) -> None:
    environ, _ = sent
    with WebServer(settings_from(environ), listen=("127.0.0.1", 0)) as server:
        response = get(server.port, "/archive.atom")
    assert headers_of(response)["content-type"] == "application/atom+xml; charset=utf-8"
    feed = ET.fromstring(body_of(response).encode())  # noqa: S314 - our own server's feed
    (entry,) = feed.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}id") == "https://fieldnotes.example.org/digest/archive/1"
    assert entry.findtext(f"{ATOM}title")
    assert feed.findtext(f"{ATOM}updated")


def test_the_archive_pages_newest_first(env: dict[str, str]) -> None:
    db = store.open_db(Path(env["DIGEST_DB"]))
    for number in range(1, 26):
        digest_id = store.create_digest(db, f"Issue <{number}>", "<p>x</p>", "x", [])
        store.set_digest_status(db, digest_id, "sent")
    store.create_digest(db, "Not sent yet", "<p>x</p>", "x", [])  # pending: not public
    db.close()
    with WebServer(settings_from(env), listen=("127.0.0.1", 0)) as server:
        first, second = get(server.port, "/archive"), get(server.port, "/archive?page=2")
        beyond = get(server.port, "/archive?page=3")
        pending = get(server.port, "/archive/26")
        past_64_bits = get(server.port, "/archive/" + "9" * 30)  # was a 500: OverflowError binding it

    titles = re.findall(r"Issue &lt;(\d+)&gt;", body_of(first))
    assert titles == [str(n) for n in range(25, 5, -1)]
    assert re.findall(r"Issue &lt;(\d+)&gt;", body_of(second)) == [str(n) for n in range(5, 0, -1)]
    assert "archive?page=2" in body_of(first) and "archive?page=1" in body_of(second)
    assert "Not sent yet" not in body_of(first)
    assert status_line(beyond) == status_line(pending) == status_line(past_64_bits) == b"HTTP/1.1 404 Not Found"


def test_archive_off_serves_nothing_and_links_nowhere(smtp_env: dict[str, str], smtp_server: object) -> None:
    environ = {**smtp_env, "DIGEST_ARCHIVE": "off"}
    add_subscribers(environ, "ada@example.com")
    assert run_cli(["send"], environ).exit_code == 0
    (received,) = smtp_server.received  # type: ignore[attr-defined]
    assert "/archive/" not in received.part("html") and "View in browser" not in received.part("html")
    settings = replace(settings_from(environ), archive=False)
    with WebServer(settings, listen=("127.0.0.1", 0)) as server:
        for path in ("/archive", "/archive/1", "/archive.atom"):
            assert status_line(get(server.port, path)) == b"HTTP/1.1 404 Not Found", path
