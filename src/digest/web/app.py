"""The app factory: one Flask app over one Settings, with every guarantee of security.py."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import flask
from werkzeug.exceptions import HTTPException

from digest import signup
from digest.config import Settings, load_settings
from digest.errors import ConfigError, StoreError
from digest.web import pages, security

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096  # a one-click body is 26 bytes, a sign-up form well under 1 KiB; larger is a 413
_ERROR_TITLES = {
    404: ("Not found", "There is nothing here."),
    405: ("Not allowed", "This address does not accept that kind of request."),
    413: ("Request too large", "The request body is too large."),
}


class _App(flask.Flask):
    def select_jinja_autoescape(self, filename: str | None) -> bool:
        return True  # every template here is HTML or XML: escape everything a template inserts


def create_app(settings: Settings | None = None) -> flask.Flask:
    """The web app for ``settings`` (read from the environment and ./.env when None).

    ConfigError when DIGEST_SECRET is missing: every link the app answers is signed with it.
    """
    settings = settings if settings is not None else load_settings()
    if not settings.secret:
        raise ConfigError("DIGEST_SECRET: not set", hint="the endpoint checks the signature of every unsubscribe link")
    app = _App("digest.web", static_folder=None, template_folder=None)
    app.session_interface = security.NoSessions()
    app.jinja_loader = pages.template_loader(settings)
    style = pages.load_file(app.jinja_loader, app.jinja_env, "web/style.css")
    display_name = settings.sender_address.display_name if settings.sender else ""
    prefix = urlsplit(settings.public_url).path.rstrip("/") if settings.public_url else ""
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        DIGEST_SETTINGS=settings,
        DIGEST_STYLE=style,
        DIGEST_STYLE_HASH=pages.style_hash(style),
        DIGEST_CSP=security.content_security_policy([pages.style_hash(style)]),
        DIGEST_CSP_SCRIPTS=security.content_security_policy([pages.style_hash(style)], scripts=True),
        DIGEST_CHALLENGE_JS=pages.load_file(app.jinja_loader, app.jinja_env, "web/challenge.js"),
        DIGEST_PATH_PREFIX=prefix,  # DIGEST_PUBLIC_URL's path: served with or without it
        DIGEST_LIST_NAME=display_name or "this newsletter",
        DIGEST_CAP_WARNING=signup.CapWarning(),  # this app's throttle of the hourly-cap warning
    )
    app.url_map.strict_slashes = False  # "/archive/" is not "/archive": no redirects
    _register(app)
    app.teardown_appcontext(pages.close_db)
    app.after_request(security.add_headers)
    app.after_request(_log_request)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreError, _store_unavailable)
    app.register_error_handler(Exception, _server_error)
    app.wsgi_app = security.behind_proxies(  # type: ignore[method-assign,assignment]
        security.PrefixPaths(app.wsgi_app, prefix), settings.trusted_proxies
    )
    return app


def served_pages(settings: Settings) -> str:
    """What the app answers with ``settings``, in words, for ``digest serve``'s first line."""
    parts = ["sign-up and confirm (/subscribe)"] if settings.signup else []
    parts += ["the archive (/archive)"] if settings.archive else []
    parts += ["the subscriber's page (/subscriber)", "one-click unsubscribe (/unsubscribe)", "/healthz"]
    return ", ".join(parts)


def _register(app: flask.Flask) -> None:
    from digest.web import archive, health, signup, subscriber, unsubscribe

    for module in (health, unsubscribe, subscriber, archive, signup):
        app.register_blueprint(module.blueprint)


def _log_request(response: flask.Response) -> flask.Response:
    # The client as ProxyFix saw it; never the query string (it holds tokens).
    request = flask.request
    log.debug("%s %s %s %d", request.remote_addr, request.method, request.path, response.status_code)
    return response


def _http_error(error: HTTPException) -> flask.Response:
    code = error.code or 500
    title, text = _ERROR_TITLES.get(code, (f"Error {code}", "The request could not be handled."))
    response = pages.message(code, title, text)
    if code == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


def _store_unavailable(error: StoreError) -> flask.Response:
    # A database locked past the busy timeout (a big import), full or unreadable:
    # the reader may try again; no traceback, the cause is the store's one line.
    log.warning("web: %s %s: database unavailable: %s", flask.request.method, flask.request.path, error)
    response = pages.message(503, "Try again later", "The service is busy. Please try again in a minute.")
    response.headers["Retry-After"] = "60"
    return response


def _server_error(error: Exception) -> flask.Response:
    log.exception("web: %s %s failed", flask.request.method, flask.request.path)
    return pages.message(500, "Something went wrong", "Please try again later.")
