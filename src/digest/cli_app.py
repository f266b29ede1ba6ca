"""What every ``digest`` command shares: the lazily loaded settings and the logging set-up.

``cli.py`` puts an ``App`` on the click context; the command modules
(cli_check.py, cli_send.py, ...) take it with ``@pass_app``. Loading the
settings is deferred to the first command that needs them, so `--help`
reads no configuration.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from digest.config import Settings


@dataclass
class App:
    env_file: Path | None
    db_path: Path | None
    verbose: int
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from digest.config import load_settings

            self._settings = load_settings(self.env_file).with_db(self.db_path)
            configure_logging(self._settings, self.verbose)
            for warning in self._settings.warnings:
                click.echo(f"Warning: {warning}", err=True)
        return self._settings


def configure_logging(settings: Settings, verbose: int, *, daemon: bool = False) -> None:
    if verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        # One-shot commands stay quiet (their output is the report) unless
        # DIGEST_LOG_LEVEL asks for more; the daemon logs its events.
        level = getattr(logging, settings.log_level or ("INFO" if daemon else "WARNING"))
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


pass_app = click.make_pass_decorator(App)
