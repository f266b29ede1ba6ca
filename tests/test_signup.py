"""Sign-up with double opt-in, the rules themselves: a real SQLite file, a real aiosmtpd sink.

The web pages that call these are tested in test_web_signup.py; here each
rule (bot paths, limits, enumeration, expiry, consent) is driven with an
injected clock so that "a few seconds old" and "a day later" need no sleeping.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlite_utils import Database

from digest import pipeline, signup, store
from digest.mailer import DeliveryOptions
from digest.signup import Outcome, SignupForm
from digest.wiring import wire
from helpers import SmtpServer, add_subscribers, run_cli, settings_from, subscriber_rows

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=10)
SPAM_NAME = "Cheap pills at spam.example.net"
FAST = DeliveryOptions(attempts=2, backoff=0, connections=2, rate=0.0)


@pytest.fixture
def environ(smtp_env: dict[str, str]) -> dict[str, str]:
    return {**smtp_env, "DIGEST_ALLOW_TEST_DOMAINS": "false"}


@pytest.fixture
def db(environ: dict[str, str]) -> Iterator[Database]:
    database = store.open_db(Path(environ["DIGEST_DB"]))
    try:
        yield database
    finally:
        database.close()


def form(settings_env: dict[str, str], email: str, *, issued: datetime = T0, **fields: str) -> SignupForm:
    token = signup.issue_form_token(settings_from(settings_env), issued)
    return SignupForm(email=email, form_token=fields.pop("form_token", token), **fields)


def sign_up(
    environ: dict[str, str],
    db: Database,
    email: str,
    now: datetime = LATER,
    issued: datetime | None = None,
    **fields: str,
) -> Outcome:
    """A sign-up at ``now`` from a form issued 10 s before (or at ``issued``)."""
    page = form(environ, email, issued=issued or now - timedelta(seconds=10), **fields)
    answer = signup.sign_up(settings_from(environ), db, page, now=now)
    return answer.outcome


def confirm_link(smtp_server: SmtpServer, to: str) -> str:
    [mail] = [m for m in smtp_server.received if to in m.rcpt_tos and "Confirm" in str(m.message["Subject"])]
    links = set(re.findall(r"https://[^\s\"<>]+/confirm\?token=[^\s\"<>]+", mail.part("plain") + mail.part("html")))
    assert len(links) == 1, links  # one link, the same in both parts
    return unquote(links.pop().split("token=", 1)[1])


def test_the_journey_from_form_to_digest_and_out(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    welcome = tmp_path / "templates"
    welcome.mkdir()
    examples = Path(__file__).resolve().parents[1] / "examples" / "templates"
    for name in ("welcome.html.j2", "welcome.txt.j2"):
        (welcome / name).write_text((examples / name).read_text(encoding="utf-8"), encoding="utf-8")
    environ = {**environ, "DIGEST_TEMPLATE_DIR": str(welcome)}
    add_subscribers(environ, "ada@example.com")

    assert sign_up(environ, db, "Reader@Example.org", name=SPAM_NAME) is Outcome.CHECK_INBOX

    rows = subscriber_rows(environ)
    assert rows["reader@example.org"]["status"] == "pending"
    assert rows["reader@example.org"]["source"] == "form"
    [mail] = smtp_server.received[-1:]
    assert mail.rcpt_tos == ["reader@example.org"]
    assert SPAM_NAME.encode() not in mail.data and b"spam.example" not in mail.data  # nothing the visitor typed
    assert mail.message["To"] == "reader@example.org"
    token = confirm_link(smtp_server, "reader@example.org")

    # Pending: the next digest does not go to them.
    pipeline.send(wire(settings_from(environ), delivery=FAST))
    digests = [m for m in smtp_server.received if "Confirm" not in str(m.message["Subject"])]
    assert [m.rcpt_tos for m in digests] == [["ada@example.com"]]

    settings = settings_from(environ)
    assert signup.confirmation_is_live(settings, db, token)
    confirmed = signup.confirm(settings, db, token, now=LATER + timedelta(minutes=5))
    assert confirmed is not None and confirmed.status == "active"
    assert signup.confirm(settings, db, token) is None  # single-use
    welcome_mail = smtp_server.received[-1]
    assert str(welcome_mail.message["Subject"]).startswith("Welcome to")
    assert welcome_mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    row = subscriber_rows(environ)["reader@example.org"]
    assert row["confirmed"] == (LATER + timedelta(minutes=5)).isoformat()

    export = run_cli(["subscribers", "export"], environ).stdout.splitlines()
    assert export[0] == "email,name,status,created,updated,source,confirmed"
    [line] = [line for line in export if line.startswith("reader@example.org")]
    assert line.endswith(f",form,{row['confirmed']}")


def test_without_welcome_templates_no_welcome_is_sent(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer
) -> None:
    assert sign_up(environ, db, "reader@example.org") is Outcome.CHECK_INBOX
    token = confirm_link(smtp_server, "reader@example.org")
    assert signup.confirm(settings_from(environ), db, token) is not None
    assert len(smtp_server.received) == 1


@pytest.mark.parametrize("state", ["new", "pending", "active", "unsubscribed", "bounced"])
def test_the_answer_is_the_same_whatever_the_address_state(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer, state: str
) -> None:
    address = "someone@example.org"
    if state == "pending":
        assert sign_up(environ, db, address, now=LATER - timedelta(days=3)) is Outcome.CHECK_INBOX
        assert subscriber_rows(environ)[address]["status"] == "pending"
    elif state != "new":
        add_subscribers(environ, address)
        if state != "active":
            db.execute("UPDATE subscribers SET status = ? WHERE email = ?", [state, address])
    before = len(smtp_server.received)

    assert sign_up(environ, db, address) is Outcome.CHECK_INBOX

    mailed = len(smtp_server.received) - before
    assert mailed == (1 if state in ("new", "pending", "unsubscribed") else 0)


def test_an_unsubscribed_reader_comes_back_only_by_confirming(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer
) -> None:
    add_subscribers(environ, "back@example.org")
    run_cli(["subscribers", "remove", "back@example.org"], environ)
    sign_up(environ, db, "back@example.org")
    assert subscriber_rows(environ)["back@example.org"]["status"] == "unsubscribed"  # not yet
    assert signup.confirm(settings_from(environ), db, confirm_link(smtp_server, "back@example.org"))
    assert subscriber_rows(environ)["back@example.org"]["status"] == "active"


def test_a_complaint_is_never_mailed_again(environ: dict[str, str], db: Database, smtp_server: SmtpServer) -> None:
    add_subscribers(environ, "angry@example.org")
    db.execute(
        "UPDATE subscribers SET status = 'unsubscribed', unsubscribe_reason = 'complaint' WHERE email = ?",
        ["angry@example.org"],
    )
    assert sign_up(environ, db, "angry@example.org") is Outcome.CHECK_INBOX
    assert smtp_server.received == []


def test_one_confirmation_per_address_per_interval(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer
) -> None:
    for minutes in (0, 5, 60 * 23):
        assert sign_up(environ, db, "bombed@example.org", now=LATER + timedelta(minutes=minutes)) is Outcome.CHECK_INBOX
    assert len(smtp_server.received) == 1
    sign_up(environ, db, "bombed@example.org", now=LATER + timedelta(hours=25))
    assert len(smtp_server.received) == 2
    # Only the newest link works.
    links = re.findall(r"/confirm\?token=(\S+)", "".join(m.part("plain") for m in smtp_server.received))
    settings = settings_from(environ)
    assert not signup.confirmation_is_live(settings, db, unquote(links[0]))
    assert signup.confirmation_is_live(settings, db, unquote(links[1]))


def test_a_household_signs_up_ten_people_but_a_script_is_slowed_down(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer
) -> None:
    outcomes = [
        sign_up(environ, db, f"member{n}@example.org", client="203.0.113.7", now=LATER + timedelta(seconds=n))
        for n in range(25)
    ]
    assert outcomes[:20] == [Outcome.CHECK_INBOX] * 20
    assert set(outcomes[20:]) == {Outcome.SLOW_DOWN}
    assert sign_up(environ, db, "neighbour@example.org", client="203.0.113.8") is Outcome.CHECK_INBOX
    later = LATER + timedelta(hours=1, minutes=1)
    assert sign_up(environ, db, "member99@example.org", client="203.0.113.7", now=later) is Outcome.CHECK_INBOX


def test_a_flood_past_the_hourly_cap_is_refused_and_logged(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {**environ, "DIGEST_SIGNUP_MAILS_PER_HOUR": "3"}
    settings = settings_from(environ)
    warning = signup.CapWarning()  # what one web app owns: the throttle of this app alone
    with caplog.at_level(logging.WARNING, logger="digest.signup"):
        outcomes = [
            signup.sign_up(
                settings, db, form(environ, f"victim{n}@example.org", client=f"198.51.100.{n}"), now=LATER,
                cap_warning=warning,
            ).outcome
            for n in range(6)
        ]  # fmt: skip
    assert outcomes == [Outcome.CHECK_INBOX] * 3 + [Outcome.TRY_LATER] * 3
    assert len(smtp_server.received) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "DIGEST_SIGNUP_MAILS_PER_HOUR" in warnings[0]  # once, not once per refusal
    assert "victim3@example.org" not in subscriber_rows(environ)  # refused before anything is stored


def test_the_cap_warning_comes_back_after_five_minutes_and_with_each_new_owner(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    moments = iter([1000.0, 1100.0, 1299.0, 1300.0, 1301.0])
    warning = signup.CapWarning(clock=lambda: next(moments))
    settings = settings_from(environ)
    with caplog.at_level(logging.WARNING, logger="digest.signup"):
        logged = [warning(settings) for _ in range(5)]
        fresh = signup.CapWarning()(settings)  # another app (or a test that ran first) shares nothing
    assert logged == [True, False, False, True, False]
    assert fresh is True
    assert caplog.text.count("DIGEST_SIGNUP_MAILS_PER_HOUR") == 3


@pytest.mark.parametrize(
    ("case", "fields", "now"),
    [
        ("no token", {"form_token": ""}, LATER),
        ("forged token", {"form_token": "1700000000.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"}, LATER),
        ("posted at once", {"issued": LATER - timedelta(seconds=1)}, LATER),
        ("a day old", {"issued": LATER - timedelta(days=1, minutes=1)}, LATER),
    ],
)
def test_bot_paths_never_send_mail(
    environ: dict[str, str],
    db: Database,
    smtp_server: SmtpServer,
    case: str,
    fields: dict[str, Any],
    now: datetime,
) -> None:
    assert sign_up(environ, db, "target@example.org", now=now, **fields) is Outcome.ONE_MORE_STEP, case
    assert smtp_server.received == []
    assert "target@example.org" not in subscriber_rows(environ)


def test_a_replayed_form_token_works_once(environ: dict[str, str], db: Database, smtp_server: SmtpServer) -> None:
    token = signup.issue_form_token(settings_from(environ), T0)
    settings = settings_from(environ)
    first = signup.sign_up(settings, db, SignupForm("one@example.org", form_token=token), now=LATER)
    second = signup.sign_up(settings, db, SignupForm("two@example.org", form_token=token), now=LATER)
    assert (first.outcome, second.outcome) == (Outcome.CHECK_INBOX, Outcome.ONE_MORE_STEP)
    assert [m.rcpt_tos for m in smtp_server.received] == [["one@example.org"]]


def test_a_filled_honeypot_is_answered_as_usual_and_nothing_happens(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer
) -> None:
    assert sign_up(environ, db, "target@example.org", honeypot="http://spam.example") is Outcome.CHECK_INBOX
    assert smtp_server.received == []
    assert "target@example.org" not in subscriber_rows(environ)


def test_a_bad_address_gets_the_form_again_with_the_reason(environ: dict[str, str], db: Database) -> None:
    answer = signup.sign_up(settings_from(environ), db, form(environ, "not-an-address"), now=LATER)
    assert answer.outcome is Outcome.INVALID_EMAIL and answer.error and "not-an-address" in answer.error


def test_links_expire_and_the_daemon_purges_stale_pending_rows(
    environ: dict[str, str], db: Database, smtp_server: SmtpServer
) -> None:
    environ = {**environ, "DIGEST_CONFIRM_TTL": "2d"}
    settings = settings_from(environ)
    sign_up(environ, db, "late@example.org")
    token = confirm_link(smtp_server, "late@example.org")
    assert signup.confirm(settings, db, token, now=LATER + timedelta(days=2, minutes=1)) is None
    assert signup.purge_expired(settings, db, now=LATER + timedelta(days=1)) == 0
    assert signup.purge_expired(settings, db, now=LATER + timedelta(days=2, minutes=1)) == 1
    assert "late@example.org" not in subscriber_rows(environ)


def test_pending_subscribers_are_listed_apart(environ: dict[str, str], db: Database) -> None:
    sign_up(environ, db, "waiting@example.org")
    add_subscribers(environ, "ada@example.com")
    pending = run_cli(["subscribers", "list", "--status", "pending", "--format", "csv"], environ).stdout
    active = run_cli(["subscribers", "list", "--format", "csv"], environ).stdout
    assert "waiting@example.org" in pending and "ada@example.com" not in pending
    assert "waiting@example.org" not in active


def test_form_snippet_posts_to_the_public_url_with_a_honeypot(environ: dict[str, str]) -> None:
    from lxml import html as lxml_html

    result = run_cli(["form-snippet"], environ)

    assert result.exit_code == 0, result.output
    [page_form] = lxml_html.fragment_fromstring(result.stdout, create_parent="div").findall(".//form")
    assert page_form.get("action") == "https://fieldnotes.example.org/digest/subscribe"
    assert page_form.get("method") == "post"
    names = [field.get("name") for field in page_form.iter("input")]
    assert names == ["email", "name", "website"]
    trap = page_form.xpath(".//input[@name='website']")[0]
    assert trap.get("tabindex") == "-1" and trap.getparent().get("aria-hidden") == "true"


def test_form_snippet_needs_the_public_url(environ: dict[str, str]) -> None:
    environ = {key: value for key, value in environ.items() if key != "DIGEST_PUBLIC_URL"}
    result = run_cli(["form-snippet"], environ)
    assert result.exit_code == 2
    assert result.output.startswith("Error: DIGEST_PUBLIC_URL: not set")
