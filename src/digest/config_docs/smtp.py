"""SMTP: the server, its security and login, connections and rate."""

from __future__ import annotations

from digest.config_docs.key import Group, Key

GROUP = Group(
    "SMTP",
    (
        Key("SMTP_HOST", default="localhost", meaning="SMTP server or relay."),
        Key(
            "SMTP_PORT",
            default_text="587 for `starttls`, 465 for `ssl`, 25 for `none`",
            meaning="Port (1 to 65535).",
            example="587",
        ),
        Key("SMTP_SECURITY", default="starttls", meaning="`starttls`, `ssl` (implicit TLS) or `none`."),
        Key("SMTP_USERNAME", meaning="AUTH is used when this is set."),
        Key("SMTP_PASSWORD", meaning="Password for AUTH. Never logged or printed."),
        Key("SMTP_TIMEOUT", default="30s", meaning="Timeout per SMTP command."),
        Key("SMTP_CONNECTIONS", default="2", meaning="Connections used in parallel (1 to 32)."),
        Key(
            "SMTP_RATE",
            default="0",
            meaning=(
                "At most this many messages per second across all connections (0: unlimited), for provider quotas."
            ),
        ),
        Key(
            "SMTP_VERIFY_CERT",
            default="true",
            meaning=("Verify the server's TLS certificate. Turn off only to test against a local self-signed server."),
        ),
        Key(
            "DIGEST_ALLOW_TEST_DOMAINS",
            default="false",
            meaning=(
                "Accept addresses at special-use names (`localhost`, `*.test`, `*.example`, `*.invalid`, "
                "`*.local`) in `subscribers add` and `send --to`, for trying a local relay (Postfix delivering "
                "to `root@localhost`, MailHog). Off, they are refused as undeliverable. Imports always refuse "
                "them."
            ),
        ),
    ),
)
