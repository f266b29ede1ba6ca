"""Fetch a feed's bytes: HTTP(S) with conditional GET, or a local file.

The first stage of the pipeline, split from feeds.py (parsing) because the two
fail for different reasons and are tested against different things: this
module against a real HTTP server on 127.0.0.1, parsing against fixture files.
It knows nothing of the database: it takes a location plus the validators
(ETag, Last-Modified) cached from the last fetch and returns a FetchResult.

Every failure is a ``FetchError`` whose ``status`` is what the feed row
records in ``last_status``: the HTTP code (``"404"``, ``"410"``, ``"503"``) or
a word (``"timeout"``, ``"unreachable"``, ``"too-large"``, ``"error"``).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import time
import zlib
from dataclasses import dataclass
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener, url2pathname

from digest import __version__, urls
from digest.errors import FetchError, shown

log = logging.getLogger(__name__)

USER_AGENT = f"digest/{__version__} (+self-hosted newsletter digest; feed reader)"
_ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchResult:
    """What a fetch returned. ``body`` is None on a 304 Not Modified."""

    url: str  # where the body finally came from, after redirects
    status: int
    body: bytes | None
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    permanent_redirect: str | None = None  # where a chain of 301/308 led: the feed's new home

    @property
    def not_modified(self) -> bool:
        return self.body is None


def body_hash(result: FetchResult) -> str | None:
    """The sha256 of an HTTP answer's body, stored with the feed once it is parsed and recorded.

    The same bytes next time (a server without ETag or Last-Modified, or one
    that ignores them) are then skipped like a 304. None for a 304 and for a
    local file, which is read and parsed every time (no server to spare).
    """
    if result.body is None or result.url.startswith("file:"):
        return None
    return hashlib.sha256(result.body).hexdigest()


class Fetcher(Protocol):
    def __call__(self, location: str, *, etag: str | None, last_modified: str | None) -> FetchResult: ...


class _RedirectRecorder(HTTPRedirectHandler):
    """Follows redirects like urllib does, remembering where permanent ones lead.

    Only a chain made entirely of 301/308 moves the feed: one temporary hop
    (302/303/307) anywhere means the final URL is not a permanent home.
    urllib carries our request headers (validators included) to each hop.
    """

    def __init__(self) -> None:
        self.permanent: str | None = None
        self.temporary_seen = False

    def redirect_request(
        self, req: Request, fp: IO[bytes], code: int, msg: str, headers: HTTPMessage, newurl: str
    ) -> Request | None:
        if code in (301, 308) and not self.temporary_seen:
            self.permanent = newurl
        else:
            self.temporary_seen = True
            self.permanent = None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass(frozen=True)
class HttpFetcher:
    """Fetch over HTTP(S) with a timeout, a size cap and gzip; read local files directly.

    ``timeout`` bounds each network wait and, as a deadline, the whole
    download, so a server trickling one byte a second cannot hold a check up.
    """

    timeout: float  # Settings.fetch_timeout
    max_bytes: int  # Settings.fetch_max_bytes

    def __call__(self, location: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        scheme = urls.scheme(location)
        if scheme in ("http", "https"):
            return self._fetch_http(location, etag, last_modified)
        return self._read_file(location)

    def _read_file(self, location: str) -> FetchResult:
        path = Path(url2pathname(urlsplit(location).path)) if location.startswith("file:") else Path(location)
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise FetchError(
                    f"{location}: file is {size} bytes, over the {self.max_bytes}-byte limit",
                    status="too-large",
                    hint="raise DIGEST_FETCH_MAX_BYTES",
                )
            body = path.read_bytes()
        except OSError as exc:
            raise FetchError(
                f"{location}: cannot read feed file: {exc.strerror}", hint="check DIGEST_FEED_URL"
            ) from None
        # No HTTP header says what a file is; tell feedparser it is XML so the
        # encoding declared in the file wins (RFC 7303).
        return FetchResult(url=path.resolve().as_uri(), status=200, body=body, content_type="application/xml")

    def _fetch_http(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": _ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        redirects = _RedirectRecorder()
        opener = build_opener(redirects)
        deadline = time.monotonic() + self.timeout
        try:
            request = Request(url, headers=headers)  # noqa: S310 - only http(s) URLs reach here (see __call__)
            with opener.open(request, timeout=self.timeout) as response:
                raw = self._read_capped(url, response, deadline)
                body = self._decode(url, raw, response.headers.get("Content-Encoding", ""))
                return FetchResult(
                    url=response.geturl(),
                    status=response.status,
                    body=body,
                    content_type=response.headers.get("Content-Type", ""),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    permanent_redirect=redirects.permanent,
                )
        except HTTPError as exc:
            exc.close()
            if exc.code == 304:
                return FetchResult(
                    url=exc.url or url,
                    status=304,
                    body=None,
                    etag=etag,
                    last_modified=last_modified,
                    permanent_redirect=redirects.permanent,
                )
            raise FetchError(
                f"{url}: HTTP {exc.code} {shown(exc.reason)}", status=str(exc.code), hint=_http_hint(exc.code)
            ) from None
        except URLError as exc:
            raise self._network_error(url, exc.reason) from None
        except (TimeoutError, OSError) as exc:
            raise self._network_error(url, exc) from None
        except http.client.HTTPException as exc:
            # The server's own bytes are in the message (a status line, a header): shown, never obeyed.
            raise FetchError(f"{url}: broken HTTP response: {type(exc).__name__} {shown(exc)}".rstrip()) from None
        except ValueError as exc:  # http.client.InvalidURL and friends
            raise FetchError(f"{url}: invalid URL: {exc}", hint="check DIGEST_FEED_URL") from None

    def _read_capped(self, url: str, response: Any, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(url)
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError
            chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large(url)
            chunks.append(chunk)

    def _decode(self, url: str, raw: bytes, encoding: str) -> bytes:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding in ("gzip", "x-gzip"):
            wbits = [16 + zlib.MAX_WBITS]
        elif encoding == "deflate":
            wbits = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # servers send zlib-wrapped or raw deflate
        else:
            raise FetchError(f"{url}: unsupported Content-Encoding {encoding!r}")
        error: zlib.error | None = None
        for bits in wbits:
            try:
                # Decompress at most one byte past the cap: a small gzip bomb
                # must not expand into memory before the size check.
                inflater = zlib.decompressobj(bits)
                body = inflater.decompress(raw, self.max_bytes + 1)
            except zlib.error as exc:
                error = exc
                continue
            if len(body) > self.max_bytes:
                raise self._too_large(url, "decompressed ")
            return body
        raise FetchError(f"{url}: corrupt {encoding} response: {error}")

    def _too_large(self, url: str, what: str = "") -> FetchError:
        return FetchError(
            f"{url}: {what}response is over the {self.max_bytes}-byte limit",
            status="too-large",
            hint="raise DIGEST_FETCH_MAX_BYTES if the feed really is that big",
        )

    def _network_error(self, url: str, reason: object) -> FetchError:
        if isinstance(reason, TimeoutError):
            return FetchError(
                f"{url}: timed out after {self.timeout:g}s",
                status="timeout",
                hint="the server is slow or down; DIGEST_FETCH_TIMEOUT sets the limit",
            )
        if isinstance(reason, socket.gaierror):
            parts = urls.split(url)
            host = parts.hostname if parts is not None else url
            return FetchError(
                f"{url}: cannot resolve host {host!r}", status="unreachable", hint="check the URL and the network"
            )
        if isinstance(reason, ConnectionRefusedError):
            return FetchError(f"{url}: connection refused", status="unreachable")
        detail = getattr(reason, "strerror", None) or str(reason)
        return FetchError(f"{url}: cannot connect: {shown(detail)}", status="unreachable")


def _http_hint(code: int) -> str | None:
    if code == 410:
        return "the feed is gone for good; it will not be fetched again; remove it from DIGEST_FEED_URL"
    if code in (401, 403):
        return "the server refused access"
    if code == 404:
        return "check DIGEST_FEED_URL"
    if code == 429 or code >= 500:
        return "a server problem; the next check tries again"
    return None
