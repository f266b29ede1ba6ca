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
        assert _row(env, "lena@example.com")[:3] == ("bounced", "bounce", None)
        assert signups.confirm(db, token, nonce, WHEN) is None
        assert _row(env, "lena@example.com")[0] == "bounced"
    finally:
        db.close()


def test_confirm_refuses_a_bounced_reason_even_with_a_live_nonce(env: dict[str, str]) -> None:
    add_subscribers(env, "mia@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        token, nonce = _live_link(db, "mia@example.com")
        with sqlite3.connect(env["DIGEST_DB"]) as conn:  # an older row: unsubscribed after bouncing
            conn.execute("UPDATE subscribers SET status = 'unsubscribed', unsubscribe_reason = 'bounce'")
        assert signups.confirm(db, token, nonce, WHEN) is None
        assert _row(env, "mia@example.com")[:2] == ("unsubscribed", "bounce")
    finally:
        db.close()


def test_one_click_on_a_bounced_address_keeps_it_bounced(env: dict[str, str]) -> None:
    add_subscribers(env, "nora@example.com")
    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        subscriber = store.get_by_email(db, "nora@example.com")
        assert subscriber is not None
        _event(db, "nora@example.com", "hard", "h1")  # processed after the page read the row
        assert store.unsubscribe_token(db, subscriber.token) is not None  # still answered: neutral success
        assert _row(env, "nora@example.com")[:2] == ("bounced", "bounce")
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
