"""The generated parts of the README and of ``config.example.env``.

Both files hold ``cog`` blocks (https://nedbatchelder.com/code/cog/) that call
these functions; regenerate after changing a command, an option or
``config_docs.GROUPS`` with::

    .venv/bin/cog -r README.md config.example.env

and CI runs ``cog --check`` on both, so a stale table fails the build.
"""

from __future__ import annotations

import re
import textwrap

import click

from digest.config_docs import GROUPS
from digest.config_docs.key import Key

_LINK = re.compile(r"\[([^\]]+)\]\(#[^)]+\)")
_ENV_WIDTH = 78


def config_tables() -> str:
    """The README's configuration tables, one per group of keys."""
    parts = []
    for group in GROUPS:
        rows = [f"| `{key.name}` | {key.default_markdown} | {key.meaning} |" for key in group.keys]
        parts.append(f"**{group.title}**\n\n| key | default | meaning |\n| --- | --- | --- |\n" + "\n".join(rows))
    return "\n\n".join(parts) + "\n"


def example_env() -> str:
    """Every key of ``config.example.env``: its default and meaning as a comment, then the line."""
    parts = []
    for group in GROUPS:
        title = f"# --- {group.title} "
        lines = [title + "-" * max(3, _ENV_WIDTH + 4 - len(title))]
        for key in group.keys:
            lines.extend(_env_comment(key))
            lines.append(("" if key.set_in_example else "#") + f"{key.name}={key.example_value}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _env_comment(key: Key) -> list[str]:
    text = f"{key.name}: {_plain(key.meaning)}"
    if key.default is not None:
        text += f" Default: {key.default}" + (f" ({key.note})." if key.note else ".")
    elif key.default_text and key.default_text.startswith("("):
        text += f" {_plain(key.default_text[1:-1]).capitalize()}."
    elif key.default_text:
        text += f" Default: {_plain(key.default_text)}."
    return textwrap.wrap(text, _ENV_WIDTH, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def _plain(markdown: str) -> str:
    """Markdown as a comment reads it: links to README sections name the section."""
    return _LINK.sub(lambda m: f'"{m.group(1)}" in the README', markdown).replace("`", "")


def global_options(cli: click.Group) -> str:
    """The options that come before the command, as a table."""
    context = click.Context(cli, info_name="digest")
    return _options_table(cli, context) + "\n"


def command_reference(cli: click.Group) -> str:
    """Every command with its usage line, summary and options, from click itself."""
    blocks = []
    for path, command in _commands(cli, ("digest",)):
        context = click.Context(command, info_name=path[-1])
        usage = f"{' '.join(path)} {' '.join(command.collect_usage_pieces(context))}"
        summary = " ".join((command.help or "").split("\n\n", 1)[0].split())
        block = f"**`{usage}`**: {summary}"
        table = _options_table(command, context)
        if table:
            block += "\n\n" + table
        blocks.append(block)
    return "\n\n".join(blocks) + "\n"


def _options_table(command: click.Command, context: click.Context) -> str:
    rows = []
    for param in command.get_params(context):
        record = param.get_help_record(context) if isinstance(param, click.Option) else None
        if record is None or "--help" in record[0]:
            continue
        flags, help_text = record
        meaning = " ".join(help_text.split()).replace("|", r"\|")
        rows.append(f"| `{flags}` | {meaning} |")
    return "| option | meaning |\n| --- | --- |\n" + "\n".join(rows) if rows else ""


def _commands(group: click.Group, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    context = click.Context(group, info_name=path[-1])
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*path, name)))
        else:
            found.append(((*path, name), command))
    return found
