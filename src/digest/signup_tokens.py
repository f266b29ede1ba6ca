"""The signed tokens of the web sign-up, both HMAC-SHA256 with DIGEST_SECRET.

* A *form token* is issued with the hosted sign-up page: ``<issued>.<nonce>.<sig>``.
  A POST must carry one that is at least a few seconds old (a person reads
  the form; a bot posts at once) and at most a day old, and each nonce is
  accepted once (the store remembers spent ones), so a token cannot be
  reused for a list of addresses.
* A *confirmation token* is the one link in the confirmation email:
  ``<subscriber token>.<nonce>.<expires>.<sig>``. It works until it expires
  (DIGEST_CONFIRM_TTL) and only while its nonce is the subscriber's current
  one, so it is single-use and a newer mail's link replaces an older one.

Each kind signs under its own label, so no token of one kind (nor an
unsubscribe link) is ever valid as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_FORM = re.compile(r"^(\d{1,12})\.([A-Za-z0-9_-]{16,32})\.([A-Za-z0-9_-]{22})$")
_CONFIRM = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{16,32})\.(\d{1,12})\.([A-Za-z0-9_-]{22})$")


def _mac(secret: str, label: str, payload: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{label}\0{payload}".encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode("ascii").rstrip("=")


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def form_token(secret: str, issued: int, nonce: str | None = None) -> str:
    payload = f"{issued}.{nonce or new_nonce()}"
    return f"{payload}.{_mac(secret, 'signup-form', payload)}"


@dataclass(frozen=True)
class FormCheck:
    nonce: str | None  # set only when the token is well signed
    problem: str | None  # None: usable; else missing | forged | too-fresh | expired


def check_form_token(secret: str, value: str | None, now: int, *, min_age: float, max_age: float) -> FormCheck:
    match = _FORM.match(value or "")
    if not match:
        return FormCheck(None, "missing" if not value else "forged")
    issued, nonce, signature = match.groups()
    if not hmac.compare_digest(signature, _mac(secret, "signup-form", f"{issued}.{nonce}")):
        return FormCheck(None, "forged")
    age = now - int(issued)
    if age < min_age:
        return FormCheck(nonce, "too-fresh")
    if age > max_age:
        return FormCheck(nonce, "expired")
    return FormCheck(nonce, None)


def confirm_token(secret: str, subscriber_token: str, nonce: str, expires: int) -> str:
    payload = f"{subscriber_token}.{nonce}.{expires}"
    return f"{payload}.{_mac(secret, 'signup-confirm', payload)}"


@dataclass(frozen=True)
class ConfirmLink:
    subscriber_token: str
    nonce: str


def check_confirm_token(secret: str, value: str | None, now: int) -> ConfirmLink | None:
    """The subscriber token and nonce of a well-signed, unexpired confirmation link, else None."""
    match = _CONFIRM.match(value or "")
    if not match:
        return None
    token, nonce, expires, signature = match.groups()
    if not hmac.compare_digest(signature, _mac(secret, "signup-confirm", f"{token}.{nonce}.{expires}")):
        return None
    if now > int(expires):
        return None
    return ConfirmLink(token, nonce)
