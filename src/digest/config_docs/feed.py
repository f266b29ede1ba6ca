"""Feed and state: the feeds, the database, fetch limits."""

from __future__ import annotations

from digest.config_docs.key import Group, Key

GROUP = Group(
    "Feed and state",
    (
        Key(
            "DIGEST_FEED_URL",
            default_text="(required)",
            meaning=(
                "The feed: an http(s) URL, a `file://` URL or a local path. Several feeds: separate them with "
                "commas or spaces. See [Feeds](#feeds)."
            ),
            example="examples/feed.xml",
            set_in_example=True,
        ),
        Key(
            "DIGEST_DB",
            default_text="`digest.db` in the env file's folder (without an env file: the working directory)",
            meaning="The SQLite state file. `--db PATH` overrides it.",
            example="digest.db",
        ),
        Key(
            "DIGEST_FETCH_TIMEOUT",
            default="20s",
            meaning="Timeout for one feed fetch (each wait and the whole download).",
        ),
        Key(
            "DIGEST_FETCH_MAX_BYTES",
            default="10485760",
            note="10 MiB",
            meaning="Largest feed accepted; at least 1024.",
        ),
    ),
)
