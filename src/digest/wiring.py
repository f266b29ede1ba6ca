"""The composition root: where settings, store, fetcher, renderer and transport are wired.

The CLI, the daemon and the web app's mail build one ``Wiring`` from their
``Settings`` and hand it to the use cases (pipeline.py, preview.py,
daemon_jobs.py), instead of threading a fetcher, a transport factory and
delivery options through every call. This is also the one place where
objects are built from ``Settings``: ``fetcher_for``, ``smtp_options`` and
``delivery_options`` (the objects themselves have no defaults of their own).

Tests replace a part with ``wire(settings, fetcher=..., transport=...,
delivery=...)``: a fake transport, or an ``SmtpTransport`` on an aiosmtpd
server, needs no subclassing.

Every stage is imported inside the function that needs it, so wiring costs
nothing at start-up: `digest check` never loads the renderer, `digest
subscribers list` neither feeds nor templates (tests/test_startup.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from digest.config import Settings

if TYPE_CHECKING:
    from sqlite_utils import Database

    from digest.fetch import Fetcher, HttpFetcher
    from digest.mailer import DeliveryOptions, TransportFactory
    from digest.models import Digest, StoredEntry
    from digest.smtp import SmtpOptions

# Entries and the digest's archive URL (or None) into a rendered digest.
Renderer = Callable[[Sequence["StoredEntry"], "str | None"], "Digest"]


@dataclass(frozen=True)
class Wiring:
    """One configuration's parts. Use ``wire`` to build it; a part left None is built from ``settings``."""

    settings: Settings
    given_fetcher: Fetcher | None = None
    given_transport: TransportFactory | None = None
    given_delivery: DeliveryOptions | None = None
    given_renderer: Renderer | None = None

    @property
    def fetcher(self) -> Fetcher:
        return self.given_fetcher or fetcher_for(self.settings)

    @property
    def transport(self) -> TransportFactory:
        """Makes one new, unopened connection per call (``deliver`` opens one per worker)."""
        return self.given_transport or smtp_transport_factory(self.settings)

    @property
    def delivery(self) -> DeliveryOptions:
        return self.given_delivery or delivery_options(self.settings)

    @property
    def render(self) -> Renderer:
        return self.given_renderer or _renderer(self.settings)

    def open_store(self) -> Database:
        from digest import store

        return store.open_db(self.settings.db_path)

    def with_settings(self, settings: Settings) -> Wiring:
        """The same parts for other settings (a SIGHUP reload, one feed checked on its own)."""
        return replace(self, settings=settings)


def wire(
    settings: Settings,
    *,
    fetcher: Fetcher | None = None,
    transport: TransportFactory | None = None,
    delivery: DeliveryOptions | None = None,
    renderer: Renderer | None = None,
) -> Wiring:
    return Wiring(settings, fetcher, transport, delivery, renderer)


# --- the one place objects are built from Settings ---------------------------------


def fetcher_for(settings: Settings) -> HttpFetcher:
    from digest.fetch import HttpFetcher

    return HttpFetcher(timeout=settings.fetch_timeout, max_bytes=settings.fetch_max_bytes)


def smtp_options(settings: Settings) -> SmtpOptions:
    from digest.smtp import SmtpOptions

    return SmtpOptions(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout=settings.smtp_timeout,
        verify_cert=settings.smtp_verify_cert,
    )


def smtp_transport_factory(settings: Settings) -> TransportFactory:
    from digest.smtp import SmtpTransport

    options = smtp_options(settings)
    return lambda: SmtpTransport(options)


def delivery_options(settings: Settings) -> DeliveryOptions:
    from digest.mailer import DeliveryOptions

    return DeliveryOptions(
        attempts=settings.send_attempts, connections=settings.smtp_connections, rate=settings.smtp_rate
    )


def _renderer(settings: Settings) -> Renderer:
    def render(entries: Sequence[StoredEntry], archive_url: str | None) -> Digest:
        # Imported here: rendering pulls in Jinja, premailer and cssutils,
        # which `digest check` (and the daemon's checks) never need.
        from digest import render as rendering

        return rendering.render_digest(entries, settings, archive_url=archive_url)

    return render
