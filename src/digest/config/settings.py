"""The Settings dataclass: every setting digest knows, each default written here once.

The loader (loader.py and readers.py in this package) takes every default from
these fields; objects built from Settings (the fetcher, the SMTP options) get
all their values from it and have no defaults of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from digest.config.values import DEFAULT_CODE_STYLE, parse_address
from digest.errors import ConfigError
from digest.models import FirstRunPolicy as FirstRunPolicy  # plain data: the store needs no config

SmtpSecurity = Literal["starttls", "ssl", "none"]
DigestMode = Literal["excerpt", "full"]
SignupChallenge = Literal["off", "altcha"]

DEFAULT_SUBJECT = "{{ feed_title }}: {{ newest.title }}{% if others %} (+{{ others }} more){% endif %}"
# The port each security mode uses when SMTP_PORT / DIGEST_BOUNCE_IMAP_PORT is not set.
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
IMAP_DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}


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
    code_style: str = DEFAULT_CODE_STYLE
    template_dir: Path | None = None
    subject_template: str = DEFAULT_SUBJECT
    public_url: str | None = None
    secret: str | None = field(default=None, repr=False)
    http_listen: tuple[str, int] | None = None
    archive: bool = True  # DIGEST_ARCHIVE: the public web archive and each email's "View in browser" link
    # DIGEST_TRUSTED_PROXIES: proxy hops (an int) or the proxies' addresses/networks whose
    # X-Forwarded-For/-Proto the web app believes; 0: none, the peer address is the client.
    trusted_proxies: int | tuple[str, ...] = 0
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
    bounce_imap_port: int = IMAP_DEFAULT_PORTS["ssl"]
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
    smtp_port: int = SMTP_DEFAULT_PORTS["starttls"]
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_security: SmtpSecurity = "starttls"
    smtp_timeout: float = 30.0
    smtp_connections: int = 2
    smtp_rate: float = 0.0
    smtp_verify_cert: bool = True
    allow_test_domains: bool = False
    retry_for: float = 2 * 86400.0
    # The web sign-up (double opt-in) and its limits.
    signup: bool = True
    signup_min_age: float = 3.0  # a form token younger than this is a bot's
    signup_challenge: SignupChallenge = "off"  # off | altcha: a proof-of-work the hosted form's script solves
    signup_per_ip: int = 20  # POST /subscribe per client address per hour
    signup_mails_per_hour: int = 100  # confirmation emails per hour, all addresses together
    confirm_interval: float = 86400.0  # at most one confirmation email per address in this time
    confirm_ttl: float = 7 * 86400.0
    welcome: bool = True
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
