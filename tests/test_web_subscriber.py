"""The subscriber's page ("Manage your subscription"), from the link in a real digest to the next digest.

Real waitress on 127.0.0.1, a real SQLite file, a real aiosmtpd sink, and the
link read out of the email the sink caught.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digest import pipeline, store, tokens
from digest.store import BouncePolicy
from digest.wiring import wire
from helpers import SmtpServer, add_subscribers, app_target, run_cli, settings_from, subscriber_rows
from test_web_signup import FAST, Site, confirm_path, serve, write_feed

PAGE_LINK = re.compile(r"https://fieldnotes\.example\.org/digest/subscriber\?token=[A-Za-z0-9_.-]+")


@pytest.fixture
def environ(smtp_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    feed = tmp_path / "feed.atom"
    write_feed(feed, ["First post"])
    values = {**smtp_env, "DIGEST_FEED_URL": str(feed), "DIGEST_FIRST_RUN": "none", "DIGEST_SIGNUP_MIN_AGE": "0s"}
    assert run_cli(["check"], values).exit_code == 0  # the existing post is seen, not sent
    add_subscribers(values, "ada@example.com", "reader@example.org")
    return values


@pytest.fixture
def site(environ: dict[str, str]) -> Iterator[Site]:
    yield from serve(environ)


def send_post(environ: dict[str, str], titles: list[str]) -> None:
    write_feed(Path(environ["DIGEST_FEED_URL"]), titles)
    pipeline.send(wire(settings_from(environ), delivery=FAST))


def recipients_of(smtp_server: SmtpServer, title: str) -> list[str]:
    return sorted(m.rcpt_tos[0] for m in smtp_server.received if title in str(m.message["Subject"]))


def page_target(smtp_server: SmtpServer, to: str, title: str) -> str:
    """The path of the subscriber's page linked from the digest ``to`` received, the same in both parts."""
    [mail] = [m for m in smtp_server.received if m.rcpt_tos == [to] and title in str(m.message["Subject"])]
    text_links = set(PAGE_LINK.findall(mail.part("plain")))
    html_links = {link.replace("&amp;", "&") for link in PAGE_LINK.findall(mail.part("html"))}
    assert len(text_links) == 1 and text_links == html_links, (text_links, html_links)
    assert "Manage your subscription" in mail.part("plain") and "Manage your subscription" in mail.part("html")
    return app_target(text_links.pop())


def token_of(environ: dict[str, str], email: str) -> str:
    return str(subscriber_rows(environ)[email]["token"])


def test_unsubscribe_then_come_back_through_a_fresh_confirmation(
    environ: dict[str, str], site: Site, smtp_server: SmtpServer
) -> None:
    send_post(environ, ["Second post", "First post"])
    assert recipients_of(smtp_server, "Second post") == ["ada@example.com", "reader@example.org"]
    target = page_target(smtp_server, "reader@example.org", "Second post")

    shown = site.request("GET", target)
    assert shown.status == 200 and "r***r@example.org receives" in shown.body
    assert 'value="unsubscribe"' in shown.body and "<script" not in shown.body and "set-cookie" not in shown.headers
    assert "unsafe-inline" not in shown.headers["content-security-policy"]
    assert subscriber_rows(environ)["reader@example.org"]["status"] == "active"  # a GET changes nothing

    left = site.request("POST", target, {"action": "unsubscribe"})
    assert left.status == 200 and "You are unsubscribed" in left.body and 'value="resubscribe"' in left.body
    row = subscriber_rows(environ)["reader@example.org"]
    assert (row["status"], row["unsubscribe_reason"]) == ("unsubscribed", "page")
    send_post(environ, ["Third post", "Second post", "First post"])
    assert recipients_of(smtp_server, "Third post") == ["ada@example.com"]

    asked = site.request("POST", target, {"action": "resubscribe"})
    assert asked.status == 200 and "Check your inbox" in asked.body
    assert subscriber_rows(environ)["reader@example.org"]["status"] == "unsubscribed"  # not until confirmed
    confirm = confirm_path(smtp_server, "reader@example.org")
    assert site.request("POST", target, {"action": "resubscribe"}).body.count("a short while ago") == 1  # no 2nd mail
    assert len([m for m in smtp_server.received if "Confirm" in str(m.message["Subject"])]) == 1
    assert site.request("POST", confirm, {}).status == 200
    assert subscriber_rows(environ)["reader@example.org"]["status"] == "active"

    send_post(environ, ["Fourth post", "Third post", "Second post", "First post"])
    assert recipients_of(smtp_server, "Fourth post") == ["ada@example.com", "reader@example.org"]

    # A mistaken click once more: having confirmed, the address may ask again at once.
    site.request("POST", target, {"action": "unsubscribe"})
    again = site.request("POST", target, {"action": "resubscribe"})
    assert "on its way" in again.body
    assert len([m for m in smtp_server.received if "Confirm" in str(m.message["Subject"])]) == 2


