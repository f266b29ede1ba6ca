"""Where a key's text comes from: the environment over the env file, with Settings' defaults.

:class:`Source` is what each group reader (readers.py) asks: ``raw`` for the
text of a key, and typed helpers that fall back to the default written on
the :class:`Settings` field, so no default is written twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from digest.config import values
from digest.config.settings import Settings
from digest.errors import ConfigError

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # TAB is allowed (an SMTP password may have one)
_CONTROL_ANY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # ... and line breaks, for these keys:
_MULTILINE_KEYS = frozenset({"DIGEST_SUBJECT", "DIGEST_POSTAL_ADDRESS", "DIGEST_FEED_URL"})

DEFAULTS = Settings()
T = TypeVar("T")


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


class Source:
    """The environment (which wins) over the env file's values, relative paths resolved."""

    def __init__(self, environ: AskedEnvironment, file_values: Mapping[str, str], base_dir: Path) -> None:
        self.environ = environ
        self.file_values = file_values
        self.base_dir = base_dir

    def raw(self, key: str) -> str | None:
        """The key's stripped text, None when unset or empty."""
        value = self.environ.get(key)
        if value is None:
            value = self.file_values.get(key)
        if value is None:
            return None
        value = value.strip()
        if (_CONTROL_ANY if key in _MULTILINE_KEYS else _CONTROL).search(value):
            raise ConfigError(f"{key}: must not contain control characters: {value!r}")
        return value or None

    def resolved(self, key: str, value: str) -> Path:
        # A relative path is relative to where it was set: the working
        # directory for the environment, the env file's folder for the file.
        path = Path(value).expanduser()
        if len(value) > 4000 or any(len(part) > 255 for part in path.parts):
            raise ConfigError(f"{key}: not a usable path (too long): {value!r}")
        if path.is_absolute():
            return path
        return (Path.cwd() if key in self.environ else self.base_dir) / path

    def path(self, key: str) -> Path | None:
        value = self.raw(key)
        return None if value is None else self.resolved(key, value)

    def parsed(self, key: str, field: str, parse: Callable[[str, str], T]) -> T:
        """``parse(key, text)``, or the default of Settings.``field`` when the key is unset."""
        value = self.raw(key)
        return getattr(DEFAULTS, field) if value is None else parse(key, value)

    def text(self, key: str, field: str) -> Any:
        return self.parsed(key, field, lambda _key, value: value)

    def choice(self, key: str, field: str, choices: tuple[str, ...]) -> Any:
        return self.parsed(key, field, lambda k, v: values.choice(k, v, choices))

    def integer(self, key: str, field: str, *, minimum: int, maximum: int | None = None) -> int:
        return self.parsed(key, field, lambda k, v: values.integer(k, v, minimum=minimum, maximum=maximum))

    def number(self, key: str, field: str) -> float:
        return self.parsed(key, field, values.number)

    def duration(self, key: str, field: str) -> float:
        return self.parsed(key, field, values.duration)

    def boolean(self, key: str, field: str) -> bool:
        return self.parsed(key, field, values.boolean)
