"""The subscriber's page, ``/subscriber?token=T``: the "Manage your subscription" link of every email.

* ``GET`` shows the masked address, its state, and at most one button: for
  an active address "Unsubscribe"; for one that left by itself (one-click or
  this page) "Subscribe again" (when DIGEST_SIGNUP is on). It never changes
  anything: mail scanners follow every link.
* ``POST`` with ``action=unsubscribe`` unsubscribes at once (queued like a
  one-click when the database stays locked) and shows the page again, now
  with the button to undo a mistaken click. ``action=resubscribe`` mails a
  fresh confirmation (:mod:`digest.resubscribe`: never a direct
  reactivation; the address is active again once its link is used).
* An address that bounced, reported the digest as spam, or was removed by
  the owner gets no button.

``T`` is ``tokens.link_token(..., SUBSCRIBER_PAGE)``: the subscriber's random
token signed under a label of its own, so a one-click link is not a page link
nor the other way round. A bad token gets the one-click endpoint's neutral
400, byte for byte. No JavaScript, no cookie: the buttons are plain forms
that post to this very URL.
"""

from __future__ import annotations

import dataclasses
import logging

import flask

from digest import resubscribe, subscribers, tokens
from digest.errors import DigestError, InvalidRequest
from digest.models import Subscriber
from digest.resubscribe import Resubscribe
from digest.web import pages
from digest.web.unsubscribe import link_token, neutral, subscriber_for, unavailable, unsubscribe

log = logging.getLogger(__name__)
blueprint = flask.Blueprint("subscriber", __name__)


def state_of(subscriber: Subscriber) -> str:
    """What the page shows: active | pending | left (by themselves) | closed (bounce, spam report) | removed."""
    if subscriber.status in ("active", "pending"):
        return subscriber.status
    if subscriber.left_by_themselves:
        return "left"
    if subscriber.status == "bounced" or subscriber.unsubscribe_reason in ("bounce", "complaint"):
        return "closed"
    return "removed"


def _page(status: int, subscriber: Subscriber, notice: str | None = None) -> flask.Response:
    settings = pages.settings()
    return pages.page_response(
        status,
        "subscriber.html.j2",
        title="Your subscription",
        masked=subscribers.mask_email(subscriber.email),
        state=state_of(subscriber),
        can_resubscribe=settings.signup,
        notice=notice,
    )


@blueprint.get("/subscriber")
def show() -> flask.Response:
    try:
        subscriber = subscriber_for(link_token(tokens.SUBSCRIBER_PAGE))
    except InvalidRequest:
        return neutral()
    except DigestError as exc:
        log.warning("subscriber page: database unavailable: %s", exc)
        return unavailable()
    return _page(200, subscriber)


@blueprint.post("/subscriber")
def change() -> flask.Response:
    action = flask.request.form.get("action", "")
    try:
        token = link_token(tokens.SUBSCRIBER_PAGE)
        if action == "unsubscribe":
            return _unsubscribed(unsubscribe(token, "page"))
        if action == "resubscribe":
            return _resubscribed(subscriber_for(token))
    except InvalidRequest:
        return neutral()
    except DigestError as exc:
        log.warning("subscriber page: database unavailable: %s", exc)
        return unavailable()
    return neutral()


def _unsubscribed(before: Subscriber) -> flask.Response:
    # Shown from what was asked, not re-read: a queued change is not in the table yet.
    after = before
    if before.status != "unsubscribed":
        reason = "bounce" if before.status == "bounced" else "page"
        after = dataclasses.replace(before, status="unsubscribed", unsubscribe_reason=reason)
    return _page(200, after, notice="You are unsubscribed.")


def _resubscribed(subscriber: Subscriber) -> flask.Response:
    settings = pages.settings()
    if not settings.signup:
        outcome = Resubscribe.NOT_ALLOWED
    else:
        outcome = resubscribe.from_page(settings, pages.db(), subscriber, cap_warning=pages.cap_warning())
    masked = subscribers.mask_email(subscriber.email)
    if outcome is Resubscribe.MAILED:
        return pages.message(
            200,
            "Check your inbox",
            f"A confirmation email is on its way to {masked}.",
            "Open it and press the button on the page its link leads to: the digest starts again from then on.",
        )
    if outcome is Resubscribe.RECENTLY_MAILED:
        return pages.message(
            200,
            "Check your inbox",
            f"A confirmation email was sent to {masked} a short while ago, and its link still works.",
            "Open it and press the button on the page it leads to. Nothing arrived? Look in the spam folder.",
        )
    if outcome is Resubscribe.NOT_ALLOWED:
        return _page(400, subscriber, notice="This address cannot be subscribed again from this page.")
    response = pages.message(503, "Please try again later", "No confirmation email can be sent right now.")
    response.headers["Retry-After"] = "3600"
    return response
