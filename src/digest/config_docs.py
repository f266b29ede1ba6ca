"""Every configuration key with its default and meaning: the one source of the docs.

The README's configuration tables and ``config.example.env`` are generated
from this table by ``cog`` (``python -m digest.docgen`` documents how), and
CI fails when they are stale. ``tests/test_config_docs.py`` checks that
these keys are exactly the ones the loader reads, and that each literal
``default`` gives the same settings as leaving the key unset, so the table
cannot drift from ``config.py``.

``meaning`` is Markdown (the README's dialect); ``default`` is a value as it
would be written in an env file, ``default_text`` a sentence where no single
value is the default (a required key, a port that depends on the security).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    name: str
    meaning: str
    default: str | None = None
    note: str | None = None
    default_text: str | None = None
    example: str | None = None
    set_in_example: bool = False

    @property
    def default_markdown(self) -> str:
        if self.default is not None:
            return f"`{self.default}`" + (f" ({self.note})" if self.note else "")
        return self.default_text or "none"

    @property
    def example_value(self) -> str:
        return self.example if self.example is not None else (self.default or "")


@dataclass(frozen=True)
class Group:
    title: str
    keys: tuple[Key, ...]


GROUPS: tuple[Group, ...] = (
    Group(
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
    ),
    Group(
        "What goes in a digest",
        (
            Key(
                "DIGEST_FIRST_RUN",
                default="latest:3",
                meaning=(
                    "What the first digest of a new feed holds: `latest:N` (the N newest), `all` or `none`. The "
                    "rest of the feed is marked seen and never sent."
                ),
            ),
            Key(
                "DIGEST_MAX_ENTRIES",
                default="20",
                meaning="Most entries per digest (at least 1); the rest wait for the next digest, oldest first.",
            ),
            Key(
                "DIGEST_MODE",
                default="excerpt",
                meaning=(
                    "`excerpt` (each post's first blocks) or `full` (whole posts, shortened where they do not fit "
                    "the size budget)."
                ),
            ),
            Key("DIGEST_EXCERPT_WORDS", default="150", meaning="About how many words an excerpt keeps (at least 10)."),
            Key(
                "DIGEST_MAX_HTML_BYTES",
                default="90000",
                meaning=(
                    "Size budget for the inlined HTML (at least 10000), below Gmail's ~102 KB clip; in either mode,"
                    " entries are shortened until the digest fits."
                ),
            ),
            Key(
                "DIGEST_SUBJECT",
                default="{{ feed_title }}: {{ newest.title }}{% if others %} (+{{ others }} more){% endif %}",
                meaning=(
                    "Subject template (Jinja2, sandboxed). Variables: `feed_title`, `newest` (the newest entry: "
                    "`.title`, `.link`, ...), `others`, `count`, `entries`. Always one line, at most 150 "
                    "characters; a template that does too much work (see Security) is refused."
                ),
            ),
            Key(
                "DIGEST_CODE_STYLE",
                default="default",
                meaning=(
                    "Pygments style for code blocks (list them with `pygmentize -L styles`). See [Code "
                    "blocks](#code-blocks)."
                ),
            ),
            Key(
                "DIGEST_TEMPLATE_DIR",
                meaning="Folder of templates overriding the bundled ones by name. See [Templates](#templates).",
                example="my-templates",
            ),
            Key(
                "DIGEST_TIMEZONE",
                default="UTC",
                meaning="IANA time zone (`Europe/Paris`) for dates in the digest and for `DIGEST_SCHEDULE`.",
            ),
        ),
    ),
    Group(
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
            Key(
                "DIGEST_REPLY_TO", meaning="A Reply-To address.", example="Field Notes <editor@fieldnotes.example.org>"
            ),
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
                    "Bounce score at which a subscriber becomes `bounced` (hard bounce 1, soft 0.5, once a day at "
                    "most)."
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
            Key(
                "DIGEST_BOUNCE_IMAP_PORT", default_text="`993` (`143` unless `ssl`)", meaning="Its port.", example="993"
            ),
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
    ),
    Group(
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
                meaning=(
                    "Verify the server's TLS certificate. Turn off only to test against a local self-signed server."
                ),
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
    ),
    Group(
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
    ),
    Group(
        "Sign-up form (double opt-in)",
        (
            Key(
                "DIGEST_SIGNUP",
                default="on",
                meaning=(
                    "Serve the sign-up form (`/subscribe`) and confirmation (`/confirm`) pages on the web app. "
                    "See [Sign-up form](#sign-up-form)."
                ),
            ),
            Key(
                "DIGEST_CONFIRM_TTL",
                default="7d",
                meaning=(
                    "How long a confirmation link works; pending sign-ups older than this are deleted by `digest run`."
                ),
            ),
            Key(
                "DIGEST_CONFIRM_INTERVAL",
                default="24h",
                meaning="At most one confirmation email per address in this time, however often the form is sent.",
            ),
            Key(
                "DIGEST_SIGNUP_PER_IP",
                default="20",
                meaning=(
                    "Sign-up requests per client address per hour (a household or an office behind one address "
                    'can still sign up ten people); more get a neutral "try later" page.'
                ),
            ),
            Key(
                "DIGEST_SIGNUP_MAILS_PER_HOUR",
                default="100",
                meaning=(
                    "Confirmation emails per hour, all addresses together; past it sign-ups get a neutral "
                    '"try later" page and a warning is logged (a list-bombing flood stops here).'
                ),
            ),
            Key(
                "DIGEST_SIGNUP_MIN_AGE",
                default="3s",
                meaning=(
                    "A form must have been on screen this long before it is sent; a faster post (a bot) "
                    "gets the page back with one more button. `0` turns the check off."
                ),
            ),
            Key(
                "DIGEST_WELCOME",
                default="on",
                meaning=(
                    "Send a welcome email after confirmation, from `welcome.html.j2` and `welcome.txt.j2` in "
                    "`DIGEST_TEMPLATE_DIR`; without those templates no welcome is sent."
                ),
            ),
        ),
    ),
)


def all_keys() -> list[Key]:
    return [key for group in GROUPS for key in group.keys]
