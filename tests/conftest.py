"""Fixtures: a real SMTP server (aiosmtpd), a real HTTP feed server, a clean
environment and a valid configuration. The code behind them is in helpers.py.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import EXAMPLE_FEED, FeedHost, SmtpServer, running_smtp


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def feed_host() -> Iterator[FeedHost]:
    host = FeedHost()
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DIGEST_*/SMTP_* from the developer's shell, and no stray ./.env."""
    for key in list(os.environ):
        if key.startswith(("DIGEST_", "SMTP_")):
            monkeypatch.delenv(key)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    # `send --dry-run` without --output keeps its preview in a new temporary
    # folder for the user; in tests that folder lands under tmp_path, not /tmp.
    # Only that folder: other temporary paths (dovecot's sockets) must stay short.
    make = tempfile.mkdtemp

    def mkdtemp(suffix: str | None = None, prefix: str | None = None, dir: str | None = None) -> str:
        if prefix == "digest-preview-" and dir is None:
            dir = str(tmp_path)
        return make(suffix, prefix, dir)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A complete, valid configuration as environment variables (no SMTP yet)."""
    return {
        "DIGEST_FEED_URL": str(EXAMPLE_FEED),
        "DIGEST_DB": str(tmp_path / "state" / "digest.db"),
        "DIGEST_FROM": "Field Notes <news@fieldnotes.example.org>",
        "DIGEST_PUBLIC_URL": "https://fieldnotes.example.org/digest",
        "DIGEST_SECRET": "test-secret-0123456789",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "9",  # discard: nothing listens; tests that send point it at aiosmtpd
        "SMTP_SECURITY": "none",
        "SMTP_TIMEOUT": "5s",
    }


@pytest.fixture
def smtp_env(env: dict[str, str], smtp_server: SmtpServer) -> dict[str, str]:
    return {**env, "SMTP_PORT": str(smtp_server.port)}
