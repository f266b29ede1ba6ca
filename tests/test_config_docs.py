"""The documented configuration is the configuration the loader reads.

config_docs.GROUPS feeds the README's tables and config.example.env (by cog,
checked in CI); these tests tie that table to config.py itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from digest.config import AskedEnvironment, load_settings
from digest.config_docs import all_keys

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = {key.name: key for key in all_keys()}


def loader_keys() -> set[str]:
    recording = AskedEnvironment({})
    load_settings(None, recording)
    return set(recording.asked)


def test_the_documented_keys_are_exactly_the_keys_the_loader_reads() -> None:
    assert len(DOCUMENTED) == len(all_keys()), "a key is documented twice"
    assert set(DOCUMENTED) == loader_keys()


def test_config_example_env_lists_every_key_once_and_sets_only_the_quick_start_ones() -> None:
    text = (ROOT / "config.example.env").read_text(encoding="utf-8")
    lines = re.findall(r"^(#?)([A-Z][A-Z0-9_]*)=", text, re.MULTILINE)
    names = [name for _, name in lines]
    assert sorted(names) == sorted(DOCUMENTED)
    assert {name for hashed, name in lines if not hashed} == {"DIGEST_FEED_URL", "DIGEST_FROM"}
    assert set(dotenv_values(ROOT / "config.example.env")) == {"DIGEST_FEED_URL", "DIGEST_FROM"}


def test_the_readme_has_one_table_row_per_key() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in DOCUMENTED:
        assert readme.count(f"| `{name}` |") == 1, name


LITERAL_DEFAULTS = [key for key in all_keys() if key.default is not None]


@pytest.mark.parametrize("key", LITERAL_DEFAULTS, ids=lambda key: key.name)
def test_a_documented_default_is_what_an_unset_key_gives(key: object, env: dict[str, str]) -> None:
    from digest.config_docs.key import Key

    assert isinstance(key, Key) and key.default is not None
    base = {name: value for name, value in env.items() if name != key.name}
    assert load_settings(None, {**base, key.name: key.default}) == load_settings(None, base)


def test_most_keys_state_a_literal_default() -> None:
    # A guard against the table drifting to prose defaults that the test above cannot check.
    assert len(LITERAL_DEFAULTS) >= 25
