"""load_settings: the environment and the env file, through every group reader, into Settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from digest import config_warnings
from digest.config.readers import READERS
from digest.config.settings import Settings
from digest.config.source import AskedEnvironment, Source
from digest.errors import ConfigError


def _source(env_file: Path | None, environ: Mapping[str, str] | None) -> Source:
    asked = AskedEnvironment(os.environ if environ is None else environ)
    if env_file is None and Path(".env").is_file():
        env_file = Path(".env")
    if env_file is None:
        return Source(asked, {}, Path.cwd())
    if not env_file.is_file():
        raise ConfigError(f"--env: no such file: {env_file}")
    from dotenv import dotenv_values  # only with a file to read: many services set the environment itself

    file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    return Source(asked, file_values, env_file.resolve().parent)


def load_settings(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``environ`` (default os.environ) over ``env_file``.

    Without ``env_file``, ``./.env`` is read when it exists.
    """
    src = _source(env_file, environ)
    fields: dict[str, object] = {}
    for read in READERS:
        fields.update(read(src))
    settings = Settings(**fields)  # type: ignore[arg-type]
    # Every key the loader knows was asked for above, so what was not asked is unknown.
    warnings = config_warnings.unknown_keys([*src.environ.keys(), *src.file_values], src.environ.asked)
    from_domain = settings.sender_address.domain if settings.sender else None
    warnings += config_warnings.sender_warnings(from_domain, settings.dkim_domain)
    return replace(settings, warnings=tuple(warnings))
