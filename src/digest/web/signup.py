"""Sign-up with double opt-in (issue 12): replaced by its own change; registered by create_app."""

from __future__ import annotations

import flask

blueprint = flask.Blueprint("signup", __name__)
