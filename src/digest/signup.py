"""Sign-up with double opt-in: what a POST /subscribe and a confirmation do.

No web framework here: :mod:`digest.web.signup` turns HTTP into these calls
and their outcomes into pages. The rules, in the order they are applied:

1. Every POST counts against its client address (DIGEST_SIGNUP_PER_IP per
   hour); past it, a neutral "try later" answer (``SLOW_DOWN``).
2. A filled honeypot field is a bot: it gets the ordinary "check your inbox"
   answer and nothing is sent or stored.
3. Without a valid form token (signed by the hosted page, at least
   DIGEST_SIGNUP_MIN_AGE and at most a day old, never used before) the
   visitor gets the hosted form back, pre-filled, with one more button
   (``ONE_MORE_STEP``). A form on a static blog therefore works in two
   presses, and a direct POST from a script never sends mail. With
   DIGEST_SIGNUP_CHALLENGE=altcha the post must also carry the solution of
   the proof-of-work challenge of the hosted page (:mod:`digest.signup_challenge`),
   each accepted once; without it, the same answer.
4. An address email-validator refuses gets the form again with the reason.
5. Past DIGEST_SIGNUP_MAILS_PER_HOUR confirmation mails in the last hour,
   sign-ups get "try later" (``TRY_LATER``) and a warning is logged.
6. Otherwise the answer is "check your inbox" (``CHECK_INBOX``) whatever
   the address's state, so the form tells nobody who is subscribed. A
   confirmation is mailed only to a new or pending address, or to one that
   unsubscribed (the only way back is this double opt-in), and at most once
   per address per DIGEST_CONFIRM_INTERVAL; never to an active address, a
   bounced one or one that reported the digest as spam.

The warning of rule 5 is logged at most once per five minutes by a
:class:`CapWarning` that its caller owns (one per web app), so a flood does
not flood the log too, and no state outlives the app that saw the flood.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlite_utils import Database

from digest import signup_challenge, signup_mail, signup_tokens, tokens
from digest.config import Settings
from digest.errors import ConfigError, ConnectFailure, InputError, SendError
from digest.message import OutgoingMessage
from digest.models import Subscriber
from digest.store import signups as store
from digest.subscribers import clean_name, normalise_email

log = logging.getLogger(__name__)

FORM_TOKEN_MAX_AGE = 86400.0
MailSender = Callable[[Settings, OutgoingMessage], None]


class Outcome(enum.Enum):
    CHECK_INBOX = "check-inbox"
    ONE_MORE_STEP = "one-more-step"
    INVALID_EMAIL = "invalid-email"
    SLOW_DOWN = "slow-down"
    TRY_LATER = "try-later"


@dataclass(frozen=True)
class SignupForm:
    email: str
    name: str = ""
    form_token: str | None = None
    honeypot: str = ""
    client: str = ""
    challenge: str | None = None  # the solved proof-of-work (the ``altcha`` field), when it is on


@dataclass(frozen=True)
class SignupAnswer:
    outcome: Outcome
    form: SignupForm
    error: str | None = None


def issue_form_token(settings: Settings, now: datetime | None = None) -> str:
    return signup_tokens.form_token(_secret(settings), int((now or _now()).timestamp()))


def sign_up(
    settings: Settings,
    db: Database,
    form: SignupForm,
    *,
    now: datetime | None = None,
    send: MailSender = signup_mail.send,
    cap_warning: CapWarning | None = None,
) -> SignupAnswer:
    """Apply the rules to ``form``; ``cap_warning`` throttles rule 5's warning (a fresh one warns at once)."""
    now = now or _now()
    hour_ago = now - timedelta(hours=1)
    if store.count_events(db, "request", hour_ago, form.client) >= settings.signup_per_ip:
        log.info("sign-up: client %s over DIGEST_SIGNUP_PER_IP", form.client)
        return SignupAnswer(Outcome.SLOW_DOWN, form)
    store.record_request(db, form.client, now)
    if form.honeypot.strip():
        log.info("sign-up: honeypot field filled (a bot): nothing sent")
        return SignupAnswer(Outcome.CHECK_INBOX, form)
    if not _came_from_our_page(settings, db, form, now):
        return SignupAnswer(Outcome.ONE_MORE_STEP, form)
    try:
        email = normalise_email(form.email, allow_test_domains=settings.allow_test_domains)
    except InputError as exc:
        return SignupAnswer(Outcome.INVALID_EMAIL, form, error=str(exc))
    if store.count_events(db, "mail", hour_ago) >= settings.signup_mails_per_hour:
        (cap_warning or CapWarning())(settings)
        return SignupAnswer(Outcome.TRY_LATER, form)
    state = store.request_signup(db, email, clean_name(form.name), now)
    if not _may_mail(settings, state, now):
        return SignupAnswer(Outcome.CHECK_INBOX, form)
    try:
        if not mail_confirmation(settings, db, state.subscriber, now, send):
            return SignupAnswer(Outcome.TRY_LATER, form)
    except StaleSubscriber:
        pass  # the same neutral answer: the form tells nobody what happened to an address
    return SignupAnswer(Outcome.CHECK_INBOX, form)


def _came_from_our_page(settings: Settings, db: Database, form: SignupForm, now: datetime) -> bool:
    """Rule 3: a usable form token, spent now, and with the challenge on a solution, spent now too."""
    check = signup_tokens.check_form_token(
        _secret(settings),
        form.form_token,
        int(now.timestamp()),
        min_age=settings.signup_min_age,
        max_age=FORM_TOKEN_MAX_AGE,
    )
    if check.problem is not None or check.nonce is None or not store.spend_form_token(db, check.nonce, now):
        log.info("sign-up: form token %s: the form is shown again", check.problem or "replayed")
        return False
    if settings.signup_challenge == "off":
        return True
    solved = signup_challenge.check(_secret(settings), form.challenge, now.timestamp())
    if solved.problem is not None or solved.key is None or not store.spend_challenge(db, solved.key, now):
        log.info("sign-up: challenge %s: the form is shown again", solved.problem or "replayed")
        return False
    return True


