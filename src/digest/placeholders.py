"""The per-subscriber placeholders a rendered digest carries, unguessable per digest.

A digest is rendered once, with a placeholder where each recipient's address,
unsubscribe link and subscriber's page link go; message.py fills them in per recipient. Were the
placeholders fixed strings, feed HTML containing them (a tracking pixel's
URL, say) would be filled in too, and report every reader's address and
working unsubscribe link to a third party. So each digest gets its own random
nonce, stored with the digest (a send resumed after a crash fills in the same
placeholders), and only the exact placeholder strings are replaced: any other
text, a look-alike included, reaches the reader unchanged.

The placeholders are single words of letters and digits (no hyphen, shorter
than a text line): no wrapping, encoding, inlining or URL quoting changes them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# The fixed strings of digests created before placeholders had a nonce.
LEGACY_UNSUBSCRIBE = "DIGEST-PERSONAL-UNSUBSCRIBE-URL"
LEGACY_RECIPIENT = "DIGEST-PERSONAL-RECIPIENT"
# Digests stored before the subscriber's page existed never contain this one.
LEGACY_SUBSCRIBER_PAGE = "DIGEST-PERSONAL-SUBSCRIBER-PAGE-URL"

_NONCE = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class Placeholders:
    nonce: str  # "" only for a digest stored before nonces existed

    def __post_init__(self) -> None:
        if self.nonce and not _NONCE.fullmatch(self.nonce):
            raise ValueError(f"not a placeholder nonce: {self.nonce!r}")

    @classmethod
    def new(cls) -> Placeholders:
        return cls(secrets.token_hex(12))

    @property
    def unsubscribe(self) -> str:
        return f"DIGESTUNSUBSCRIBEURL{self.nonce}" if self.nonce else LEGACY_UNSUBSCRIBE

    @property
    def recipient(self) -> str:
        return f"DIGESTRECIPIENT{self.nonce}" if self.nonce else LEGACY_RECIPIENT

    @property
    def subscriber_page(self) -> str:
        return f"DIGESTSUBSCRIBERPAGE{self.nonce}" if self.nonce else LEGACY_SUBSCRIBER_PAGE

    @property
    def personal(self) -> tuple[str, ...]:
        """Every placeholder a digest may carry."""
        return (self.unsubscribe, self.recipient, self.subscriber_page)


LEGACY = Placeholders("")
