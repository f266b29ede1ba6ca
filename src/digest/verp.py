"""VERP tokens: which (digest, subscriber) a bounce is about, signed with DIGEST_SECRET.

With DIGEST_BOUNCE_ADDRESS=bounces@news.example.com each message goes out
with the envelope sender ``bounces+<token>@news.example.com`` and the same
token in an ``X-Digest-Bounce`` header. The token is ``<digest>-<subscriber>-<mac>``:
decimal ids and a truncated HMAC-SHA256 in lowercase base32, so it survives
MTAs that lowercase local parts. A token whose MAC is wrong names nobody.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

HEADER = "X-Digest-Bounce"
_SHAPE = re.compile(r"(\d{1,12})-(\d{1,12})-([a-z2-7]{16})", re.IGNORECASE)


def _mac(secret: str, digest_id: int, subscriber_id: int) -> str:
    mac = hmac.new(secret.encode(), f"bounce\0{digest_id}\0{subscriber_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:10]).decode("ascii").lower()


def make_token(secret: str, digest_id: int, subscriber_id: int) -> str:
    return f"{digest_id}-{subscriber_id}-{_mac(secret, digest_id, subscriber_id)}"


def envelope_sender(bounce_address: str, token: str) -> str:
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{token}@{domain}"


def verify_token(secret: str, token: str) -> tuple[int, int] | None:
    """(digest_id, subscriber_id) when ``token`` is one of ours, else None."""
    match = _SHAPE.fullmatch(token.strip())
    if not match:
        return None
    digest_id, subscriber_id = int(match.group(1)), int(match.group(2))
    if not hmac.compare_digest(match.group(3).lower(), _mac(secret, digest_id, subscriber_id)):
        return None
    return digest_id, subscriber_id


def find_token(secret: str, text: str) -> tuple[int, int] | None:
    """The first valid token in ``text`` (a bounce with quoted headers, or its To address)."""
    for match in _SHAPE.finditer(text):
        found = verify_token(secret, match.group(0))
        if found is not None:
            return found
    return None
