"""The sign-up pages against the real waitress server on 127.0.0.1 and a real aiosmtpd sink.

The rules themselves (with an injected clock) are in test_signup.py; here
every answer is a real HTTP exchange. DIGEST_SIGNUP_MIN_AGE is 0 s except
where a test is about it: no test sleeps.
"""

from __future__ import annotations

import http.client
import logging
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

import pytest

from digest import pipeline, store, tokens
from digest.mailer import DeliveryOptions
from digest.web.server import WebServer
from digest.wiring import wire
from helpers import SmtpServer, add_subscribers, app_target, run_cli, settings_from, subscriber_rows

FAST = DeliveryOptions(attempts=2, backoff=0, connections=2, rate=0.0)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "templates"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


class Site:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, target: str, form: dict[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            body = urlencode(form).encode() if form is not None else None
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
        finally:
            connection.close()

    def form_token(self) -> str:
        page = self.request("GET", "/subscribe")
        assert page.status == 200
        return form_token_of(page.body)

    def subscribe(self, email: str, **fields: str) -> Answer:
        return self.request("POST", "/subscribe", {"email": email, "form_token": self.form_token(), **fields})


def form_token_of(page: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', page)
    assert match, page
    return str(match.group(1))


@pytest.fixture
def site_env(smtp_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in ("welcome.html.j2", "welcome.txt.j2"):
        (templates / name).write_text((EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    return {**smtp_env, "DIGEST_SIGNUP_MIN_AGE": "0s", "DIGEST_TEMPLATE_DIR": str(templates)}


def serve(environ: dict[str, str]) -> Iterator[Site]:
    server = WebServer(settings_from(environ), listen=("127.0.0.1", 0), timeout=5)
    _, port = server.start()
    try:
        yield Site(port)
    finally:
        server.stop()


@pytest.fixture
def site(site_env: dict[str, str]) -> Iterator[Site]:
    yield from serve(site_env)


def confirm_path(smtp_server: SmtpServer, to: str) -> str:
    [mail] = [m for m in smtp_server.received if to in m.rcpt_tos and "Confirm" in str(m.message["Subject"])]
    [url] = set(re.findall(r"https://\S+/confirm\?token=\S+", mail.part("plain")))
    return app_target(str(url))


def write_feed(path: Path, titles: list[str]) -> None:
    """An Atom feed of ``titles``, newest first; each post keeps its id and date as newer ones arrive."""
    entries = ""
    for title in titles:
        day = {"First post": 1, "Second post": 2, "Third post": 3, "Fourth post": 4}[title]
        slug = title.lower().replace(" ", "-")
        entries += (
            f"<entry><id>urn:post:{slug}</id><title>{title}</title><link href='https://blog.example.org/{slug}'/>"
            f"<updated>2026-11-{day:02d}T08:00:00Z</updated>"
            f"<content type='html'>&lt;p&gt;{title}.&lt;/p&gt;</content></entry>"
        )
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        "<title>Field Notes</title><id>urn:feed</id><updated>2026-12-03T08:00:00Z</updated>"
        f"<link href='https://blog.example.org/'/>{entries}</feed>",
        encoding="utf-8",
    )


def test_the_whole_journey_over_http(site_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path) -> None:
    feed = tmp_path / "feed.atom"
    write_feed(feed, ["First post"])
    environ = {**site_env, "DIGEST_FEED_URL": str(feed), "DIGEST_FIRST_RUN": "none"}
    assert run_cli(["check"], environ).exit_code == 0  # the first run: the existing post is seen, not sent
    add_subscribers(environ, "ada@example.com")
    for site in serve(environ):
        form = site.request("GET", "/subscribe")
        assert form.status == 200 and "set-cookie" not in form.headers
        assert "unsafe-inline" not in form.headers["content-security-policy"]
        assert site.subscribe("reader@example.org", name="Reader").status == 200
        assert subscriber_rows(environ)["reader@example.org"]["status"] == "pending"

        target = confirm_path(smtp_server, "reader@example.org")
        shown = site.request("GET", target)
        assert shown.status == 200 and "<button" in shown.body
        assert subscriber_rows(environ)["reader@example.org"]["status"] == "pending"  # a GET never confirms
        done = site.request("POST", target, {})
        assert done.status == 200 and "You are subscribed" in done.body
        assert subscriber_rows(environ)["reader@example.org"]["status"] == "active"
        assert str(smtp_server.received[-1].message["Subject"]).startswith("Welcome to")
        assert "/subscriber?token=" in smtp_server.received[-1].part("plain")  # the welcome links to the page too
        assert site.request("POST", target, {}).status == 400  # used once

        write_feed(feed, ["Second post", "First post"])
        pipeline.send(wire(settings_from(environ), delivery=FAST))
        [digest] = [
            m for m in smtp_server.received if "Second post" in str(m.message["Subject"]) and "reader@" in m.rcpt_tos[0]
        ]
        assert sorted(m.rcpt_tos[0] for m in smtp_server.received if "Second post" in str(m.message["Subject"])) == [
            "ada@example.com",
            "reader@example.org",
        ]

        unsubscribe = urlsplit(digest.message["List-Unsubscribe"].strip("<>"))
        one_click = site.request("POST", "/unsubscribe?" + unsubscribe.query, {"List-Unsubscribe": "One-Click"})
        assert one_click.status == 200
        write_feed(feed, ["Third post", "Second post", "First post"])
        pipeline.send(wire(settings_from(environ), delivery=FAST))
        third = [m.rcpt_tos for m in smtp_server.received if "Third post" in str(m.message["Subject"])]
        assert third == [["ada@example.com"]]  # the next digest went out, and not to the reader who left


def test_a_post_from_the_snippet_gets_one_more_button_then_works(site: Site, smtp_server: SmtpServer) -> None:
    first = site.request("POST", "/subscribe", {"email": "static@example.org", "name": "Stat", "website": ""})
    assert first.status == 200 and "One more step" in first.body
    assert 'value="static@example.org"' in first.body and 'value="Stat"' in first.body  # pre-filled
    assert smtp_server.received == []

    second = site.request(
        "POST", "/subscribe", {"email": "static@example.org", "form_token": form_token_of(first.body)}
    )
    assert "Check your inbox" in second.body
    assert [m.rcpt_tos for m in smtp_server.received] == [["static@example.org"]]


def test_the_answer_does_not_tell_who_is_subscribed(site: Site, site_env: dict[str, str]) -> None:
    add_subscribers(site_env, "member@example.org", "left@example.org")
    conn = sqlite3.connect(site_env["DIGEST_DB"])
    conn.execute("UPDATE subscribers SET status = 'unsubscribed' WHERE email = 'left@example.org'")
    conn.commit()
    conn.close()
    answers = [site.subscribe(email) for email in ("new@example.org", "member@example.org", "left@example.org")]
    answers.append(site.subscribe("new@example.org"))  # now pending
    assert {(a.status, a.body) for a in answers} == {(answers[0].status, answers[0].body)}
    assert "Check your inbox" in answers[0].body


def test_honeypot_and_replayed_tokens_send_nothing(site: Site, smtp_server: SmtpServer) -> None:
    trapped = site.subscribe("target@example.org", website="http://spam.example")
    assert "Check your inbox" in trapped.body
    token = site.form_token()
    site.request("POST", "/subscribe", {"email": "one@example.org", "form_token": token})
    replayed = site.request("POST", "/subscribe", {"email": "two@example.org", "form_token": token})
    assert "One more step" in replayed.body
    assert [m.rcpt_tos for m in smtp_server.received] == [["one@example.org"]]


def test_a_form_sent_at_once_gets_one_more_button(site_env: dict[str, str], smtp_server: SmtpServer) -> None:
    for site in serve({**site_env, "DIGEST_SIGNUP_MIN_AGE": "1h"}):
        assert "One more step" in site.subscribe("quick@example.org").body
    assert smtp_server.received == []


def test_limits_per_client_and_per_hour(site_env: dict[str, str], smtp_server: SmtpServer) -> None:
    for site in serve({**site_env, "DIGEST_SIGNUP_PER_IP": "3", "DIGEST_SIGNUP_MAILS_PER_HOUR": "2"}):
        answers = [site.subscribe(f"reader{n}@example.org") for n in range(4)]
    assert [a.status for a in answers] == [200, 200, 503, 429]
    assert answers[2].headers["retry-after"] == "3600" and answers[3].headers["retry-after"] == "3600"
    assert len(smtp_server.received) == 2


def test_dead_confirmation_links_get_one_neutral_page(site: Site, site_env: dict[str, str]) -> None:
    add_subscribers(site_env, "ada@example.com")
    forged = tokens.link_token(site_env["DIGEST_SECRET"], "x" * 22)
    bodies = {site.request(method, f"/confirm?token={value}", {} if method == "POST" else None).body
              for method in ("GET", "POST") for value in ("", "garbage", forged, "a" * 22 + ".b" * 3)}  # fmt: skip
    assert len(bodies) == 1 and "does not work" in bodies.pop()


def test_sign_up_off_means_no_pages(site_env: dict[str, str]) -> None:
    for site in serve({**site_env, "DIGEST_SIGNUP": "off"}):
        assert site.request("GET", "/subscribe").status == 404
        assert site.request("POST", "/subscribe", {"email": "x@example.org"}).status == 404


def test_confirm_link_in_the_mail_decodes_to_the_token(site: Site, smtp_server: SmtpServer) -> None:
    site.subscribe("reader@example.org")
    target = confirm_path(smtp_server, "reader@example.org")
    assert unquote(target).count(".") == 3  # subscriber token, nonce, expiry, signature


def test_a_sign_up_that_meets_a_long_import_gets_try_later_not_an_error(
    site: Site, site_env: dict[str, str], smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    store.open_db(Path(site_env["DIGEST_DB"])).close()  # the database exists (not run_cli: it resets logging)
    token = site.form_token()
    importer = sqlite3.connect(site_env["DIGEST_DB"], isolation_level=None)
    importer.execute("BEGIN IMMEDIATE")  # a big import holds the write lock past the web app's busy timeout
    try:
        with caplog.at_level(logging.WARNING, logger="digest.web"):
            answer = site.request("POST", "/subscribe", {"email": "late@example.org", "form_token": token})
    finally:
        importer.execute("COMMIT")
        importer.close()
    assert answer.status == 503 and answer.headers["retry-after"] == "60" and "Try again later" in answer.body
    assert "database unavailable" in caplog.text and "Traceback" not in caplog.text
    assert smtp_server.received == []
    assert "Check your inbox" in site.subscribe("late@example.org").body  # once the import is over
