"""digest's public web app: sign-up, confirm, archive, unsubscribe, the subscriber's page, health.

``create_app(settings=None) -> flask.Flask`` is the app factory
(``digest.web:create_app``); without settings it reads them from the
environment and ./.env, so any WSGI server can mount it
(``gunicorn 'digest.web:create_app()'``). ``digest run`` and ``digest serve``
serve it with waitress (server.py) on DIGEST_HTTP_LISTEN.

The package:

- app.py          the factory: config, blueprints, error pages, middlewares
- security.py     headers and CSP, no cookies, the path prefix, trusted proxies
- pages.py        templates under templates/web/ (DIGEST_TEMPLATE_DIR overrides),
                  and ``pages.db()``: THE per-request store connection (flask.g,
                  closed at teardown). Views use it and nothing else.
- unsubscribe.py  RFC 8058 one-click unsubscribe
- subscriber.py   the subscriber's page ("Manage your subscription"): unsubscribe, or ask to come back
- archive.py      the public archive and its Atom feed
- health.py       ``/healthz``
- signup.py       sign-up with double opt-in (the "signup" blueprint)
- server.py       waitress in a thread, stopped cleanly; slow clients bounded

Views answer with ``pages.message(...)`` / ``pages.page_response(...)`` so every
page has the same look, the same headers and the inline stylesheet the CSP allows.
TLS and HTTP/2 belong to the reverse proxy in front (DIGEST_HTTP_LISTEN should be
a loopback address).
"""

from digest.web.app import MAX_BODY_BYTES, create_app, served_pages

__all__ = ["MAX_BODY_BYTES", "create_app", "served_pages"]
