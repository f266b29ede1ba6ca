"""The public archive (DIGEST_ARCHIVE): ``/archive``, ``/archive/<id>``, ``/archive.atom``.

A digest is stored rendered once for everyone, with random placeholders
where each recipient's address, unsubscribe link and subscriber's page link
go (placeholders.py). The archive copy fills them with neutral text: "a
reader" and the tokenless ``/unsubscribe`` and ``/subscriber`` pages (which
explain that links come from emails), so no subscriber's address or working
link is ever on a public page.

The copy is the email's HTML as sent: premailer's inline ``style``
attributes and its ``<style>`` block. Its CSP allows exactly those styles by
their SHA-256 (``'unsafe-hashes'`` for the attributes), images over http(s)
(the posts' own), and still no script or framing; never ``'unsafe-inline'``.
"""

from __future__ import annotations

import html
import math

import flask
import lxml.html

from digest import store
from digest.models import SQLITE_MAX_INTEGER
from digest.placeholders import Placeholders
from digest.web import security
from digest.web.pages import db, message, page_response, render_page, settings, style_hash

blueprint = flask.Blueprint("archive", __name__)
PER_PAGE = 20
NEUTRAL_RECIPIENT = "a reader"


def public_link(path: str) -> str:
    """``path`` under DIGEST_PUBLIC_URL (under the app's own root when that is not set)."""
    return (settings().public_url or flask.request.host_url.rstrip("/") + flask.request.script_root) + path


@blueprint.before_request
def archive_enabled() -> flask.Response | None:
    if not settings().archive:
        return message(404, "Not found", "There is nothing here.")
    return None


def _public(response: flask.Response) -> flask.Response:
    response.headers["Cache-Control"] = "public, max-age=300"  # the posts are public; no personal part here
    response.headers["X-Robots-Tag"] = "noindex"  # the blog itself is the page to find
    return response


@blueprint.get("/archive")
def listing() -> flask.Response:
    total = store.archived_count(db())
    pages = max(1, math.ceil(total / PER_PAGE))
    number = flask.request.args.get("page", "1")
    if not number.isdigit() or not 1 <= int(number) <= pages:
        return message(404, "Not found", "There is no such page of the archive.")
    page = int(number)
    rows = store.archived_digests(db(), PER_PAGE, (page - 1) * PER_PAGE)
    items = [{**row, "url": public_link(f"/archive/{row['id']}"), "date": row["published"][:10]} for row in rows]
    response = page_response(
        200, "archive.html.j2", title="Archive", items=items, page=page, pages=pages,
        newer=public_link(f"/archive?page={page - 1}") if page > 1 else None,
        older=public_link(f"/archive?page={page + 1}") if page < pages else None,
        feed=public_link("/archive.atom"),
    )  # fmt: skip
    return _public(response)


# A number SQLite cannot hold is no digest: a 404, not an OverflowError.
@blueprint.get(f"/archive/<int(max={SQLITE_MAX_INTEGER}):digest_id>")
def one(digest_id: int) -> flask.Response:
    row = store.archived_digest(db(), digest_id)
    if row is None:
        return message(404, "Not found", "There is no such digest in the archive.")
    document = neutral_copy(row["html"], Placeholders(row["placeholder_nonce"] or ""))
    response = flask.make_response(document, 200)
    response.content_type = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = security.content_security_policy(
        document_styles(document), images=True
    )
    return _public(response)


@blueprint.get("/archive.atom")
def feed() -> flask.Response:
    rows = store.archived_digests(db(), PER_PAGE)
    entries = [{**row, "url": public_link(f"/archive/{row['id']}")} for row in rows]
    body = render_page(
        "archive.atom.j2", entries=entries, feed_url=public_link("/archive.atom"), archive_url=public_link("/archive"),
        updated=rows[0]["updated"] if rows else "1970-01-01T00:00:00Z",
    )  # fmt: skip
    response = flask.make_response(body, 200)
    response.content_type = "application/atom+xml; charset=utf-8"
    return _public(response)


def neutral_copy(document: str, placeholders: Placeholders) -> str:
    """The stored digest with its personal placeholders filled with neutral values."""
    values = {
        placeholders.unsubscribe: public_link("/unsubscribe"),
        placeholders.recipient: NEUTRAL_RECIPIENT,
        placeholders.subscriber_page: public_link("/subscriber"),
    }
    for placeholder, value in values.items():
        document = document.replace(placeholder, html.escape(value))
    return document


def document_styles(document: str) -> list[str]:
    """The CSP sources allowing exactly the ``<style>`` elements and ``style`` attributes of ``document``."""
    tree = lxml.html.document_fromstring(document)
    sources = {style_hash(element.text or "") for element in tree.iter("style")}
    attributes = {style_hash(value) for value in tree.xpath("//@style")}
    return sorted(sources) + (["unsafe-hashes", *sorted(attributes)] if attributes else [])
