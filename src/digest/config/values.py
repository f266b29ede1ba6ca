"""One value of one key, parsed and checked: numbers, switches, addresses, URLs.

Pure functions over strings: each raises :class:`ConfigError` naming the key
and the bad value, which the CLI shows as ``Error: KEY: ...`` with exit 2.
"""

from __future__ import annotations

import ipaddress
import math
import re
from email.headerregistry import Address
from urllib.parse import SplitResult, quote

from digest import urls
from digest.errors import ConfigError
from digest.headers import ascii_domain
from digest.schedule import parse_duration

_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_HOSTNAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}")
_ADDRESS_EXAMPLE = "e.g. 'My Blog <news@example.com>'"
_URL_HINT = "e.g. https://example.com/digest (no query, fragment or user name)"


def duration(key: str, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def integer(key: str, value: str, *, minimum: int, maximum: int | None = None) -> int:
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        raise ConfigError(f"{key}: not a whole number: {value!r}") from None
    if len(str(abs(number))) > 15:
        raise ConfigError(f"{key}: must be {bounds} (and sane), not {value!r}")
    if number < minimum or (maximum is not None and number > maximum):
        raise ConfigError(f"{key}: must be {bounds}, not {number}")
    return number


def number(key: str, value: str) -> float:
    try:
        result = float(value)
    except ValueError:
        raise ConfigError(f"{key}: not a number: {value!r}") from None
    if not math.isfinite(result):
        raise ConfigError(f"{key}: must be a finite number, not {value!r}")
    if result < 0:
        raise ConfigError(f"{key}: must not be negative, not {value}")
    return result


def boolean(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: must be true or false, not {value!r}")


def choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` lower-cased when it is one of ``choices``."""
    lowered = value.lower()
    if lowered not in choices:
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise ConfigError(f"{key}: must be {listed}, not {value!r}")
    return lowered


def _split_display_name(value: str) -> tuple[str, str]:
    """``Name <addr>`` -> (name, addr), unquoting a quoted name; ``addr`` -> ("", addr)."""
    name, addr = "", value.strip()
    if addr.endswith(">") and "<" in addr:
        name, _, addr = addr[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name, addr.strip()


def _check_local_part(key: str, value: str, local: str) -> None:
    if not local.isascii():
        raise ConfigError(
            f"{key}: the part before @ must be ASCII in {value!r}",
            hint="a non-ASCII local part needs SMTPUTF8 on every server on the way; use an ASCII address",
        )
    if not _DOT_ATOM.fullmatch(local) or len(local) > 64:
        raise ConfigError(f"{key}: not an email address: {value!r}", hint=_ADDRESS_EXAMPLE)


def _mail_domain(key: str, value: str, domain: str) -> str:
    try:
        domain = ascii_domain(domain)
    except ValueError:
        raise ConfigError(f"{key}: not a valid domain name in {value!r}", hint=_ADDRESS_EXAMPLE) from None
    if not _HOSTNAME.fullmatch(domain) or len(domain) > 253:
        raise ConfigError(f"{key}: not a valid domain name in {value!r}", hint=_ADDRESS_EXAMPLE)
    return domain


def parse_address(key: str, value: str) -> Address:
    """``Name <addr>`` or ``addr`` as an Address with its domain in ASCII (IDNA) form.

    Strict on purpose: exactly one address, an ASCII local part (digest
    does not send from internationalised addresses, which need SMTPUTF8 on
    every hop) and a real host name. The display name is untrusted text that
    headers.py cleans and encodes.
    """
    if any(c in value for c in "\r\n\x00"):
        raise ConfigError(f"{key}: must be a single line")
    name, addr = _split_display_name(value)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c in addr for c in ' <>,;"()[]\\\t'):
        raise ConfigError(
            f"{key}: not an email address (one, as Name <addr> or addr): {value!r}", hint=_ADDRESS_EXAMPLE
        )
    _check_local_part(key, value, local)
    return Address(display_name=name, username=local, domain=_mail_domain(key, value, domain))


def _check_url_form(key: str, value: str, parts: SplitResult) -> int | None:
    """The URL's shape (scheme, no query, no user); its port."""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: not an http(s) URL: {value!r}", hint=_URL_HINT)
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigError(f"{key}: must not have a query or fragment: {value!r}", hint=_URL_HINT)
    if "@" in parts.netloc:
        raise ConfigError(f"{key}: must not contain a user name or password: {value!r}", hint=_URL_HINT)
    try:
        return parts.port
    except ValueError:
        raise ConfigError(f"{key}: bad port in {value!r}", hint=_URL_HINT) from None


def _url_host(key: str, value: str, host: str) -> str:
    """The host in ASCII, bracketed when it is an IPv6 address."""
    try:
        ascii_host = host if host.startswith("[") or ":" in host else ascii_domain(host)
    except ValueError:
        raise ConfigError(f"{key}: not a valid host name in {value!r}", hint=_URL_HINT) from None
    if not (ascii_host.isascii() and (":" in ascii_host or re.fullmatch(r"[A-Za-z0-9.-]+", ascii_host))):
        raise ConfigError(f"{key}: not a valid host name in {value!r}", hint=_URL_HINT)
    return f"[{ascii_host}]" if ":" in ascii_host else ascii_host


def public_url(value: str) -> str:
    """DIGEST_PUBLIC_URL, checked: every unsubscribe link and List-Unsubscribe header is built from it."""
    key = "DIGEST_PUBLIC_URL"
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ConfigError(f"{key}: must not contain spaces or control characters: {value!r}", hint=_URL_HINT)
    parts = urls.split(value)
    if parts is None:  # an unclosed [ or a bracketed host that is no address
        raise ConfigError(f"{key}: not a valid URL: {value!r}", hint=_URL_HINT)
    port = _check_url_form(key, value, parts)
    netloc = _url_host(key, value, parts.hostname or "")
    if port is not None:
        netloc += f":{port}"
    path = quote(parts.path, safe="/%!$&'()*+,;=:@~-._")
    return f"{parts.scheme.lower()}://{netloc}{path}".rstrip("/")


def listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"DIGEST_HTTP_LISTEN: expected HOST:PORT, not {value!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"DIGEST_HTTP_LISTEN: port out of range in {value!r}")
    return host, number


def trusted_proxies(key: str, value: str) -> int | tuple[str, ...]:
    """A number of proxy hops (0 to 5), or a comma list of proxy addresses or networks."""
    if value.isdigit():
        if len(value) > 1 or int(value) > 5:
            raise ConfigError(f"{key}: at most 5 proxy hops")
        return int(value)
    networks = []
    for item in (part.strip() for part in value.split(",")):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{key}: not a number of hops or an IP address/network: {item[:60]!r}", hint="e.g. 1, or 127.0.0.1,::1"
            ) from None
    return tuple(networks)


def feed_url_problem(value: str) -> str | None:
    """Why ``value`` cannot name a feed, or None: a URL Python cannot read, an http(s) URL with no host,
    an unsupported scheme. Anything with no scheme (or a one-letter one: a Windows drive) is a path."""
    parts = urls.split(value)
    if parts is None:
        return f"not a valid URL (check the host and the port): {value!r}"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not parts.hostname:
        return f"no host in {value!r}"
    if len(scheme) > 1 and scheme not in ("http", "https", "file"):
        return f"unsupported URL scheme {scheme!r} in {value!r}"
    return None


def is_feed_url(value: str) -> bool:
    """A feed named by URL (http, https, file), not by a local path; ``value`` has passed feed_url_problem."""
    return urls.scheme(value) in ("http", "https", "file")


DEFAULT_CODE_STYLE = "default"


def check_code_style(name: str) -> None:
    if name == DEFAULT_CODE_STYLE:
        return  # Pygments always has it: a command that renders nothing need not import Pygments to know
    from pygments.styles import STYLE_MAP, get_all_styles

    # The built-in names first: get_all_styles() also asks every installed
    # package for plugin styles (importlib.metadata), which costs every command.
    if name not in STYLE_MAP and name not in set(get_all_styles()):
        raise ConfigError(f"DIGEST_CODE_STYLE: unknown Pygments style {name!r}", hint="see `pygmentize -L styles`")
