"""The optional proof-of-work challenge of the sign-up form (DIGEST_SIGNUP_CHALLENGE=altcha).

The challenge is ALTCHA's classic format, made and checked by the ``altcha``
package (its reference implementation): the page carries a salt, a SHA-256
hash and an HMAC signature of that hash; the browser tries numbers from 0
to ``maxNumber`` until SHA-256(salt + number) is the hash, and posts the
number back with the rest (``templates/web/challenge.js``). The server
checks the signature and the hash, the expiry embedded in the (signed)
salt, and accepts each solved challenge once (the store keeps the spent
ones beside the spent form tokens).

Why this format and not ALTCHA's newer key-derivation one: plain SHA-256 is
what WebCrypto computes in every browser, so the script that solves it stays
a page of our own code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from altcha.v1 import ChallengeOptions, Payload, create_challenge, verify_solution

# The number the browser must find is drawn uniformly from 0..MAX_NUMBER: on
# average MAX_NUMBER / 2 hashes. Our script does about 55,000 a second in
# headless Chromium on one loaded core of the development machine (2026-12-03,
# load 4.5 on 2 cores); a phone is two to four times slower, so a reader waits
# about a second on average, a few at worst. A bot with native SHA-256 pays
# some tens of milliseconds of CPU per sign-up.
MAX_NUMBER = 50_000
_MAX_PAYLOAD = 1024  # a real one is about 300 characters
_FIELDS = ("algorithm", "challenge", "salt", "signature")


def hmac_key(secret: str) -> str:
    """The challenges' own HMAC key, derived from DIGEST_SECRET (never the secret itself)."""
    return hmac.new(secret.encode("utf-8"), b"digest signup-challenge", hashlib.sha256).hexdigest()


def issue(secret: str, now: float, max_age: float, max_number: int = MAX_NUMBER) -> dict[str, Any]:
    """A fresh challenge for the page, valid for ``max_age`` seconds from ``now`` (JSON-ready)."""
    options = ChallengeOptions(
        hmac_key=hmac_key(secret),
        max_number=max_number,
        expires=datetime.fromtimestamp(now + max_age, UTC),
    )
    challenge: dict[str, Any] = create_challenge(options).to_dict()
    return challenge


@dataclass(frozen=True)
class ChallengeCheck:
    key: str | None  # what to spend once: the signed hash, set only when the solution is good
    problem: str | None  # None: solved; else missing | malformed | wrong | expired


def check(secret: str, value: str | None, now: float) -> ChallengeCheck:
    """Whether ``value`` (the posted ``altcha`` field) solves a challenge this server issued."""
    if not value:
        return ChallengeCheck(None, "missing")
    payload = _parse(value)
    if payload is None:
        return ChallengeCheck(None, "malformed")
    ok, _error = verify_solution(payload, hmac_key(secret), check_expires=False)
    if not ok:
        return ChallengeCheck(None, "wrong")
    _nonce, expires, _params = payload.parse_salt()
    if expires is None or now > expires:  # every challenge we issue carries its expiry, signed
        return ChallengeCheck(None, "expired")
    return ChallengeCheck(payload.challenge, None)


def _parse(value: str) -> Payload | None:
    """The payload in the field (base64 of a JSON object), or None for anything else."""
    if len(value) > _MAX_PAYLOAD:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(name), str) for name in _FIELDS):
        return None
    number = data.get("number")
    if data["algorithm"] != "SHA-256" or not isinstance(number, int) or isinstance(number, bool) or number < 0:
        return None
    return Payload("SHA-256", data["challenge"], number, data["salt"], data["signature"])
