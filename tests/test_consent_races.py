"""Consent after a complaint or bounce: no old link, page or owner command brings the address back by mistake."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest import store
from digest.store import signups
from helpers import add_subscribers, run_cli

WHEN = datetime(2026, 11, 1, 9, tzinfo=UTC)
POLICY = store.BouncePolicy(threshold=3.0, hard_immediate=True, reset=timedelta(days=30))


def _row(env: dict[str, str], email: str) -> tuple[Any, ...]:
    with sqlite3.connect(env["DIGEST_DB"]) as conn:
        row: tuple[Any, ...] = conn.execute(
            "SELECT status, unsubscribe_reason, confirm_nonce, token FROM subscribers WHERE email = ?", [email]
        ).fetchone()
    return row


def _event(db: Any, email: str, kind: str, key: str) -> store.AppliedBounce:
    subscriber = store.get_by_email(db, email)
    assert subscriber is not None
    return store.apply_event(db, subscriber, kind=kind, digest_id=None, status_code=None, diagnostic="",
                             source="test", message_key=key, policy=POLICY, when=WHEN)  # fmt: skip


def _live_link(db: Any, email: str) -> tuple[str, str]:
    subscriber = store.get_by_email(db, email)
    assert subscriber is not None
    assert signups.start_confirmation(db, subscriber, "nonce-1", WHEN)
    return subscriber.token, "nonce-1"


def test_a_complaint_after_one_click_blocks_the_way_back(env: dict[str, str]) -> None:
    add_subscribers(env, "kate@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        token, nonce = _live_link(db, "kate@example.com")
        store.unsubscribe_token(db, token)
        assert _row(env, "kate@example.com")[:2] == ("unsubscribed", "one-click")
        applied = _event(db, "kate@example.com", "complaint", "c1")
        assert applied.changed
        assert _row(env, "kate@example.com")[:3] == ("unsubscribed", "complaint", None)
        left = store.get_by_email(db, "kate@example.com")
        assert left is not None and not left.left_by_themselves
        assert signups.confirm(db, token, nonce, WHEN) is None  # the link mailed before the complaint is dead
        assert _row(env, "kate@example.com")[0] == "unsubscribed"
    finally:
        db.close()


def test_a_hard_bounce_on_an_unsubscribed_address_kills_its_live_link(env: dict[str, str]) -> None:
    add_subscribers(env, "lena@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        token, nonce = _live_link(db, "lena@example.com")
        store.unsubscribe_token(db, token)
        _live_link(db, "lena@example.com")  # asked to come back from the page: a link is on its way
        _event(db, "lena@example.com", "hard", "h1")
        # Still the reader's own choice (unsubscribed), never `bounced`: plain `reactivate` would undo that.
        assert _row(env, "lena@example.com")[:3] == ("unsubscribed", "one-click", None)
        assert signups.confirm(db, token, nonce, WHEN) is None
        assert _row(env, "lena@example.com")[0] == "unsubscribed"
    finally:
        db.close()


def test_the_owners_confirmation_link_works_for_an_address_removed_after_bouncing(env: dict[str, str]) -> None:
    add_subscribers(env, "mia@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        _event(db, "mia@example.com", "hard", "h1")
        store.remove_subscriber(db, "mia@example.com")  # the owner: unsubscribed, reason bounce
        assert _row(env, "mia@example.com")[:2] == ("unsubscribed", "bounce")
        token, nonce = _live_link(db, "mia@example.com")  # `add --resubscribe` mails a link
        assert signups.confirm(db, token, nonce, WHEN) is not None  # they pressed it: their consent
        assert _row(env, "mia@example.com")[:2] == ("active", None)
    finally:
        db.close()


def test_one_click_on_a_bounced_address_is_their_choice_and_plain_reactivate_refuses_it(
    env: dict[str, str],
) -> None:
    add_subscribers(env, "nora@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        subscriber = store.get_by_email(db, "nora@example.com")
        assert subscriber is not None
        _event(db, "nora@example.com", "hard", "h1")  # processed after the page read the row
        assert store.unsubscribe_token(db, subscriber.token) is not None  # still answered: neutral success
        assert _row(env, "nora@example.com")[:2] == ("unsubscribed", "bounce")
        left = store.get_by_email(db, "nora@example.com")
        assert left is not None and not left.left_by_themselves  # no page offers the way back either
    finally:
        db.close()
    result = run_cli(["subscribers", "reactivate", "nora@example.com"], env)
    assert result.exit_code == 2, result.output
    assert _row(env, "nora@example.com")[:2] == ("unsubscribed", "bounce")


def test_a_bounce_on_a_pending_sign_up_leaves_it_pending_and_kills_its_link(env: dict[str, str]) -> None:
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        state = signups.request_signup(db, "omar@example.com", None, WHEN)
        assert signups.start_confirmation(db, state.subscriber, "nonce-1", WHEN)
        _event(db, "omar@example.com", "hard", "h1")  # the confirmation mail bounced
        assert _row(env, "omar@example.com")[:3] == ("pending", None, None)
        assert signups.confirm(db, state.subscriber.token, "nonce-1", WHEN) is None
    finally:
        db.close()
    result = run_cli(["subscribers", "reactivate", "omar@example.com"], env)
    assert result.exit_code == 2, result.output  # never active without confirming
    assert _row(env, "omar@example.com")[0] == "pending"


def test_a_bounce_decided_on_an_old_copy_of_the_row_keeps_a_newer_complaint(env: dict[str, str]) -> None:
    add_subscribers(env, "pete@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        old_copy = store.get_by_email(db, "pete@example.com")  # read by a send before the complaint landed
        assert old_copy is not None and old_copy.status == "active"
        _event(db, "pete@example.com", "complaint", "c1")
        store.apply_event(db, old_copy, kind="hard", digest_id=None, status_code="550", diagnostic="",
                          source="smtp", message_key=None, policy=POLICY, when=WHEN)  # fmt: skip
        assert _row(env, "pete@example.com")[:2] == ("unsubscribed", "complaint")
    finally:
        db.close()


def test_every_complaint_kills_the_live_link_even_after_an_earlier_one(env: dict[str, str]) -> None:
    add_subscribers(env, "quinn@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        _event(db, "quinn@example.com", "complaint", "c1")
        token, nonce = _live_link(db, "quinn@example.com")  # `reactivate --force` mailed a link
        _event(db, "quinn@example.com", "complaint", "c2")  # and they reported that one too
        assert _row(env, "quinn@example.com")[:3] == ("unsubscribed", "complaint", None)
        assert signups.confirm(db, token, nonce, WHEN) is None
    finally:
        db.close()


def test_the_page_rechecks_the_row_before_mailing_a_confirmation(env: dict[str, str]) -> None:
    from digest import resubscribe
    from helpers import settings_from

    add_subscribers(env, "olga@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        subscriber = store.get_by_email(db, "olga@example.com")
        assert subscriber is not None
        store.unsubscribe_token(db, subscriber.token)
        seen = store.get_by_email(db, "olga@example.com")  # what the page read
        assert seen is not None and seen.left_by_themselves
        _event(db, "olga@example.com", "complaint", "c1")  # lands before the button is pressed
        sent: list[Any] = []
        outcome = resubscribe.from_page(settings_from(env), db, seen, now=WHEN, send=lambda *a, **k: sent.append(a))
        assert outcome is resubscribe.Resubscribe.NOT_ALLOWED
        assert sent == []
        assert _row(env, "olga@example.com")[:3] == ("unsubscribed", "complaint", None)
    finally:
        db.close()


def test_a_bounce_after_a_complaint_keeps_the_complaint(env: dict[str, str]) -> None:
    add_subscribers(env, "pia@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        _event(db, "pia@example.com", "complaint", "c1")
        _event(db, "pia@example.com", "hard", "h1")  # `reactivate` would otherwise undo it without consent
        assert _row(env, "pia@example.com")[:2] == ("unsubscribed", "complaint")
    finally:
        db.close()


def test_a_complaint_on_a_bounced_address_needs_consent_to_come_back(env: dict[str, str]) -> None:
    add_subscribers(env, "rita@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        _event(db, "rita@example.com", "hard", "h1")
        assert _row(env, "rita@example.com")[:2] == ("bounced", "bounce")
        assert _event(db, "rita@example.com", "complaint", "c1").changed
        assert _row(env, "rita@example.com")[:2] == ("unsubscribed", "complaint")
    finally:
        db.close()
    result = run_cli(["subscribers", "reactivate", "rita@example.com"], env)
    assert result.exit_code == 2, result.output
    assert "reported the digest as spam" in result.output
    assert _row(env, "rita@example.com")[:2] == ("unsubscribed", "complaint")


def test_a_complaint_between_the_decision_and_the_mail_sends_nothing(env: dict[str, str]) -> None:
    from digest import signup
    from helpers import settings_from

    add_subscribers(env, "sara@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        subscriber = store.get_by_email(db, "sara@example.com")
        assert subscriber is not None
        store.unsubscribe_token(db, subscriber.token)
        state = signups.request_signup(db, "sara@example.com", None, WHEN)  # the decision to mail...
        assert state.subscriber.left_by_themselves
        _event(db, "sara@example.com", "complaint", "c1")  # ...then a complaint lands
        sent: list[Any] = []
        with pytest.raises(signup.StaleSubscriber):
            signup.mail_confirmation(settings_from(env), db, state.subscriber, WHEN, lambda *a, **k: sent.append(a))
        assert sent == []
        assert _row(env, "sara@example.com")[:3] == ("unsubscribed", "complaint", None)
    finally:
        db.close()
