"""Settings: read once from the environment and a .env file, validated once.

Every other module receives a :class:`Settings` (a frozen dataclass) and never
reads the environment itself. A malformed value raises :class:`ConfigError`
naming the key, which the CLI shows as ``Error: KEY: ...`` with exit code 2.

Precedence: real environment variables win over the env file (python-dotenv's
convention). Relative paths that come from an env file are resolved against
that file's folder, so ``digest --env /srv/blog/digest.env`` works from any
working directory; relative paths from the real environment are resolved
against the working directory.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from digest import config_warnings
from digest.errors import ConfigError

SmtpSecurity = Literal["starttls", "ssl", "none"]
DigestMode = Literal["excerpt", "full"]

DEFAULT_SUBJECT = "{{ feed_title }}: {{ newest.title }}{% if others %} (+{{ others }} more){% endif %}"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days)?\s*$")
_UNIT_SECONDS = {
    None: 1, "s": 1, "sec": 1, "secs": 1,
    "m": 60, "min": 60, "mins": 60,
    "h": 3600, "hr": 3600, "hrs": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # TAB is allowed (an SMTP password may have one)
_CONTROL_ANY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # ... and line breaks, for these keys:
_MULTILINE_KEYS = frozenset({"DIGEST_SUBJECT", "DIGEST_POSTAL_ADDRESS", "DIGEST_FEED_URL"})
_MAX_SECONDS = 366 * 86400.0  # no interval or timeout needs more than a year
_SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class FirstRunPolicy:
    """What the first digest of a newly seen feed may contain."""

    kind: Literal["latest", "all", "none"]
    count: int = 0

    def __str__(self) -> str:
        return f"latest:{self.count}" if self.kind == "latest" else self.kind


@dataclass(frozen=True)
class Settings:
    """Every setting digest knows. Field docs live in config.example.env and the README."""

    feed_urls: tuple[str, ...] = ()
    db_path: Path = Path("digest.db")
    sender: str | None = None  # DIGEST_FROM, already validated "Name <addr>"
    reply_to: str | None = None
    schedule: str = "0 8 * * mon"
    check_interval: float = 1800.0
    timezone: str = "UTC"
    mode: DigestMode = "excerpt"
    excerpt_words: int = 150
    max_entries: int = 20
    max_html_bytes: int = 90_000
    first_run: FirstRunPolicy = field(default_factory=lambda: FirstRunPolicy("latest", 3))
    code_style: str = "default"
    template_dir: Path | None = None
    subject_template: str = DEFAULT_SUBJECT
    public_url: str | None = None
    secret: str | None = field(default=None, repr=False)
    http_listen: tuple[str, int] | None = None
    postal_address: str | None = None
    unsubscribe_mailto: str | None = None
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 10 * 1024 * 1024
    log_level: str | None = None  # None: INFO for the daemon and serve, WARNING for one-shot commands
    bounce_on_5xx: bool = True
    bounce_address: str | None = None  # DIGEST_BOUNCE_ADDRESS: VERP envelope sender base
    bounce_threshold: float = 3.0
    bounce_hard: Literal["immediate", "score"] = "immediate"
    bounce_reset: float = 30 * 86400.0
    bounce_imap_host: str | None = None
    bounce_imap_port: int = 993
    bounce_imap_user: str | None = None
    bounce_imap_password: str | None = field(default=None, repr=False)
    bounce_imap_folder: str = "INBOX"
    bounce_imap_security: SmtpSecurity = "ssl"
    bounce_imap_ca_file: Path | None = None
    bounce_interval: float = 1800.0  # how often the daemon reads the IMAP bounce mailbox
    send_attempts: int = 4
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: Path | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_security: SmtpSecurity = "starttls"
    smtp_timeout: float = 30.0
    smtp_connections: int = 2
    smtp_rate: float = 0.0
    smtp_verify_cert: bool = True
    allow_test_domains: bool = False
    retry_for: float = 2 * 86400.0
    # One line each, for the CLI to print and the daemon to log (config_warnings.py).
    warnings: tuple[str, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sender_address(self) -> Address:
        """DIGEST_FROM as an Address; ConfigError when it is not set."""
        if not self.sender:
            raise ConfigError("DIGEST_FROM: not set", hint="e.g. DIGEST_FROM='My Blog <news@example.com>'")
        return parse_address("DIGEST_FROM", self.sender)

    @property
    def reply_to_address(self) -> Address | None:
        return parse_address("DIGEST_REPLY_TO", self.reply_to) if self.reply_to else None

    def require_feeds(self) -> tuple[str, ...]:
        if not self.feed_urls:
            raise ConfigError("DIGEST_FEED_URL: not set", hint="the URL or path of your blog's RSS/Atom feed")
        return self.feed_urls

    def require_sending(self) -> None:
        """The settings a real send needs beyond those a preview needs."""
        self.sender_address  # noqa: B018 - validates and raises when missing
        if not self.public_url:
            raise ConfigError(
                "DIGEST_PUBLIC_URL: not set",
                hint="every message needs a working one-click unsubscribe link",
            )
        if not self.secret:
            raise ConfigError(
                "DIGEST_SECRET: not set",
                hint="generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )

    def with_db(self, path: Path | None) -> Settings:
        return self if path is None else replace(self, db_path=path)


def load_settings(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``environ`` (default os.environ) over ``env_file``.

    Without ``env_file``, ``./.env`` is read when it exists.
    """
    environ = AskedEnvironment(os.environ if environ is None else environ)
    file_values: dict[str, str] = {}
    base_dir = Path.cwd()
    if env_file is None and Path(".env").is_file():
        env_file = Path(".env")
    if env_file is not None:
        if not env_file.is_file():
            raise ConfigError(f"--env: no such file: {env_file}")
        file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        base_dir = env_file.resolve().parent

    def raw(key: str) -> str | None:
        value = environ.get(key)
        if value is None:
            value = file_values.get(key)
        if value is None:
            return None
        value = value.strip()
        if (_CONTROL_ANY if key in _MULTILINE_KEYS else _CONTROL).search(value):
            raise ConfigError(f"{key}: must not contain control characters: {value!r}")
        return value or None

    def resolved(key: str, value: str) -> Path:
        # A relative path is relative to where it was set: the working
        # directory for the environment, the env file's folder for the file.
        path = Path(value).expanduser()
        if len(value) > 4000 or any(len(part) > 255 for part in path.parts):
            raise ConfigError(f"{key}: not a usable path (too long): {value!r}")
        if path.is_absolute():
            return path
        return (Path.cwd() if key in environ else base_dir) / path

    def path_of(key: str) -> Path | None:
        value = raw(key)
        return None if value is None else resolved(key, value)

    def feed_location(value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme in ("http", "https", "file"):
            return value
        if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
            raise ConfigError(f"DIGEST_FEED_URL: unsupported URL scheme {scheme!r} in {value!r}")
        return str(resolved("DIGEST_FEED_URL", value))

    security = (raw("SMTP_SECURITY") or "starttls").lower()
    if security not in _SMTP_DEFAULT_PORTS:
        raise ConfigError(f"SMTP_SECURITY: must be starttls, ssl or none, not {raw('SMTP_SECURITY')!r}")

    mode = (raw("DIGEST_MODE") or "excerpt").lower()
    if mode not in ("excerpt", "full"):
        raise ConfigError(f"DIGEST_MODE: must be excerpt or full, not {raw('DIGEST_MODE')!r}")

    timezone = raw("DIGEST_TIMEZONE") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"DIGEST_TIMEZONE: unknown time zone {timezone!r}", hint="e.g. Europe/Paris") from None

    sender = raw("DIGEST_FROM")
    if sender is not None:
        parse_address("DIGEST_FROM", sender)
    reply_to = raw("DIGEST_REPLY_TO")
    if reply_to is not None:
        parse_address("DIGEST_REPLY_TO", reply_to)

    public_url = raw("DIGEST_PUBLIC_URL")
    if public_url is not None:
        public_url = _public_url(public_url)

    mailto = raw("DIGEST_UNSUBSCRIBE_MAILTO")
    if mailto is not None:
        # Only the normalised address goes into List-Unsubscribe, never the raw text.
        mailto = parse_address("DIGEST_UNSUBSCRIBE_MAILTO", mailto.removeprefix("mailto:")).addr_spec

    code_style = raw("DIGEST_CODE_STYLE") or Settings.code_style
    _check_code_style(code_style)

    level = raw("DIGEST_LOG_LEVEL")
    if level is not None and level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"DIGEST_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR, not {level!r}")

    dkim = (raw("DIGEST_DKIM_SELECTOR"), raw("DIGEST_DKIM_DOMAIN"), raw("DIGEST_DKIM_KEY_FILE"))
    if any(dkim) and not all(dkim):
        raise ConfigError(
            "DIGEST_DKIM_SELECTOR: DKIM needs all three of DIGEST_DKIM_SELECTOR, "
            "DIGEST_DKIM_DOMAIN and DIGEST_DKIM_KEY_FILE"
        )

    bounce_address = raw("DIGEST_BOUNCE_ADDRESS")
    if bounce_address is not None:
        parsed = parse_address("DIGEST_BOUNCE_ADDRESS", bounce_address)
        if parsed.display_name or "+" in parsed.username:
            raise ConfigError(f"DIGEST_BOUNCE_ADDRESS: a bare address without '+', not {bounce_address!r}")
        if not raw("DIGEST_SECRET"):
            raise ConfigError("DIGEST_BOUNCE_ADDRESS: needs DIGEST_SECRET, which signs the VERP tokens")
        bounce_address = parsed.addr_spec
    bounce_hard = (raw("DIGEST_BOUNCE_HARD") or "immediate").lower()
    if bounce_hard not in ("immediate", "score"):
        raise ConfigError(f"DIGEST_BOUNCE_HARD: must be immediate or score, not {raw('DIGEST_BOUNCE_HARD')!r}")
    bounce_threshold = _number("DIGEST_BOUNCE_THRESHOLD", raw("DIGEST_BOUNCE_THRESHOLD"), 3.0)
    if bounce_threshold < 0.5:
        raise ConfigError(f"DIGEST_BOUNCE_THRESHOLD: must be at least 0.5, not {bounce_threshold}")

    imap_security = (raw("DIGEST_BOUNCE_IMAP_SECURITY") or "ssl").lower()
    if imap_security not in _SMTP_DEFAULT_PORTS:
        raise ConfigError(f"DIGEST_BOUNCE_IMAP_SECURITY: must be ssl, starttls or none, not {imap_security!r}")

    schedule = raw("DIGEST_SCHEDULE") or Settings.schedule
    _check_schedule(schedule)

    feeds = raw("DIGEST_FEED_URL")
    settings = Settings(
        feed_urls=tuple(feed_location(v) for v in re.split(r"[\s,]+", feeds) if v) if feeds else (),
        db_path=path_of("DIGEST_DB") or base_dir / "digest.db",
        sender=sender,
        reply_to=reply_to,
        schedule=schedule,
        check_interval=_duration("DIGEST_CHECK_INTERVAL", raw("DIGEST_CHECK_INTERVAL"), 1800.0),
        timezone=timezone,
        mode=mode,  # type: ignore[arg-type]
        excerpt_words=_integer("DIGEST_EXCERPT_WORDS", raw("DIGEST_EXCERPT_WORDS"), 150, minimum=10),
        max_entries=_integer("DIGEST_MAX_ENTRIES", raw("DIGEST_MAX_ENTRIES"), 20, minimum=1),
        max_html_bytes=_integer("DIGEST_MAX_HTML_BYTES", raw("DIGEST_MAX_HTML_BYTES"), 90_000, minimum=10_000),
        first_run=_first_run(raw("DIGEST_FIRST_RUN")),
        code_style=code_style,
        template_dir=path_of("DIGEST_TEMPLATE_DIR"),
        subject_template=raw("DIGEST_SUBJECT") or DEFAULT_SUBJECT,
        public_url=public_url,
        secret=raw("DIGEST_SECRET"),
        http_listen=_listen(raw("DIGEST_HTTP_LISTEN")),
        postal_address=raw("DIGEST_POSTAL_ADDRESS"),
        unsubscribe_mailto=mailto,
        fetch_timeout=_duration("DIGEST_FETCH_TIMEOUT", raw("DIGEST_FETCH_TIMEOUT"), 20.0),
        fetch_max_bytes=_integer(
            "DIGEST_FETCH_MAX_BYTES", raw("DIGEST_FETCH_MAX_BYTES"), 10 * 1024 * 1024, minimum=1024
        ),
        log_level=level.upper() if level else None,
        bounce_on_5xx=_boolean("DIGEST_BOUNCE_ON_5XX", raw("DIGEST_BOUNCE_ON_5XX"), True),
        bounce_address=bounce_address,
        bounce_threshold=bounce_threshold,
        bounce_hard=bounce_hard,  # type: ignore[arg-type]
        bounce_reset=_duration("DIGEST_BOUNCE_RESET", raw("DIGEST_BOUNCE_RESET"), 30 * 86400.0),
        bounce_imap_host=raw("DIGEST_BOUNCE_IMAP_HOST"),
        bounce_imap_port=_integer(
            "DIGEST_BOUNCE_IMAP_PORT",
            raw("DIGEST_BOUNCE_IMAP_PORT"),
            993 if imap_security == "ssl" else 143,
            minimum=1,
            maximum=65535,
        ),
        bounce_imap_user=raw("DIGEST_BOUNCE_IMAP_USER"),
        bounce_imap_password=raw("DIGEST_BOUNCE_IMAP_PASSWORD"),
        bounce_imap_folder=raw("DIGEST_BOUNCE_IMAP_FOLDER") or "INBOX",
        bounce_imap_security=imap_security,  # type: ignore[arg-type]
        bounce_imap_ca_file=path_of("DIGEST_BOUNCE_IMAP_CA_FILE"),
        bounce_interval=_duration("DIGEST_BOUNCE_INTERVAL", raw("DIGEST_BOUNCE_INTERVAL"), 1800.0),
        send_attempts=_integer("DIGEST_SEND_ATTEMPTS", raw("DIGEST_SEND_ATTEMPTS"), 4, minimum=1),
        dkim_selector=dkim[0],
        dkim_domain=dkim[1],
        dkim_key_file=path_of("DIGEST_DKIM_KEY_FILE"),
        smtp_host=raw("SMTP_HOST") or "localhost",
        smtp_port=_integer("SMTP_PORT", raw("SMTP_PORT"), _SMTP_DEFAULT_PORTS[security], minimum=1, maximum=65535),
        smtp_username=raw("SMTP_USERNAME"),
        smtp_password=raw("SMTP_PASSWORD"),
        smtp_security=security,  # type: ignore[arg-type]
        smtp_timeout=_duration("SMTP_TIMEOUT", raw("SMTP_TIMEOUT"), 30.0),
        smtp_connections=_integer("SMTP_CONNECTIONS", raw("SMTP_CONNECTIONS"), 2, minimum=1, maximum=32),
        smtp_rate=_number("SMTP_RATE", raw("SMTP_RATE"), 0.0),
        smtp_verify_cert=_boolean("SMTP_VERIFY_CERT", raw("SMTP_VERIFY_CERT"), True),
        retry_for=_duration("DIGEST_RETRY_FOR", raw("DIGEST_RETRY_FOR"), 2 * 86400.0),
        allow_test_domains=_boolean("DIGEST_ALLOW_TEST_DOMAINS", raw("DIGEST_ALLOW_TEST_DOMAINS"), False),
    )
    # Every key the loader knows was asked for above, so what was not asked is unknown.
    warnings = config_warnings.unknown_keys([*environ.keys(), *file_values], environ.asked)
    from_domain = settings.sender_address.domain if settings.sender else None
    warnings += config_warnings.sender_warnings(from_domain, settings.dkim_domain)
    return replace(settings, warnings=tuple(warnings))


