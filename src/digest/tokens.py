"""Unsubscribe tokens as they appear in links: ``<subscriber token>.<signature>``.

Each subscriber has a random token in the database; links carry it with an
HMAC-SHA256 signature keyed by DIGEST_SECRET. A leaked database alone cannot
forge links, nor can the secret alone. Rotating DIGEST_SECRET invalidates the
unsubscribe links in mail already sent: do it only if the secret leaked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_SHAPE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{22})$")


def _signature(secret: str, token: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), b"unsubscribe\0" + token.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode("ascii").rstrip("=")


def link_token(secret: str, token: str) -> str:
    return f"{token}.{_signature(secret, token)}"


def verify_link_token(secret: str, value: str) -> str | None:
    """The subscriber token inside ``value`` if its signature is right, else None."""
    match = _SHAPE.match(value or "")
    if not match:
        return None
    token, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(secret, token)):
        return None
    return token


# Where links point when DIGEST_PUBLIC_URL is not set (a preview): a name that never resolves.
PLACEHOLDER_BASE = "https://unsubscribe.invalid"


def public_base(public_url: str | None) -> str:
    return (public_url or PLACEHOLDER_BASE).rstrip("/")


def unsubscribe_url(public_url: str | None, secret: str, token: str) -> str:
    """The one-click unsubscribe link of the subscriber whose random token is ``token``."""
    return f"{public_base(public_url)}/unsubscribe?token={link_token(secret, token)}"