def test_tampered_tokens_get_the_one_neutral_400(environ: dict[str, str], site: Site) -> None:
    secret = environ["DIGEST_SECRET"]
    token = token_of(environ, "reader@example.org")
    good = tokens.link_token(secret, token, tokens.SUBSCRIBER_PAGE)
    candidates = [
        tokens.link_token(secret, token),  # the one-click link's token: signed for another purpose
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # a changed signature
        tokens.link_token("another-secret", token, tokens.SUBSCRIBER_PAGE),
        tokens.link_token(secret, "A" * 32, tokens.SUBSCRIBER_PAGE),  # well signed, nobody's
        token,
        "",
        f"{good}&token={good}",
    ]
    neutral = site.request("GET", "/unsubscribe?token=garbage")
    answers = [site.request("GET", f"/subscriber?token={c}") for c in candidates]
    answers += [site.request("POST", f"/subscriber?token={c}", {"action": "unsubscribe"}) for c in candidates]
    answers += [site.request("GET", "/subscriber"), site.request("POST", f"/subscriber?token={good}", {"action": "x"})]
    assert {(a.status, a.body) for a in answers} == {(400, neutral.body)}
    assert subscriber_rows(environ)["reader@example.org"]["status"] == "active"
    assert site.request("GET", f"/subscriber?token={good}").status == 200


def _bounce(environ: dict[str, str], email: str, kind: str) -> None:
    with store.opened(Path(environ["DIGEST_DB"])) as db:
        subscriber = store.get_by_email(db, email)
        assert subscriber is not None
        store.apply_event(db, subscriber, kind=kind, digest_id=None, status_code="5.1.1", diagnostic="test",
                          source="stdin", message_key=None, policy=BouncePolicy())  # fmt: skip


@pytest.mark.parametrize("kind", ["hard", "complaint"])
def test_a_bounced_or_complaining_address_can_never_come_back_from_the_page(
    environ: dict[str, str], site: Site, smtp_server: SmtpServer, kind: str
) -> None:
    send_post(environ, ["Second post", "First post"])
    target = page_target(smtp_server, "reader@example.org", "Second post")
    _bounce(environ, "reader@example.org", kind)
    sent_before = len(smtp_server.received)

    shown = site.request("GET", target)
    assert shown.status == 200 and "no longer sent" in shown.body and "<form" not in shown.body
    refused = site.request("POST", target, {"action": "resubscribe"})
    assert refused.status == 400 and "cannot be subscribed again" in refused.body
    # Pressing "unsubscribe" answers as usual and is recorded, but never turns a bounce into a way back.
    assert site.request("POST", target, {"action": "unsubscribe"}).status == 200
    row = subscriber_rows(environ)["reader@example.org"]
    expected = ("unsubscribed", "bounce") if kind == "hard" else ("unsubscribed", "complaint")
    assert (row["status"], row["unsubscribe_reason"]) == expected
    assert site.request("POST", target, {"action": "resubscribe"}).status == 400
    assert site.subscribe("reader@example.org").status == 200  # the public form does not mail it either
    assert len(smtp_server.received) == sent_before

    send_post(environ, ["Third post", "Second post", "First post"])
    assert recipients_of(smtp_server, "Third post") == ["ada@example.com"]


