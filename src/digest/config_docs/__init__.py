"""Every configuration key with its default and meaning: the one source of the docs.

One module per group of keys (feed.py, content.py, sender.py, smtp.py,
daemon.py, signup.py), in the order the README shows them; key.py holds
``Key`` and ``Group``.

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

from typing import TYPE_CHECKING

from digest.config_docs import content, daemon, feed, sender, signup, smtp

if TYPE_CHECKING:
    from digest.config_docs.key import Group, Key


GROUPS: tuple[Group, ...] = (feed.GROUP, content.GROUP, sender.GROUP, smtp.GROUP, daemon.GROUP, signup.GROUP)


def all_keys() -> list[Key]:
    return [key for group in GROUPS for key in group.keys]
