"""``GET /healthz``: ``ok`` when the database can be read, for monitoring (503 otherwise)."""

from __future__ import annotations

import logging

import flask

from digest import store
from digest.errors import DigestError
from digest.web.pages import db

log = logging.getLogger(__name__)
blueprint = flask.Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> flask.Response:
    try:
        store.count_subscribers(db())
    except DigestError as exc:
        log.warning("healthz: %s", exc)
        return _text(503, "database unavailable\n")
    return _text(200, "ok\n")


def _text(status: int, body: str) -> flask.Response:
    return flask.Response(body, status, content_type="text/plain; charset=utf-8")
