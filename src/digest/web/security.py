"""What every response carries, and what no request can make the app do.

* Security headers on every answer (errors included): a Content-Security-Policy
  that allows no script, no plugin, no framing and only the page's own inline
  stylesheet by hash (never ``'unsafe-inline'``); the one exception is the
  sign-up form with DIGEST_SIGNUP_CHALLENGE=altcha, whose policy adds
  ``script-src 'self'`` for the app's own challenge script (no inline script,
  no eval, no worker, no connection); nosniff; no Referer (tokens
  travel in URLs); no caching of personal pages; noindex.
* No cookies: the app has no session (a session that cannot be saved), and any
  ``Set-Cookie`` a future view might add is dropped.
* The path of DIGEST_PUBLIC_URL is accepted in front of every route, so the app
  works whether or not the reverse proxy strips that prefix.
* ``X-Forwarded-For``/``-Proto`` count only from DIGEST_TRUSTED_PROXIES
  (werkzeug's ProxyFix): a number of hops, or the proxies' own addresses.
"""

from __future__ import annotations

import contextlib
import http
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import flask
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

BASE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),  # tokens are in URLs
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def content_security_policy(style_sources: Iterable[str], *, images: bool = False, scripts: bool = False) -> str:
    """The policy of every page; ``scripts`` lets in the app's own script files (the sign-up challenge's)."""
    styles = " ".join(f"'{source}'" for source in style_sources)
    return (
        f"default-src 'none'; style-src {styles}; "
        + ("img-src https: data:; " if images else "")
        + ("script-src 'self'; " if scripts else "")
        + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def add_headers(response: flask.Response) -> flask.Response:
    with contextlib.suppress(ValueError):  # werkzeug writes "400 BAD REQUEST"; the RFC's phrase reads better
        response.status = f"{response.status_code} {http.HTTPStatus(response.status_code).phrase}"
    for name, value in BASE_HEADERS:
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    response.headers.setdefault("Content-Security-Policy", flask.current_app.config["DIGEST_CSP"])
    response.headers.pop("Set-Cookie", None)  # never: the app keeps no state in the browser
    response.headers.pop("Vary", None) if response.headers.get("Vary") == "Cookie" else None
    return response


class NoSessions(SessionInterface):
    """No session at all: ``flask.session`` is a null session that refuses writes."""

    def open_session(self, app: flask.Flask, request: flask.Request) -> SessionMixin | None:
        return None  # Flask then gives the null session

    def save_session(self, app: flask.Flask, session: SessionMixin, response: flask.Response) -> None:
        return None


class PrefixPaths:
    """Serve ``/news/archive`` like ``/archive`` when DIGEST_PUBLIC_URL's path is ``/news``."""

    def __init__(self, app: WSGIApplication, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        path = environ.get("PATH_INFO", "")
        if self.prefix and path.startswith(self.prefix + "/"):
            environ["PATH_INFO"] = path[len(self.prefix) :]
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
        return self.app(environ, start_response)


class TrustedProxies:
    """ProxyFix for one hop, applied only when the connection comes from one of ``networks``."""

    def __init__(self, app: WSGIApplication, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(network) for network in networks]
        self.plain = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)

    def trusted(self, address: str) -> bool:
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in network for network in self.networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if self.trusted(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        return self.plain(environ, start_response)


def behind_proxies(app: WSGIApplication, trusted: int | tuple[str, ...]) -> WSGIApplication:
    if isinstance(trusted, int):
        return ProxyFix(app, x_for=trusted, x_proto=trusted) if trusted else app
    return TrustedProxies(app, trusted)
