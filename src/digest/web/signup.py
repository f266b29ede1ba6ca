"""Sign-up with double opt-in: the pages over :mod:`digest.signup`'s rules.

* ``GET /subscribe``: the form (email, optional name) with a fresh form token.
* ``POST /subscribe``: the rules decide; the answer is the same "check your
  inbox" page whatever the address's state. A post without a valid form
  token (the snippet on a static blog, a script) gets the form back,
  pre-filled, with one more button; a client over its hourly limit gets 429,
  a flood past the hourly mail cap 503, both with a neutral "try later".
* ``GET /confirm?token=T``: a page with a button, never a confirmation
  (mail scanners follow links). ``POST /confirm?token=T``: confirms.
* ``GET /static/challenge.js``: with DIGEST_SIGNUP_CHALLENGE=altcha, the
  script that solves the form's proof-of-work challenge (the form's page then
  allows ``script-src 'self'``, and says under ``<noscript>`` that it needs
  JavaScript). It is the only script the app ever serves.

Otherwise no JavaScript; no cookie; the honeypot field is hidden with the
``hidden`` attribute (no inline style: the CSP allows none). All routes are
404 when DIGEST_SIGNUP is off.
"""

from __future__ import annotations

import json

import flask

from digest import signup
from digest.signup import Outcome, SignupForm
from digest.web import pages

blueprint = flask.Blueprint("signup", __name__)
CHALLENGE_SCRIPT = "/static/challenge.js"

_SENT = (
    "Check your inbox",
    "If this address can receive the newsletter, a message with a confirmation link is on its way. "
    "Open it and press the button on the page it leads to.",
    "Nothing arrived? Look in the spam folder; the link works for a few days.",
)


@blueprint.before_request
def _only_when_on() -> None:
    if not pages.settings().signup:
        flask.abort(404)


@blueprint.get("/subscribe")
def form() -> flask.Response:
    return _form_page(200, SignupForm(email=""), notice=None)


@blueprint.post("/subscribe")
def subscribe() -> flask.Response:
    settings = pages.settings()
    values = flask.request.form
    submitted = SignupForm(
        email=values.get("email", "")[:320],
        name=values.get("name", "")[:200],
        form_token=values.get("form_token"),
        honeypot=values.get("website", ""),
        client=flask.request.remote_addr or "",
        challenge=values.get("altcha"),
    )
    answer = signup.sign_up(settings, pages.db(), submitted, cap_warning=pages.cap_warning())
    if answer.outcome is Outcome.CHECK_INBOX:
        return pages.message(200, *_SENT)
    if answer.outcome is Outcome.ONE_MORE_STEP:
        return _form_page(200, submitted, notice="One more step: press the button to subscribe.")
    if answer.outcome is Outcome.INVALID_EMAIL:
        return _form_page(400, submitted, error=answer.error)
    if answer.outcome is Outcome.SLOW_DOWN:
        response = pages.message(
            429, "Too many sign-ups", "Too many sign-ups came from your network. Please try again in an hour."
        )
    else:
        response = pages.message(
            503, "Please try again later", "Sign-ups are paused for a while. Please try again later."
        )
    response.headers["Retry-After"] = "3600"
    return response


def _form_page(
    status: int, submitted: SignupForm, notice: str | None = None, error: str | None = None
) -> flask.Response:
    settings = pages.settings()
    challenge = signup.issue_challenge(settings)
    response = pages.page_response(
        status,
        "subscribe.html.j2",
        title="Subscribe",
        email=submitted.email,
        name=submitted.name,
        form_token=signup.issue_form_token(settings),
        challenge=json.dumps(challenge, separators=(",", ":")) if challenge else None,
        script_url=flask.current_app.config["DIGEST_PATH_PREFIX"] + CHALLENGE_SCRIPT,
        notice=notice,
        error=error,
    )
    if challenge:
        response.headers["Content-Security-Policy"] = flask.current_app.config["DIGEST_CSP_SCRIPTS"]
    return response


@blueprint.get(CHALLENGE_SCRIPT)
def challenge_script() -> flask.Response:
    """The script that solves the form's challenge; ours, from ``templates/web/challenge.js``."""
    if pages.settings().signup_challenge == "off":
        flask.abort(404)
    response = flask.make_response(flask.current_app.config["DIGEST_CHALLENGE_JS"], 200)
    response.content_type = "text/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _token() -> str | None:
    return flask.request.form.get("token") or flask.request.args.get("token")


@blueprint.get("/confirm")
def confirm_page() -> flask.Response:
    if not signup.confirmation_is_live(pages.settings(), pages.db(), _token()):
        return _dead_link()
    return pages.page_response(200, "confirm.html.j2", title="Confirm your subscription")


@blueprint.post("/confirm")
def confirm() -> flask.Response:
    subscriber = signup.confirm(pages.settings(), pages.db(), _token())
    if subscriber is None:
        return _dead_link()
    return pages.message(
        200,
        "You are subscribed",
        "Thank you: your address is confirmed, and the next digest will reach you.",
        "Every digest has a link to unsubscribe in one click.",
    )


def _dead_link() -> flask.Response:
    return pages.message(
        400,
        "This link does not work",
        "It has expired, was already used, or a newer confirmation mail replaced it. "
        "To subscribe, fill in the form again.",
    )