def test_an_address_the_owner_removed_gets_no_button(environ: dict[str, str], site: Site) -> None:
    assert run_cli(["subscribers", "remove", "reader@example.org"], environ).exit_code == 0
    assert subscriber_rows(environ)["reader@example.org"]["unsubscribe_reason"] == "cli"
    target = "/subscriber?token=" + tokens.link_token(
        environ["DIGEST_SECRET"], token_of(environ, "reader@example.org"), tokens.SUBSCRIBER_PAGE
    )
    shown = site.request("GET", target)
    assert shown.status == 200 and "is unsubscribed" in shown.body and "<form" not in shown.body
    assert site.request("POST", target, {"action": "resubscribe"}).status == 400


def test_with_sign_up_off_the_page_unsubscribes_but_offers_no_way_back(
    environ: dict[str, str], smtp_server: SmtpServer
) -> None:
    target = "/subscriber?token=" + tokens.link_token(
        environ["DIGEST_SECRET"], token_of(environ, "reader@example.org"), tokens.SUBSCRIBER_PAGE
    )
    for site in serve({**environ, "DIGEST_SIGNUP": "off"}):
        left = site.request("POST", target, {"action": "unsubscribe"})
        assert left.status == 200 and "You are unsubscribed" in left.body and "<form" not in left.body
        assert site.request("POST", target, {"action": "resubscribe"}).status == 400
    assert smtp_server.received == []


def test_the_page_follows_the_template_dir(environ: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "own" / "web").mkdir(parents=True)
    (tmp_path / "own" / "web" / "subscriber.html.j2").write_text(
        '{% extends "web/base.html.j2" %}{% block content %}<p>Own page: {{ state }}</p>{% endblock %}'
    )
    target = "/subscriber?token=" + tokens.link_token(
        environ["DIGEST_SECRET"], token_of(environ, "ada@example.com"), tokens.SUBSCRIBER_PAGE
    )
    for site in serve({**environ, "DIGEST_TEMPLATE_DIR": str(tmp_path / "own")}):
        assert "Own page: active" in site.request("GET", target).body


def test_an_unsubscribed_reader_from_before_reasons_were_recorded_is_not_offered_a_way_back(
    environ: dict[str, str], site: Site
) -> None:
    conn = sqlite3.connect(environ["DIGEST_DB"])
    conn.execute("UPDATE subscribers SET status = 'unsubscribed', unsubscribe_reason = NULL WHERE email LIKE 'reader%'")
    conn.commit()
    conn.close()
    target = "/subscriber?token=" + tokens.link_token(
        environ["DIGEST_SECRET"], token_of(environ, "reader@example.org"), tokens.SUBSCRIBER_PAGE
    )
    assert 'value="resubscribe"' not in site.request("GET", target).body


def test_a_one_click_unsubscribe_is_recorded_as_self_made_and_the_page_offers_the_way_back(
    environ: dict[str, str], site: Site, smtp_server: SmtpServer
) -> None:
    send_post(environ, ["Second post", "First post"])
    [mail] = [m for m in smtp_server.received if m.rcpt_tos == ["reader@example.org"]]
    one_click = urlsplit(str(mail.message["List-Unsubscribe"]).split(",")[0].strip().strip("<>"))
    assert site.request("POST", "/unsubscribe?" + one_click.query, {"List-Unsubscribe": "One-Click"}).status == 200
    assert subscriber_rows(environ)["reader@example.org"]["unsubscribe_reason"] == "one-click"
    shown = site.request("GET", page_target(smtp_server, "reader@example.org", "Second post"))
    assert "is unsubscribed" in shown.body and 'value="resubscribe"' in shown.body
