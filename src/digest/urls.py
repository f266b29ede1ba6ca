"""URLs from untrusted text, split and joined without raising.

``urllib.parse`` raises ValueError on text a feed, a post or a config file
can hold: an unclosed IPv6 bracket, a bracketed host that is not an address,
a port out of range or not a number, a host that NFKC-normalises into a
delimiter. Every URL digest reads from outside goes through these helpers: a
URL they cannot read counts as no URL (a link dropped, a base ignored), and
never stops a check or a render.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urljoin, urlsplit


def split(url: str) -> SplitResult | None:
    """``url`` split, its hostname and port readable; None when it is not a URL Python can read."""
    try:
        parts = urlsplit(url)
        _ = parts.hostname, parts.port  # both are checked lazily, on first use: check them here
    except ValueError:
        return None
    return parts


def scheme(url: str) -> str:
    """The URL's scheme in lower case; "" when it has none or cannot be read."""
    parts = split(url)
    return parts.scheme.lower() if parts is not None else ""


def join(base: str, url: str) -> str | None:
    """``url`` resolved against ``base``; None when either cannot be read."""
    try:
        joined = urljoin(base, url)
    except ValueError:
        return None
    return joined if split(joined) is not None else None
