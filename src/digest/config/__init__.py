"""Settings: read once from the environment and a .env file, validated once.

Every other module receives a :class:`Settings` (a frozen dataclass) and never
reads the environment itself. A malformed value raises :class:`ConfigError`
naming the key, which the CLI shows as ``Error: KEY: ...`` with exit code 2.

Precedence: real environment variables win over the env file (python-dotenv's
convention). Relative paths that come from an env file are resolved against
that file's folder, so ``digest --env /srv/blog/digest.env`` works from any
working directory; relative paths from the real environment are resolved
against the working directory.

The package: ``settings.py`` (the dataclass, each default written once),
``values.py`` (one value of one key), ``source.py`` (where a key's text comes
from), ``readers.py`` (one reader per group of keys) and ``loader.py``.
Durations and schedules are parsed in ``digest.schedule``.
"""

from digest.config.loader import load_settings
from digest.config.settings import DEFAULT_SUBJECT, DigestMode, FirstRunPolicy, Settings, SmtpSecurity
from digest.config.source import AskedEnvironment
from digest.config.values import parse_address

__all__ = [
    "DEFAULT_SUBJECT",
    "AskedEnvironment",
    "DigestMode",
    "FirstRunPolicy",
    "Settings",
    "SmtpSecurity",
    "load_settings",
    "parse_address",
]
