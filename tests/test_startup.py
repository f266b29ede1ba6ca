"""Each command imports only what it uses (names of modules, never times).

Runs each command in a fresh interpreter and reads ``sys.modules`` at exit:
`--help` loads no stage at all, `check` never loads the renderer, and
`subscribers list` loads neither feeds, templates nor the scheduler.
bench/startup.py measures what this saves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EXAMPLE_FEED, FeedHost, FeedResource

PROBE = """
import json, sys
sys.argv = ["digest", *json.loads(sys.argv[1])]
try:
    from digest.cli import main
    main()
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""

HEAVY = {"sqlite_utils", "feedparser", "jinja2", "premailer", "cssutils", "lxml", "apscheduler", "email_validator",
         "pygments", "dotenv", "requests"}  # fmt: skip

BUDGET = {
    ("--help",): set(),
    ("--version",): set(),
    ("subscribers", "--help"): set(),
    ("subscribers", "list"): {"sqlite_utils", "email_validator", "pygments", "dotenv"},
    ("feeds", "list"): {"sqlite_utils", "pygments", "dotenv"},
    # check sanitises what it stores (nh3, and lxml to turn embeds into links), but never renders.
    ("check",): {"sqlite_utils", "feedparser", "lxml", "email_validator", "pygments", "dotenv"},
}


def imported(args: tuple[str, ...], env: dict[str, str], tmp_path: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        env={"PATH": "/usr/bin:/bin", **env}, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", list(BUDGET), ids=" ".join)
def test_each_command_imports_only_what_it_uses(args: tuple[str, ...], env: dict[str, str], tmp_path: Path) -> None:
    heavy = imported(args, env, tmp_path) & HEAVY
    assert heavy <= BUDGET[args], f"digest {' '.join(args)} imported {sorted(heavy - BUDGET[args])}"


def test_the_probe_sees_what_a_dry_run_needs(env: dict[str, str], tmp_path: Path) -> None:
    # The probe itself works: a dry run does load the renderer.
    assert {"premailer", "jinja2", "feedparser"} <= imported(("send", "--dry-run", "--output", "p"), env, tmp_path)


def test_a_render_loads_neither_requests_nor_the_bounce_detectors(env: dict[str, str], tmp_path: Path) -> None:
    # premailer imports requests only to fetch remote stylesheets, which digest never lets it do:
    # a stand-in takes its name, so what a real requests would pull in (urllib3, charset_normalizer)
    # stays out. flufl.bounce and mailbox serve `digest bounces process`, not a send.
    modules = imported(("send", "--dry-run", "--output", "p"), env, tmp_path)
    assert "premailer" in modules
    assert modules & {"urllib3", "charset_normalizer", "flufl", "mailbox"} == set()


def test_a_send_with_nothing_new_loads_neither_parser_renderer_nor_smtp(
    env: dict[str, str], feed_host: FeedHost, tmp_path: Path
) -> None:
    # The cron-style run that finds nothing: the server answers 304, so the feed is not parsed,
    # no digest is rendered and no connection is opened.
    feed_host.resources["/feed.xml"] = FeedResource(body=EXAMPLE_FEED.read_bytes(), etag='"v1"')
    quiet = {**env, "DIGEST_FIRST_RUN": "none", "DIGEST_FEED_URL": feed_host.url("/feed.xml")}
    assert "feedparser" in imported(("send",), quiet, tmp_path)  # the first run reads the feed
    modules = imported(("send",), quiet, tmp_path)
    assert modules & {"feedparser", "jinja2", "premailer", "cssutils", "smtplib", "flufl", "nh3"} == set()
