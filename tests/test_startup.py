"""Each command imports only what it uses (names of modules, never times).

Runs each command in a fresh interpreter and reads ``sys.modules`` at exit
(every module's full name and its top-level package's):
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

from helpers import EXAMPLE_FEED, FeedHost, FeedResource, SmtpServer, add_subscribers

PROBE = """
import json, sys
sys.argv = ["digest", *json.loads(sys.argv[1])]
try:
    from digest.cli import main
    main()
except SystemExit:
    pass
print(json.dumps(sorted({*sys.modules, *(name.split(".")[0] for name in sys.modules)})), file=sys.stderr)
"""

HEAVY = {"sqlite_utils", "feedparser", "jinja2", "premailer", "cssutils", "lxml", "apscheduler", "email_validator",
         "pygments", "dotenv", "requests"}  # fmt: skip

BUDGET = {
    ("--help",): set(),
    ("--version",): set(),
    ("subscribers", "--help"): set(),
    # No env file here: python-dotenv loads only to read one, Pygments only to render (or to check
    # a DIGEST_CODE_STYLE other than the default).
    ("subscribers", "list"): {"sqlite_utils", "email_validator"},
    ("feeds", "list"): {"sqlite_utils"},
    # check sanitises what it stores (nh3, and lxml to turn embeds into links), but never renders.
    ("check",): {"sqlite_utils", "feedparser", "lxml", "email_validator"},
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
    # feedparser's chardet waits for a body whose declared encodings all fail (below).
    assert "chardet" not in modules


GUESSED = """
import sys
from digest.deferred import Deferred
from digest.fetch import FetchResult
from digest.feeds import parse_feed
assert "chardet" not in sys.modules
body = sys.stdin.buffer.read()
entry = parse_feed(FetchResult(url="https://blog.example/feed", status=200, body=body)).entries[0]
real = sys.modules.get("chardet")
print(entry.title, type(real).__name__, isinstance(real, Deferred), sep="|")
"""


def test_a_body_in_an_undeclared_encoding_still_gets_chardet(tmp_path: Path) -> None:
    # Labelled UTF-8 but written in windows-1251: feedparser's guess (chardet, loaded only now)
    # reads it as Cyrillic; without chardet it would fall back to windows-1252 mojibake.
    title = "Новости блога: сегодня мы расскажем, как работает почтовая рассылка и почему это важно"
    rss = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Блог</title>'
        f"<link>https://blog.example/</link><item><title>{title}</title><link>https://blog.example/1</link>"
        f"<description>{title} {title} {title}</description></item></channel></rss>"
    )
    done = subprocess.run(
        [sys.executable, "-c", GUESSED], input=rss.encode("windows-1251"), cwd=tmp_path, capture_output=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.decode().strip().split("|") == [title, "module", "False"]


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
    assert modules & {"dotenv", "pygments"} == set()


def test_an_env_file_or_another_code_style_loads_what_it_needs(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DIGEST_DB={env['DIGEST_DB']}\n", encoding="utf-8")
    environ = {key: value for key, value in env.items() if key != "DIGEST_DB"}
    assert "dotenv" in imported(("feeds", "list"), environ, tmp_path)
    assert "pygments" in imported(("feeds", "list"), {**env, "DIGEST_CODE_STYLE": "monokai"}, tmp_path)


def test_a_send_that_is_accepted_loads_no_bounce_rules(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    # The bounce rules (digest.bounces, digest.bounceprocess) load on the first refusal, not before.
    add_subscribers(smtp_env, "ada@example.org", "grace@example.org")
    modules = imported(("send",), smtp_env, tmp_path)
    assert len(smtp_server.received) == 2
    assert {"premailer", "smtplib", "digest.mailer"} <= modules
    assert modules & {"digest.bounces", "digest.bounceprocess", "flufl", "mailbox"} == set()
