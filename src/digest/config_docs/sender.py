"""Sender and list: From, the public URL and secret, bounces, retries, DKIM."""

from __future__ import annotations

from digest.config_docs.key import Group, Key

GROUP = Group(
    "Sender and list",
    (
        Key(
            "DIGEST_FROM",
            default_text="(required to send or preview)",
            meaning=(
                "The From address, with a display name: `Blog <news@example.com>`. The part before `@` must be "
                "ASCII; a non-ASCII domain is sent in its IDNA (`xn--`) form."
            ),
            example="Field Notes <newsletter@fieldnotes.example.org>",
            set_in_example=True,
        ),
        Key("DIGEST_REPLY_TO", meaning="A Reply-To address.", example="Field Notes <editor@fieldnotes.example.org>"),
        Key(
            "DIGEST_PUBLIC_URL",
            default_text="(required to send)",
            meaning=(
                "Public http(s) base URL of the unsubscribe endpoint (use https); links are "
                "`<URL>/unsubscribe?token=...`. No query, fragment, spaces or user name; a non-ASCII host is "
                "IDNA-encoded."
            ),
            example="https://fieldnotes.example.org/digest",
        ),
        Key(
            "DIGEST_SECRET",
            default_text="(required to send, and for the endpoint)",
            meaning=(
                "Signs unsubscribe links. Generate with `python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`. Changing it breaks the links in mail already sent."
            ),
        ),
        Key(
            "DIGEST_UNSUBSCRIBE_MAILTO",
            meaning=(
                "Also offer a `mailto:` unsubscribe in `List-Unsubscribe` (an address, with or without "
                "`mailto:`; only its normalised address is used)."
            ),
            example="unsubscribe@fieldnotes.example.org",
        ),
        Key(
            "DIGEST_POSTAL_ADDRESS",
            meaning="Postal address shown in the footer (CAN-SPAM).",
            example="Field Notes, 1 Example Street, Springfield",
        ),
        Key(
            "DIGEST_BOUNCE_ON_5XX",
            default="true",
            meaning="Mark a subscriber `bounced` when the server permanently refuses the address.",
        ),
        Key(
            "DIGEST_BOUNCE_ADDRESS",
            meaning=(
                "Bounce address for VERP: each message's envelope sender becomes `local+<token>@domain`, the "
                "token (signed with `DIGEST_SECRET`) naming the digest and subscriber. Needs `DIGEST_SECRET`. "
                "See [Bounces and complaints](#bounces-and-complaints)."
            ),
            example="bounces@fieldnotes.example.org",
        ),
        Key(
            "DIGEST_BOUNCE_THRESHOLD",
            default="3",
            meaning=(
                "Bounce score at which a subscriber becomes `bounced` (hard bounce 1, soft 0.5, once a day at most)."
            ),
        ),
        Key(
            "DIGEST_BOUNCE_HARD",
            default="immediate",
            meaning="`immediate`: one hard bounce is enough; `score`: hard bounces only add to the score.",
        ),
        Key(
            "DIGEST_BOUNCE_RESET",
            default="30d",
            meaning="The score starts again from zero after this long without a bounce.",
        ),
        Key(
            "DIGEST_BOUNCE_IMAP_HOST",
            meaning="IMAP server that `digest bounces process --imap` reads.",
            example="imap.example.com",
        ),
        Key("DIGEST_BOUNCE_IMAP_PORT", default_text="`993` (`143` unless `ssl`)", meaning="Its port.", example="993"),
        Key("DIGEST_BOUNCE_IMAP_USER", meaning="IMAP user name.", example="bounces@fieldnotes.example.org"),
        Key("DIGEST_BOUNCE_IMAP_PASSWORD", meaning="IMAP password (never logged)."),
        Key(
            "DIGEST_BOUNCE_IMAP_FOLDER",
            default="INBOX",
            meaning="The folder holding bounces; processed mail moves to `processed`.",
        ),
        Key(
            "DIGEST_BOUNCE_IMAP_SECURITY",
            default="ssl",
            meaning=(
                "`ssl` (implicit TLS), `starttls`, or `none` (only for a server on the same machine). "
                "Certificates are always verified."
            ),
        ),
        Key(
            "DIGEST_BOUNCE_IMAP_CA_FILE",
            meaning="A CA bundle to verify the IMAP server's certificate with (a private CA).",
        ),
        Key(
            "DIGEST_BOUNCE_INTERVAL",
            default="30m",
            meaning=(
                "How often `digest run` reads the IMAP bounce mailbox (only when `DIGEST_BOUNCE_IMAP_HOST` is set)."
            ),
        ),
        Key(
            "DIGEST_SEND_ATTEMPTS",
            default="4",
            meaning=(
                "Tries per message within one run on temporary SMTP failures (4xx, a dropped connection), with "
                "backoff; a recipient still failing is *deferred* to a later run."
            ),
        ),
        Key(
            "DIGEST_RETRY_FOR",
            default="2d",
            meaning=(
                "How long a deferred delivery keeps being retried by later runs (waits of 1, 5, 15, 60 minutes,"
                " then 2, 4 and 8 hours) before it fails for good."
            ),
        ),
        Key(
            "DIGEST_DKIM_SELECTOR",
            meaning=(
                "DKIM selector. The three `DIGEST_DKIM_*` keys go together; DKIM needs `pip install "
                "'digest[dkim]'`. See [Deliverability](#deliverability)."
            ),
            example="digest",
        ),
        Key(
            "DIGEST_DKIM_DOMAIN",
            meaning="DKIM signing domain (the domain of `DIGEST_FROM`).",
            example="fieldnotes.example.org",
        ),
        Key("DIGEST_DKIM_KEY_FILE", meaning="Path of the PEM RSA private key.", example="/etc/digest/dkim.pem"),
    ),
)
