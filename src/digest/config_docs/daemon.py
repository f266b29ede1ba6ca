"""The daemon and logging: schedule, check interval, the web app and archive, log level."""

from __future__ import annotations

from digest.config_docs.key import Group, Key

GROUP = Group(
    "The daemon and logging",
    (
        Key(
            "DIGEST_SCHEDULE",
            default="0 8 * * mon",
            meaning=(
                "When `digest run` sends: a 5-field cron expression in `DIGEST_TIMEZONE`, or `every <duration>`"
                " (`every 6h`)."
            ),
        ),
        Key("DIGEST_CHECK_INTERVAL", default="30m", meaning="How often `digest run` checks the feeds."),
        Key(
            "DIGEST_HTTP_LISTEN",
            meaning=(
                "`HOST:PORT` (or a port alone, on 127.0.0.1) for the unsubscribe endpoint, e.g. "
                "`127.0.0.1:8080`. `digest run` serves it only when set; `digest serve` needs it."
            ),
            example="127.0.0.1:8080",
        ),
        Key(
            "DIGEST_ARCHIVE",
            default="on",
            meaning=(
                "`on` or `off`. On, the web app serves the digests sent so far at `/archive` and "
                "`/archive.atom`, without any subscriber's address or link, and every email carries a "
                '"View in browser" link to `<DIGEST_PUBLIC_URL>/archive/<id>`. Off, those routes are 404.'
            ),
        ),
        Key(
            "DIGEST_TRUSTED_PROXIES",
            default="0",
            meaning=(
                "Whose `X-Forwarded-For`/`-Proto` the web app believes: a number of reverse-proxy hops in "
                "front of it (`1` for one nginx or Caddy), or a comma list of the proxies' addresses or "
                "networks (`127.0.0.1,::1`: the headers count only on requests from those). `0`: none; "
                "the connection's address is the client."
            ),
            example="1",
        ),
        Key(
            "DIGEST_LOG_LEVEL",
            default_text="`INFO` for `digest run` and `digest serve`, `WARNING` for the other commands",
            meaning=(
                "`DEBUG`, `INFO`, `WARNING` or `ERROR`, for every command when set. `-v` (INFO) / `-vv` (DEBUG)"
                " override it."
            ),
            example="INFO",
        ),
    ),
)
