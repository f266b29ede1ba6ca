"""RFC 8058 one-click unsubscribe: ``/unsubscribe?token=T``.

* ``GET`` shows the masked address and a button. It never unsubscribes: mail
  scanners and link previewers follow every link.
* ``POST`` unsubscribes at once and answers 200 with a short page: no
  redirect, no cookie, no confirmation step. The body is
  ``List-Unsubscribe=One-Click`` (form-urlencoded or multipart), as mail
  providers and the button send it. An EMPTY body is accepted too: only a
  deliberate POST reaches this, scanners do not POST, and refusing it would
  leave subscribed someone who asked to leave. A body that says something
  else is refused. Bodies over MAX_BODY_BYTES get a 413 (chunked ones too:
  waitress decodes them).
* ``HEAD`` is answered like ``GET``, without the body.

``T`` is ``tokens.link_token``: the subscriber's random token plus an HMAC
with DIGEST_SECRET. A malformed token, a bad signature and an unknown
subscriber all get the same neutral 400 response, byte for byte, so the
endpoint cannot be used to learn who is subscribed.

The POST is one short write on this request's own connection. When a long
write transaction elsewhere (a big import) holds the lock for more than
ONE_CLICK_WAIT_MS, the request is appended to the durable queue beside the database
(digest.unsubscribe_queue), which every send applies before it starts, and
the reader is told they are unsubscribed: they are, for every future send.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
from urllib.parse import parse_qs

import flask

from digest import store, subscribers, tokens, unsubscribe_queue
from digest.errors import DatabaseError, DigestError, InvalidRequest
from digest.models import Subscriber
from digest.web.pages import db, message, page_response, settings

log = logging.getLogger(__name__)
blueprint = flask.Blueprint("unsubscribe", __name__)
ONE_CLICK = ("List-Unsubscribe", "One-Click")
# How long an unsubscribe waits for the write lock before it is queued. Short:
# the queue is as durable as the table, and a request that waits holds one of
# the server's few threads (bench/web.py: with the web app's 3 s, twenty
# one-clicks during a big import held every thread for up to 8 s).
ONE_CLICK_WAIT_MS = 500


def neutral() -> flask.Response:
    return message(
        400,
        "Link not valid",
        "This link is not valid. Please use the link from a recent email, "
        "or reply to that email and ask to be removed.",
    )


def unavailable() -> flask.Response:
    return message(503, "Try again later", "The service is busy. Please try again in a minute.")


def one_click_body(content_type: str, body: bytes) -> bool:
    """Whether ``body`` asks for one-click unsubscribe (an empty body counts: see module docstring)."""
    if not body.strip():
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
        parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not parsed.is_multipart():
            return False
        for part in parsed.iter_parts():
            if part.get_param("name", header="content-disposition") == ONE_CLICK[0]:
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes) and payload.strip() == ONE_CLICK[1].encode("ascii"):
                    return True
        return False
    # application/x-www-form-urlencoded, and the same text under any other type.
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return False
    return ONE_CLICK[1] in fields.get(ONE_CLICK[0], [])


def link_token(purpose: str = tokens.UNSUBSCRIBE) -> str:
    """The subscriber token the request's signed ``token`` names; InvalidRequest otherwise."""
    values = flask.request.args.getlist("token")
    secret = settings().secret or ""
    token = tokens.verify_link_token(secret, values[0], purpose) if len(values) == 1 else None
    if token is None:
        raise InvalidRequest
    return token


def subscriber_for(token: str) -> Subscriber:
    subscriber = store.get_by_token(db(), token)
    if subscriber is None:
        raise InvalidRequest
    return subscriber


def unsubscribe(token: str, reason: str = "one-click") -> Subscriber:
    """Unsubscribe the token's subscriber, queueing the change when the database stays locked.

    Returns the subscriber as it was before. A queued change is applied as a
    one-click one (the queue holds tokens only): a reason that left by itself, either way.
    """
    subscriber = subscriber_for(token)
    try:
        with store.busy_timeout(db(), ONE_CLICK_WAIT_MS):
            store.unsubscribe_token(db(), token, reason)
    except DatabaseError as exc:
        if not exc.busy:
            raise
        unsubscribe_queue.append(settings().db_path, token)
        log.warning("subscriber %d: database busy; unsubscribe (%s) queued for the next send", subscriber.id, reason)
    else:
        log.info("subscriber %d unsubscribed (%s)", subscriber.id, reason)
    return subscriber


@blueprint.route("/unsubscribe", methods=["GET", "POST"])
def one_click() -> flask.Response:
    request = flask.request
    body_ok = request.method != "POST" or one_click_body(
        request.headers.get("Content-Type", ""), request.get_data(cache=False)
    )
    if not body_ok:
        return neutral()
    try:
        token = link_token()
        subscriber = unsubscribe(token) if request.method == "POST" else subscriber_for(token)
    except InvalidRequest:
        return neutral()
    except DigestError as exc:
        log.warning("unsubscribe: database unavailable: %s", exc)
        return unavailable()
    masked = subscribers.mask_email(subscriber.email)
    list_name = flask.current_app.config["DIGEST_LIST_NAME"]
    if request.method == "POST":
        return message(200, "You are unsubscribed", f"{masked} will receive no more emails from {list_name}.")
    if subscriber.status == "unsubscribed":
        return message(200, "Already unsubscribed", f"{masked} receives no emails from {list_name}.")
    return page_response(200, "unsubscribe.html.j2", title="Unsubscribe?", masked=masked)
