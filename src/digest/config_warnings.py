"""Warnings about a configuration that loads but will not do what its owner expects.

Pure functions over plain data, called once by the configuration loader: a
key that digest does not know (a typo such as ``SMTP_HOTS`` would otherwise be
ignored in silence), a DKIM domain that DMARC will not accept for the From
address, and a From address at a free-mail provider whose own DMARC policy
tells receivers to reject mail sent from anywhere else. Each warning is one
line that says why.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

PREFIXES = ("DIGEST_", "SMTP_")

# Providers that publish DMARC p=reject or p=quarantine for their own domains:
# mail From them that they did not send is refused or filed as spam.
_FREE_MAIL_NAMES = """
    gmail.com googlemail.com yahoo.com ymail.com rocketmail.com aol.com aim.com outlook.com hotmail.com
    live.com msn.com icloud.com me.com mac.com gmx.com gmx.net gmx.de web.de mail.com yandex.ru yandex.com
    mail.ru protonmail.com proton.me zoho.com fastmail.com qq.com 163.com 126.com
"""
_FREE_MAIL = frozenset(_FREE_MAIL_NAMES.split())
_FREE_MAIL_PREFIXES = ("yahoo.", "hotmail.", "outlook.", "live.", "gmx.")


def unknown_keys(present: Iterable[str], known: Iterable[str]) -> list[str]:
    """One warning per ``DIGEST_*``/``SMTP_*`` name in ``present`` that is not in ``known``."""
    known_set = set(known)
    warnings = []
    for key in sorted(set(present)):
        if not key.startswith(PREFIXES) or key in known_set:
            continue
        close = difflib.get_close_matches(key, known_set, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{key}: not a digest setting, ignored{hint}")
    return warnings


def is_free_mail(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    return domain in _FREE_MAIL or domain.startswith(_FREE_MAIL_PREFIXES)


def _aligned(signing: str, author: str) -> bool:
    # DMARC's relaxed alignment: one domain is the other or a parent of it
    # (exact organisational domains would need the public suffix list).
    signing, author = signing.lower().rstrip("."), author.lower().rstrip(".")
    return author == signing or author.endswith("." + signing) or signing.endswith("." + author)


def sender_warnings(from_domain: str | None, dkim_domain: str | None) -> list[str]:
    """Warnings about the From address's domain and the DKIM signing domain."""
    warnings = []
    if from_domain and is_free_mail(from_domain):
        warnings.append(
            f"DIGEST_FROM: {from_domain} is a free-mail provider whose DMARC policy makes receivers reject "
            "or junk mail it did not send itself; send from an address at your own domain"
        )
    if from_domain and dkim_domain and not _aligned(dkim_domain, from_domain):
        warnings.append(
            f"DIGEST_DKIM_DOMAIN: {dkim_domain} is not aligned with the From domain {from_domain}, "
            "so DMARC will fail; sign with the From domain (or a parent of it)"
        )
    return warnings
