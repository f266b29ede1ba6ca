"""CI runs exactly the README's test command, so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^ {3}(python3 -m venv \.venv && .*)$", readme, re.MULTILINE)
    assert len(commands) == 2, commands  # quick start: the example run, then the test suite
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip("\n").splitlines()
    assert ci[-1] == commands[1]
    assert "cog --check README.md config.example.env" in commands[1]
