"""Compiled templates are kept between runs, and an edited template is never served stale."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2

from digest.deferred import Deferred
from digest.render import _premailer, _TemplateCache, bundled_template_dir


def dry_run(env: dict[str, str], out: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "digest", "send", "--dry-run", "--output", str(out)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return next(out.glob("*.html")).read_text()


def test_templates_compiled_once_are_reused_and_edits_show(env: dict[str, str], tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(bundled_template_dir() / "digest.html.j2", templates / "digest.html.j2")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**env, "DIGEST_TEMPLATE_DIR": str(templates), "TMPDIR": str(temp)}

    first = dry_run(env, tmp_path / "one")
    cached = sorted(p.name for p in temp.glob("_jinja2-cache-*/digest-*.cache"))
    assert len(cached) >= 4  # digest.html.j2, _entry, _styles, digest.txt.j2 at least
    assert "Fresh from the edited template" not in first

    again = dry_run(env, tmp_path / "two")
    assert again.count("dg-card") == first.count("dg-card")
    assert sorted(p.name for p in temp.glob("_jinja2-cache-*/digest-*.cache")) == cached

    page = templates / "digest.html.j2"
    page.write_text(page.read_text().replace("</h1>", "</h1><p>Fresh from the edited template</p>", 1))
    assert "Fresh from the edited template" in dry_run(env, tmp_path / "three")


def test_a_cache_folder_that_cannot_be_used_only_costs_the_compile(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"t.j2": "Hello {{ name }}"}),
        bytecode_cache=_TemplateCache(str(not_a_folder)),
        autoescape=True,
    )
    assert env.get_template("t.j2").render(name="reader") == "Hello reader"


def test_premailer_stand_in_for_requests_does_not_outlive_the_import() -> None:
    _premailer()
    assert not isinstance(sys.modules.get("requests"), Deferred)
    assert importlib.util.find_spec("requests") is not None