class AskedEnvironment(Mapping[str, str]):
    """A read-only view of the environment that remembers which keys were looked up."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._environ[key]

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return key in self._environ

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(key)
        return self._environ.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def parse_duration(text: str) -> float:
    """``"30m"`` -> 1800.0; ValueError when malformed or not positive."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 6h, 1d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"must be more than zero, not {text!r}")
    if seconds > _MAX_SECONDS:
        raise ValueError(f"must be at most 366 days, not {text!r}")
    return seconds


def _duration(key: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _integer(key: str, value: str | None, default: int, *, minimum: int, maximum: int | None = None) -> int:
    if value is None:
        return default
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


def _number(key: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key}: not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key}: must be a finite number, not {value!r}")
    if number < 0:
        raise ConfigError(f"{key}: must not be negative, not {value}")
    return number


def _boolean(key: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: must be true or false, not {value!r}")


_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_HOSTNAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}")


def parse_address(key: str, value: str) -> Address:
    """``Name <addr>`` or ``addr`` as an Address with its domain in ASCII (IDNA) form.

    Strict on purpose: exactly one address, an ASCII local part (digest
    does not send from internationalised addresses, which need SMTPUTF8 on
    every hop) and a real host name. The display name is untrusted text that
    headers.py cleans and encodes.
    """
    if any(c in value for c in "\r\n\x00"):
        raise ConfigError(f"{key}: must be a single line")
    example = "e.g. 'My Blog <news@example.com>'"
    name, addr = "", value.strip()
    if addr.endswith(">") and "<" in addr:
        name, _, addr = addr[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
    local, at, domain = addr.strip().rpartition("@")
    if not at or not local or not domain or any(c in addr for c in ' <>,;"()[]\\\t'):
        raise ConfigError(f"{key}: not an email address (one, as Name <addr> or addr): {value!r}", hint=example)
    if not local.isascii():
        raise ConfigError(
            f"{key}: the part before @ must be ASCII in {value!r}",
            hint="a non-ASCII local part needs SMTPUTF8 on every server on the way; use an ASCII address",
        )
    if not _DOT_ATOM.fullmatch(local) or len(local) > 64:
        raise ConfigError(f"{key}: not an email address: {value!r}", hint=example)
    from digest.headers import ascii_domain

    try:
        domain = ascii_domain(domain)
    except ValueError:
        raise ConfigError(f"{key}: not a valid domain name in {value!r}", hint=example) from None
    if not _HOSTNAME.fullmatch(domain) or len(domain) > 253:
        raise ConfigError(f"{key}: not a valid domain name in {value!r}", hint=example)
    return Address(display_name=name, username=local, domain=domain)


def _public_url(value: str) -> str:
    """DIGEST_PUBLIC_URL, checked: every unsubscribe link and List-Unsubscribe header is built from it."""
    key = "DIGEST_PUBLIC_URL"
    hint = "e.g. https://example.com/digest (no query, fragment or user name)"
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ConfigError(f"{key}: must not contain spaces or control characters: {value!r}", hint=hint)
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: not an http(s) URL: {value!r}", hint=hint)
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigError(f"{key}: must not have a query or fragment: {value!r}", hint=hint)
    if "@" in parts.netloc:
        raise ConfigError(f"{key}: must not contain a user name or password: {value!r}", hint=hint)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{key}: bad port in {value!r}", hint=hint) from None
    from digest.headers import ascii_domain

    host = parts.hostname
    try:
        ascii_host = host if host.startswith("[") or ":" in host else ascii_domain(host)
    except ValueError:
        raise ConfigError(f"{key}: not a valid host name in {value!r}", hint=hint) from None
    if not (ascii_host.isascii() and (":" in ascii_host or re.fullmatch(r"[A-Za-z0-9.-]+", ascii_host))):
        raise ConfigError(f"{key}: not a valid host name in {value!r}", hint=hint)
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc += f":{port}"
    path = quote(parts.path, safe="/%!$&'()*+,;=:@~-._")
    return f"{parts.scheme.lower()}://{netloc}{path}".rstrip("/")


def _first_run(value: str | None) -> FirstRunPolicy:
    if value is None:
        return FirstRunPolicy("latest", 3)
    lowered = value.lower()
    if lowered in ("all", "none"):
        return FirstRunPolicy(lowered)  # type: ignore[arg-type]
    match = re.fullmatch(r"latest:(\d+)", lowered)
    if match:
        return FirstRunPolicy("latest", int(match.group(1)))
    raise ConfigError(f"DIGEST_FIRST_RUN: must be latest:N, all or none, not {value!r}")


def _listen(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
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


def _check_code_style(name: str) -> None:
    from pygments.styles import get_all_styles

    if name not in set(get_all_styles()):
        raise ConfigError(f"DIGEST_CODE_STYLE: unknown Pygments style {name!r}", hint="see `pygmentize -L styles`")


_CRON_FIELD = re.compile(r"[A-Za-z0-9*/,?#-]{1,64}")


def _check_schedule(expr: str) -> None:
    """The schedule's form, checked without APScheduler (which costs 50 ms to import).

    Every command runs this; the commands that use the schedule (`run`,
    `status`) also build the real trigger, which rejects what this lets
    through (an out-of-range field, a date that never comes) as a ConfigError
    naming DIGEST_SCHEDULE, exit 2.
    """
    every = re.match(r"^\s*every\s+(.+)$", expr, re.IGNORECASE)
    if every:
        try:
            parse_duration(every.group(1))
        except ValueError as exc:
            raise ConfigError(f"DIGEST_SCHEDULE: {exc}") from None
        return
    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(f"DIGEST_SCHEDULE: expected a 5-field cron expression or 'every <duration>', not {expr!r}")
    if not all(_CRON_FIELD.fullmatch(f) for f in fields):
        raise ConfigError(f"DIGEST_SCHEDULE: invalid cron expression {expr!r}")
