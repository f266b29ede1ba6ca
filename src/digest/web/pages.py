"""Pages from the Jinja templates under ``templates/web/``, and the per-request store connection.

Templates are looked up in DIGEST_TEMPLATE_DIR first (a ``web/`` folder in it
overrides any page, and ``web/style.css`` the look), then in the bundled
``templates/``, exactly like the email templates. The stylesheet is put inline
in each page and allowed by its SHA-256 in the Content-Security-Policy, so no
page needs ``'unsafe-inline'``, a second request, or a path that depends on how
the reverse proxy mounts the app.

:func:`db` is the one way a view reaches the database: one SQLite connection
per request (WAL, busy timeout), opened on first use and closed when the
request ends, so no connection is ever shared between threads.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import flask
import jinja2
from markupsafe import Markup
from sqlite_utils import Database

from digest import store
from digest.config import Settings
from digest.errors import ConfigError
from digest.signup import CapWarning

# A web request waits this long for the write lock; then the caller decides
# (a one-click unsubscribe is queued, see digest.unsubscribe_queue).
BUSY_TIMEOUT_MS = 3000


def template_loader(settings: Settings) -> jinja2.BaseLoader:
    from digest.render import bundled_template_dir  # the email's templates folder, bundled or checked out

    search = [str(settings.template_dir)] if settings.template_dir else []
    if settings.template_dir and not settings.template_dir.is_dir():
        raise ConfigError(f"DIGEST_TEMPLATE_DIR: not a folder: {settings.template_dir}")
    search.append(str(bundled_template_dir()))
    return jinja2.FileSystemLoader(search)


def style_hash(style: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")


def load_file(loader: jinja2.BaseLoader, environment: jinja2.Environment, name: str) -> str:
    """A file under the templates as is (the stylesheet, the challenge's script): DIGEST_TEMPLATE_DIR first."""
    source, _filename, _uptodate = loader.get_source(environment, name)
    return source


def render_page(template: str, **context: Any) -> str:
    """``templates/web/<template>`` rendered with the app's stylesheet and list name."""
    app = flask.current_app
    style = Markup(app.config["DIGEST_STYLE"])  # noqa: S704 - the owner's stylesheet file, hashed into the CSP
    return flask.render_template(f"web/{template}", style=style, list_name=app.config["DIGEST_LIST_NAME"], **context)


def page_response(status: int, template: str, **context: Any) -> flask.Response:
    response = flask.make_response(render_page(template, **context), status)
    response.content_type = "text/html; charset=utf-8"
    return response


def message(status: int, title: str, *paragraphs: str) -> flask.Response:
    """A page with a title and a few paragraphs of text (escaped by the template)."""
    return page_response(status, "message.html.j2", title=title, paragraphs=paragraphs)


def settings() -> Settings:
    value: Settings = flask.current_app.config["DIGEST_SETTINGS"]
    return value


def cap_warning() -> CapWarning:
    """This app's throttle of the "hourly cap of confirmation mails reached" warning."""
    value: CapWarning = flask.current_app.config["DIGEST_CAP_WARNING"]
    return value


def db() -> Database:
    """This request's store connection (opened on first use, closed when the request ends)."""
    if "digest_db" not in flask.g:
        path: Path = settings().db_path
        flask.g.digest_db = store.open_db(path, busy_timeout_ms=BUSY_TIMEOUT_MS)
    connection: Database = flask.g.digest_db
    return connection


def close_db(_exc: BaseException | None = None) -> None:
    connection = flask.g.pop("digest_db", None)
    if connection is not None:
        connection.close()
