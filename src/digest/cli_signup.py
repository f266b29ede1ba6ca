"""``digest form-snippet``: the sign-up form to paste into a blog's pages. Thin, like cli.py."""

from __future__ import annotations

import html

import click

from digest.errors import ConfigError

_SNIPPET = """\
<!-- digest sign-up form: posts to the hosted page, which asks for one more
     press before it mails a confirmation (a bot posting directly sends nothing). -->
<form action="{action}" method="post" accept-charset="utf-8">
  <label for="digest-email">Email address</label>
  <input id="digest-email" type="email" name="email" required autocomplete="email" maxlength="254">
  <label for="digest-name">Name (optional)</label>
  <input id="digest-name" type="text" name="name" autocomplete="name" maxlength="100">
  <!-- Leave this field empty: it is a trap for bots, hidden from people. -->
  <div aria-hidden="true" style="position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden">
    <label for="digest-website">Website</label>
    <input id="digest-website" type="text" name="website" tabindex="-1" autocomplete="off">
  </div>
  <button type="submit">Subscribe</button>
</form>
"""


def snippet(public_url: str) -> str:
    return _SNIPPET.format(action=html.escape(f"{public_url.rstrip('/')}/subscribe", quote=True))


@click.command("form-snippet", short_help="Print an HTML sign-up form for your blog.")
@click.pass_context
def form_snippet(ctx: click.Context) -> None:
    """Print an HTML sign-up form to paste into your blog's pages.

    It posts to DIGEST_PUBLIC_URL/subscribe; the hosted page there asks for
    one more press, then mails the confirmation link (double opt-in).
    """
    settings = ctx.obj.settings
    if not settings.public_url:
        raise ConfigError("DIGEST_PUBLIC_URL: not set", hint="the form posts to <DIGEST_PUBLIC_URL>/subscribe")
    if not settings.signup:
        raise ConfigError("DIGEST_SIGNUP: off", hint="turn the sign-up on to accept the form's posts")
    click.echo(snippet(settings.public_url), nl=False)
