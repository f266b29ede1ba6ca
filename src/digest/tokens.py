"""Per-subscriber tokens as they appear in links: ``<subscriber token>.<signature>``.

Each subscriber has a random token in the database; links carry it with an
HMAC-SHA256 signature keyed by DIGEST_SECRET. A leaked database alone cannot
forge links, nor can the secret alone. Rotating DIGEST_SECRET invalidates the
links in mail already sent: do it only if the secret leaked.

Two kinds of link carry it, each signed under its own label so that neither
is valid as the other: the one-click unsubscribe link (``unsubscribe``) and
the subscriber's page, "Manage your subscription" (``subscriber``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_SHAPE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{22})$")


UNSUBSCRIBE = "unsubscribe"
SUBSCRIBER_PAGE = "subscriber"


def _signature(secret: str, token: str, purpose: str) -> str:
    label = purpose.encode("ascii") + b"\0"
    mac = hmac.new(secret.encode("utf-8"), label + token.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode("ascii").rstrip("=")


def link_token(secret: str, token: str, purpose: str = UNSUBSCRIBE) -> str:
    return f"{token}.{_signature(secret, token, purpose)}"


def verify_link_token(secret: str, value: str, purpose: str = UNSUBSCRIBE) -> str | None:
    """The subscriber token inside ``value`` if its signature for ``purpose`` is right, else None."""
    match = _SHAPE.match(value or "")
    if not match:
        return None
    token, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(secret, token, purpose)):
        return None
    return token


# Where links point when DIGEST_PUBLIC_URL is not set (a preview): a name that never resolves.
PLACEHOLDER_BASE = "https://unsubscribe.invalid"


def public_base(public_url: str | None) -> str:
    return (public_url or PLACEHOLDER_BASE).rstrip("/")


def unsubscribe_url(public_url: str | None, secret: str, token: str) -> str:
    """The one-click unsubscribe link of the subscriber whose random token is ``token``."""
    return f"{public_base(public_url)}/unsubscribe?token={link_token(secret, token)}"


def subscriber_page_url(public_url: str | None, secret: str, token: str) -> str:
    """The link to the subscriber's own page (unsubscribe, or subscribe again after a mistaken click)."""
    return f"{public_base(public_url)}/subscriber?token={link_token(secret, token, SUBSCRIBER_PAGE)}"
