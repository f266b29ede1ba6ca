"""What goes in a digest: the first run, entries, excerpts, subject, code style, templates, time zone."""

from __future__ import annotations

from digest.config_docs.key import Group, Key

GROUP = Group(
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
)
