"""The loader's readers, one per group of keys; each returns its Settings fields.

Every reader asks a :class:`Source` for its keys and gets a key's default
from the Settings field (``Source.parsed`` and friends), so a default is
written only on the dataclass. A reader checks the rules within its group
(DKIM needs all three keys; a bounce address needs the secret).
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import values
from digest.config.settings import IMAP_DEFAULT_PORTS, SMTP_DEFAULT_PORTS, FirstRunPolicy
from digest.config.source import DEFAULTS, Source
from digest.errors import ConfigError
from digest.schedule import check_schedule

Fields = dict[str, Any]
_SECURITY = ("starttls", "ssl", "none")


def read_paths(src: Source) -> Fields:
    return {
        "db_path": src.path("DIGEST_DB") or src.base_dir / DEFAULTS.db_path,
        "template_dir": src.path("DIGEST_TEMPLATE_DIR"),
    }


def _feed_location(src: Source, value: str) -> str:
    problem = values.feed_url_problem(value)
    if problem is not None:
        raise ConfigError(f"DIGEST_FEED_URL: {problem}")
    return value if values.is_feed_url(value) else str(src.resolved("DIGEST_FEED_URL", value))


def _first_run(key: str, value: str) -> FirstRunPolicy:
    lowered = value.lower()
    if lowered in ("all", "none"):
        return FirstRunPolicy(lowered)  # type: ignore[arg-type]
    match = re.fullmatch(r"latest:(\d+)", lowered)
    if match:
        return FirstRunPolicy("latest", int(match.group(1)))
    raise ConfigError(f"{key}: must be latest:N, all or none, not {value!r}")


def read_feed(src: Source) -> Fields:
    feeds = src.raw("DIGEST_FEED_URL")
    return {
        "feed_urls": tuple(_feed_location(src, v) for v in re.split(r"[\s,]+", feeds) if v) if feeds else (),
        "first_run": src.parsed("DIGEST_FIRST_RUN", "first_run", _first_run),
        "fetch_timeout": src.duration("DIGEST_FETCH_TIMEOUT", "fetch_timeout"),
        "fetch_max_bytes": src.integer("DIGEST_FETCH_MAX_BYTES", "fetch_max_bytes", minimum=1024),
    }


def read_content(src: Source) -> Fields:
    code_style = src.text("DIGEST_CODE_STYLE", "code_style")
    values.check_code_style(code_style)
    return {
        "mode": src.choice("DIGEST_MODE", "mode", ("excerpt", "full")),
        "excerpt_words": src.integer("DIGEST_EXCERPT_WORDS", "excerpt_words", minimum=10),
        "max_entries": src.integer("DIGEST_MAX_ENTRIES", "max_entries", minimum=1),
        "max_html_bytes": src.integer("DIGEST_MAX_HTML_BYTES", "max_html_bytes", minimum=10_000),
        "code_style": code_style,
        "subject_template": src.text("DIGEST_SUBJECT", "subject_template"),
        "postal_address": src.raw("DIGEST_POSTAL_ADDRESS"),
    }


def _checked_address(key: str, value: str) -> str:
    values.parse_address(key, value)
    return value


def _mailto(key: str, value: str) -> str:
    # Only the normalised address goes into List-Unsubscribe, never the raw text.
    return values.parse_address(key, value.removeprefix("mailto:")).addr_spec


def read_sender(src: Source) -> Fields:
    return {
        "sender": src.parsed("DIGEST_FROM", "sender", _checked_address),
        "reply_to": src.parsed("DIGEST_REPLY_TO", "reply_to", _checked_address),
        "public_url": src.parsed("DIGEST_PUBLIC_URL", "public_url", lambda _k, v: values.public_url(v)),
        "unsubscribe_mailto": src.parsed("DIGEST_UNSUBSCRIBE_MAILTO", "unsubscribe_mailto", _mailto),
        "secret": src.raw("DIGEST_SECRET"),
        "allow_test_domains": src.boolean("DIGEST_ALLOW_TEST_DOMAINS", "allow_test_domains"),
    }


def read_smtp(src: Source) -> Fields:
    security = src.choice("SMTP_SECURITY", "smtp_security", _SECURITY)
    port = src.raw("SMTP_PORT")
    return {
        "smtp_host": src.text("SMTP_HOST", "smtp_host"),
        "smtp_port": SMTP_DEFAULT_PORTS[security]
        if port is None
        else values.integer("SMTP_PORT", port, minimum=1, maximum=65535),
        "smtp_username": src.raw("SMTP_USERNAME"),
        "smtp_password": src.raw("SMTP_PASSWORD"),
        "smtp_security": security,
        "smtp_timeout": src.duration("SMTP_TIMEOUT", "smtp_timeout"),
        "smtp_connections": src.integer("SMTP_CONNECTIONS", "smtp_connections", minimum=1, maximum=32),
        "smtp_rate": src.number("SMTP_RATE", "smtp_rate"),
        "smtp_verify_cert": src.boolean("SMTP_VERIFY_CERT", "smtp_verify_cert"),
        "send_attempts": src.integer("DIGEST_SEND_ATTEMPTS", "send_attempts", minimum=1),
        "retry_for": src.duration("DIGEST_RETRY_FOR", "retry_for"),
    }


def read_dkim(src: Source) -> Fields:
    dkim = (src.raw("DIGEST_DKIM_SELECTOR"), src.raw("DIGEST_DKIM_DOMAIN"), src.raw("DIGEST_DKIM_KEY_FILE"))
    if any(dkim) and not all(dkim):
        raise ConfigError(
            "DIGEST_DKIM_SELECTOR: DKIM needs all three of DIGEST_DKIM_SELECTOR, "
            "DIGEST_DKIM_DOMAIN and DIGEST_DKIM_KEY_FILE"
        )
    return {"dkim_selector": dkim[0], "dkim_domain": dkim[1], "dkim_key_file": src.path("DIGEST_DKIM_KEY_FILE")}


def read_http(src: Source) -> Fields:
    return {
        "http_listen": src.parsed("DIGEST_HTTP_LISTEN", "http_listen", lambda _k, v: values.listen(v)),
        "archive": src.boolean("DIGEST_ARCHIVE", "archive"),
        "trusted_proxies": src.parsed("DIGEST_TRUSTED_PROXIES", "trusted_proxies", values.trusted_proxies),
    }


def _timezone(key: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"{key}: unknown time zone {value!r}", hint="e.g. Europe/Paris") from None
    return value


def _schedule(key: str, value: str) -> str:
    try:
        check_schedule(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return value


def read_schedule(src: Source) -> Fields:
    return {
        "timezone": src.parsed("DIGEST_TIMEZONE", "timezone", _timezone),
        "schedule": src.parsed("DIGEST_SCHEDULE", "schedule", _schedule),
        "check_interval": src.duration("DIGEST_CHECK_INTERVAL", "check_interval"),
    }


def _log_level(key: str, value: str) -> str:
    if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{key}: must be DEBUG, INFO, WARNING or ERROR, not {value!r}")
    return value.upper()


def read_logging(src: Source) -> Fields:
    return {"log_level": src.parsed("DIGEST_LOG_LEVEL", "log_level", _log_level)}


def _bounce_address(src: Source) -> str | None:
    value = src.raw("DIGEST_BOUNCE_ADDRESS")
    if value is None:
        return None
    parsed = values.parse_address("DIGEST_BOUNCE_ADDRESS", value)
    if parsed.display_name or "+" in parsed.username:
        raise ConfigError(f"DIGEST_BOUNCE_ADDRESS: a bare address without '+', not {value!r}")
    if not src.raw("DIGEST_SECRET"):
        raise ConfigError("DIGEST_BOUNCE_ADDRESS: needs DIGEST_SECRET, which signs the VERP tokens")
    return parsed.addr_spec


def _threshold(key: str, value: str) -> float:
    threshold = values.number(key, value)
    if threshold < 0.5:
        raise ConfigError(f"{key}: must be at least 0.5, not {threshold}")
    return threshold


def read_bounces(src: Source) -> Fields:
    return {
        "bounce_address": _bounce_address(src),
        "bounce_on_5xx": src.boolean("DIGEST_BOUNCE_ON_5XX", "bounce_on_5xx"),
        "bounce_hard": src.choice("DIGEST_BOUNCE_HARD", "bounce_hard", ("immediate", "score")),
        "bounce_threshold": src.parsed("DIGEST_BOUNCE_THRESHOLD", "bounce_threshold", _threshold),
        "bounce_reset": src.duration("DIGEST_BOUNCE_RESET", "bounce_reset"),
        "bounce_interval": src.duration("DIGEST_BOUNCE_INTERVAL", "bounce_interval"),
    }


def read_bounce_imap(src: Source) -> Fields:
    security = src.choice("DIGEST_BOUNCE_IMAP_SECURITY", "bounce_imap_security", ("ssl", "starttls", "none"))
    port = src.raw("DIGEST_BOUNCE_IMAP_PORT")
    return {
        "bounce_imap_host": src.raw("DIGEST_BOUNCE_IMAP_HOST"),
        "bounce_imap_port": IMAP_DEFAULT_PORTS[security]
        if port is None
        else values.integer("DIGEST_BOUNCE_IMAP_PORT", port, minimum=1, maximum=65535),
        "bounce_imap_user": src.raw("DIGEST_BOUNCE_IMAP_USER"),
        "bounce_imap_password": src.raw("DIGEST_BOUNCE_IMAP_PASSWORD"),
        "bounce_imap_folder": src.text("DIGEST_BOUNCE_IMAP_FOLDER", "bounce_imap_folder"),
        "bounce_imap_security": security,
        "bounce_imap_ca_file": src.path("DIGEST_BOUNCE_IMAP_CA_FILE"),
    }


def _min_age(key: str, value: str) -> float:
    # 0 turns the check off (a form that may be sent at once); any other duration as usual.
    return 0.0 if value.strip().lower() in ("0", "0s") else values.duration(key, value)


def read_signup(src: Source) -> Fields:
    return {
        "signup": src.boolean("DIGEST_SIGNUP", "signup"),
        "signup_min_age": src.parsed("DIGEST_SIGNUP_MIN_AGE", "signup_min_age", _min_age),
        "signup_challenge": src.choice("DIGEST_SIGNUP_CHALLENGE", "signup_challenge", ("off", "altcha")),
        "signup_per_ip": src.integer("DIGEST_SIGNUP_PER_IP", "signup_per_ip", minimum=1),
        "signup_mails_per_hour": src.integer("DIGEST_SIGNUP_MAILS_PER_HOUR", "signup_mails_per_hour", minimum=1),
        "confirm_interval": src.duration("DIGEST_CONFIRM_INTERVAL", "confirm_interval"),
        "confirm_ttl": src.duration("DIGEST_CONFIRM_TTL", "confirm_ttl"),
        "welcome": src.boolean("DIGEST_WELCOME", "welcome"),
    }


READERS = (
    read_paths,
    read_schedule,
    read_feed,
    read_content,
    read_sender,
    read_smtp,
    read_dkim,
    read_http,
    read_logging,
    read_bounces,
    read_bounce_imap,
    read_signup,
)
