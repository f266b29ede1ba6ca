"""The way back for an address that unsubscribed: a fresh confirmation mail, never a direct reactivation.

An unsubscribed address becomes active again only by pressing the button
behind the link of a new confirmation mail (the double opt-in of
:mod:`digest.signup`). Two places ask for that mail:

* the subscriber's page (``/subscriber``, reached from the link in every
  email), for an address that left by itself (one-click or that page);
  the request keeps to the sign-up's limits: one confirmation per address per
  DIGEST_CONFIRM_INTERVAL (cleared when an address confirms, so a mistaken
  click can be undone at once) and DIGEST_SIGNUP_MAILS_PER_HOUR overall;
* the owner, on their word that the reader asked to come back: ``digest
  subscribers add --resubscribe`` (an unsubscribed address, but not one that
  reported the digest as spam) and ``digest subscribers reactivate --force``
  (one that did).

Why a mail even though the page's link came from the reader's own mailbox:
that link never expires and travels with every forwarded digest, so it shows
that someone once read a copy, not that the address's owner wants the
digest again today. The confirmation also renews the consent record
(``confirmed``). An address that bounced or complained never gets one from
these paths; a bounce is undone with ``digest subscribers reactivate``.

Until the link is used the row stays ``unsubscribed`` with a live
confirmation link: nothing is mailed to it, and an unanswered confirmation
never erases the record that it left (``pending`` rows that expire are deleted).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from digest import signup, signup_mail
from digest.config import Settings
from digest.errors import ConfigError, ConnectFailure, InputError, SendError
from digest.models import Subscriber
from digest.signup import MailSender
from digest.store import signups as store


class Resubscribe(enum.Enum):
    MAILED = "mailed"  # a confirmation mail is on its way
    RECENTLY_MAILED = "recently-mailed"  # one went out within DIGEST_CONFIRM_INTERVAL: use that one
    NOT_ALLOWED = "not-allowed"  # the address did not leave by itself (or bounced, or complained)
    TRY_LATER = "try-later"  # past the hourly cap of confirmation mails, or the mail could not be sent


def from_page(
    settings: Settings,
    db: Database,
    subscriber: Subscriber,
    *,
    now: datetime | None = None,
    send: MailSender = signup_mail.send,
    cap_warning: signup.CapWarning | None = None,
) -> Resubscribe:
    """The subscriber's page asks for ``subscriber`` to come back."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    if not subscriber.left_by_themselves:
        return Resubscribe.NOT_ALLOWED
    if store.count_events(db, "mail", now - timedelta(hours=1)) >= settings.signup_mails_per_hour:
        (cap_warning or signup.CapWarning())(settings)
        return Resubscribe.TRY_LATER
    state = store.request_signup(db, subscriber.email, None, now)
    # Read again inside the sign-up's transaction: a complaint or bounce may have landed since the page loaded.
    if not state.subscriber.left_by_themselves:
        return Resubscribe.NOT_ALLOWED
    if state.confirm_sent is not None and now - state.confirm_sent < timedelta(seconds=settings.confirm_interval):
        return Resubscribe.RECENTLY_MAILED
    try:
        if not signup.mail_confirmation(settings, db, state.subscriber, now, send):
            return Resubscribe.TRY_LATER
    except signup.StaleSubscriber:
        return Resubscribe.NOT_ALLOWED
    return Resubscribe.MAILED


def by_owner(
    settings: Settings,
    db: Database,
    subscriber: Subscriber,
    *,
    after_complaint: bool = False,
    now: datetime | None = None,
    send: MailSender = signup_mail.send,
) -> None:
    """The owner asks for ``subscriber`` to come back: mail a confirmation link now (InputError if it may not).

    For ``digest subscribers add --resubscribe`` (an unsubscribed or pending
    address) and ``digest subscribers reactivate --force`` (one that reported
    the digest as spam: ``after_complaint``). A bounced address is refused:
    ``digest subscribers reactivate`` undoes a bounce. The owner's request
    skips the sign-up's limits. SendError when the mail could not be sent.
    """
    if subscriber.status == "bounced":
        raise InputError(
            f"{subscriber.email} bounced",
            hint="`digest subscribers reactivate` undoes a bounce once the address works again",
        )
    if subscriber.unsubscribe_reason == "complaint" and not after_complaint:
        raise InputError(
            f"{subscriber.email} reported the digest as spam",
            hint="`digest subscribers reactivate --force` mails them a confirmation, only if they asked to come back",
        )
    if subscriber.status not in ("unsubscribed", "pending"):
        raise InputError(f"{subscriber.email} is {subscriber.status} (nothing changed)")
    if not settings.public_url:
        raise ConfigError("DIGEST_PUBLIC_URL: not set", hint="the confirmation link points to the web app")
    moment = now or datetime.now(UTC).replace(microsecond=0)
    try:
        signup.mail_confirmation(settings, db, subscriber, moment, send, raise_errors=True)
    except ConnectFailure as exc:
        raise SendError(f"the confirmation to {subscriber.email} could not be sent: {exc}") from None
