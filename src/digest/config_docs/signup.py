"""The sign-up form (double opt-in)."""

from __future__ import annotations

from digest.config_docs.key import Group, Key

GROUP = Group(
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
            "DIGEST_SIGNUP_CHALLENGE",
            default="off",
            meaning=(
                "`altcha`: the hosted form carries a proof-of-work challenge (ALTCHA's format) that a "
                "small script on the page solves in about a second before the form is sent; the server "
                "checks it and accepts each solution once. The form then needs JavaScript. "
                "See [Sign-up form](#sign-up-form)."
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
)