def issue_challenge(settings: Settings, now: datetime | None = None) -> dict[str, Any] | None:
    """A fresh proof-of-work challenge for the hosted form, or None when DIGEST_SIGNUP_CHALLENGE is off."""
    if settings.signup_challenge == "off":
        return None
    return signup_challenge.issue(_secret(settings), (now or _now()).timestamp(), FORM_TOKEN_MAX_AGE)


def _may_mail(settings: Settings, state: store.SignupState, now: datetime) -> bool:
    status = state.subscriber.status
    if status in ("active", "bounced") or state.subscriber.unsubscribe_reason in ("complaint", "bounce"):
        return False
    recent = state.confirm_sent is not None and now - state.confirm_sent < timedelta(seconds=settings.confirm_interval)
    return not recent


class StaleSubscriber(InputError):
    """The address changed between the decision to mail it and the mail: nothing was sent."""


def mail_confirmation(
    settings: Settings,
    db: Database,
    subscriber: Subscriber,
    now: datetime,
    send: MailSender,
    *,
    raise_errors: bool = False,
) -> bool:
    """Mail ``subscriber`` a new confirmation link (the only live one); False if sending failed.

    With ``raise_errors`` the SendError/ConnectFailure is raised instead (after the same clean-up).
    If the row changed since ``subscriber`` was read (a complaint or bounce landed meanwhile),
    nothing is mailed and :class:`StaleSubscriber` is raised.
    """
    nonce = signup_tokens.new_nonce()
    expires = int(now.timestamp() + settings.confirm_ttl)
    token = signup_tokens.confirm_token(_secret(settings), subscriber.token, nonce, expires)
    link = f"{tokens.public_base(settings.public_url)}/confirm?token={quote(token)}"
    message = signup_mail.confirmation(settings, subscriber.email, link, settings.confirm_ttl / 86400, now)
    if not store.start_confirmation(db, subscriber, nonce, now):  # before sending: the link works on arrival
        log.info("sign-up: subscriber %d changed meanwhile: no confirmation mailed", subscriber.id)
        raise StaleSubscriber(f"{subscriber.email} changed while the confirmation was prepared (nothing sent)")
    try:
        send(settings, message)
    except (SendError, ConnectFailure) as exc:
        store.cancel_confirmation(db, subscriber.id)
        if raise_errors:
            raise
        log.error("sign-up: the confirmation mail could not be sent: %s", exc)
        return False
    log.info("sign-up: confirmation mailed (subscriber %d)", subscriber.id)
    return True


def confirmation_is_live(settings: Settings, db: Database, token: str | None) -> bool:
    link = signup_tokens.check_confirm_token(_secret(settings), token, int(time.time()))
    return link is not None and store.confirmation_is_live(db, link.subscriber_token, link.nonce)


def confirm(
    settings: Settings,
    db: Database,
    token: str | None,
    *,
    now: datetime | None = None,
    send: MailSender = signup_mail.send,
) -> Subscriber | None:
    """Activate the subscriber of a live confirmation link and send the welcome; None if the link is dead."""
    now = now or _now()
    link = signup_tokens.check_confirm_token(_secret(settings), token, int(now.timestamp()))
    if link is None:
        return None
    subscriber = store.confirm(db, link.subscriber_token, link.nonce, now)
    if subscriber is None:
        return None
    log.info("sign-up: subscriber %d confirmed", subscriber.id)
    if signup_mail.welcome_available(settings):
        unsubscribe = tokens.unsubscribe_url(settings.public_url, _secret(settings), subscriber.token)
        page = tokens.subscriber_page_url(settings.public_url, _secret(settings), subscriber.token)
        try:
            send(settings, signup_mail.welcome(settings, subscriber.email, unsubscribe, now, page))
        except (SendError, ConnectFailure) as exc:
            log.warning("sign-up: the welcome mail could not be sent: %s", exc)
    return subscriber


def purge_expired(settings: Settings, db: Database, now: datetime | None = None) -> int:
    removed = store.purge(db, now or _now(), settings.confirm_ttl)
    if removed:
        log.info("sign-up: %d expired pending sign-up(s) deleted", removed)
    return removed


class CapWarning:
    """Logs that DIGEST_SIGNUP_MAILS_PER_HOUR was reached, at most once per ``every`` seconds.

    Owned by whoever serves the sign-ups (the web app keeps one for its
    lifetime): the throttle lives and dies with it, never in the module.
    """

    def __init__(self, every: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.last: float | None = None

    def __call__(self, settings: Settings) -> bool:
        """Log the warning unless one was logged less than ``every`` seconds ago; True if logged."""
        moment = self.clock()
        if self.last is not None and moment - self.last < self.every:
            return False
        self.last = moment
        log.warning(
            "sign-up: %d confirmation mails in the last hour (DIGEST_SIGNUP_MAILS_PER_HOUR): "
            "new sign-ups are refused for now; a flood of sign-ups may be under way",
            settings.signup_mails_per_hour,
        )
        return True


def _secret(settings: Settings) -> str:
    if not settings.secret:
        raise ConfigError("DIGEST_SECRET: not set", hint="the sign-up signs its tokens with it")
    return settings.secret


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
