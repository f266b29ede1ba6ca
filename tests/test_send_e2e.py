"""End to end: `digest send` against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import feedparser

from helpers import EXAMPLE_FEED, SmtpServer, add_subscribers, run_cli

SUBSCRIBERS = ["ada@example.com", "grace@example.net", "linus@example.org"]


def example_entries() -> list[tuple[str, str]]:
    parsed = feedparser.parse(EXAMPLE_FEED.read_bytes())
    return [(e.title, e.link) for e in parsed.entries]


def test_each_subscriber_gets_one_message_with_every_new_entry(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    add_subscribers(smtp_env, *SUBSCRIBERS)

    result = run_cli(["send"], smtp_env)

    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    newest_three = example_entries()[:3]  # default first-run policy: latest:3
    for received in smtp_server.received:
        message = received.message
        assert message["To"] == received.rcpt_tos[0]
        assert message.get_content_type() == "multipart/alternative"
        html, text = received.part("html"), received.part("plain")
        for title, link in newest_three:
            assert title in html and link in html
            assert title in text and link in text
        assert example_entries()[3][0] not in html  # older than the first-run window


def test_second_send_sends_nothing_when_nothing_is_new(smtp_env: dict[str, str], smtp_server: SmtpServer) -> None:
    add_subscribers(smtp_env, *SUBSCRIBERS)
    assert run_cli(["send"], smtp_env).exit_code == 0
    delivered = len(smtp_server.received)

    again = run_cli(["send"], smtp_env)

    assert again.exit_code == 0, again.output
    assert "Nothing new to send" in again.output
    assert len(smtp_server.received) == delivered == len(SUBSCRIBERS)


def test_message_headers_are_complete(smtp_env: dict[str, str], smtp_server: SmtpServer) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    assert run_cli(["send"], smtp_env).exit_code == 0
    (received,) = smtp_server.received
    message = received.message
    for name in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version", "List-Unsubscribe"):
        assert message[name], name
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith(">")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))
    assert b"\n" not in received.data.replace(b"\r\n", b"")
