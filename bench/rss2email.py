"""The whole job against rss2email on the same feed and the same sink (run by hand).

    python bench/rss2email.py [--rounds 7] [--feed FILE] [--venv DIR] [--quick]

Both tools run as whole processes, the way cron or a timer would start them,
against the same feed served over loopback HTTP (with ETag and Last-Modified,
as a blog's server answers) and the same aiosmtpd sink (its own process,
accepting and discarding). rss2email 3.14 is installed into its own virtual
environment (``--venv``, default ``bench/.rss2email-venv``, created on the
first run with pip); nothing of it is imported here.

rss2email is configured to do the closest thing to digest's job: one message
per run holding every new entry (``digest = True``), as HTML
(``html-mail = True``), over SMTP. digest does more in the same run: it keeps
its state in SQLite, sanitises and restyles the posts, highlights code,
inlines the CSS (premailer), builds the text part, signs the unsubscribe
link and records the delivery.

Three cases, each from a fresh state directory per round (set-up untimed):

* ``first``: a new feed, every post goes out (digest: ``DIGEST_FIRST_RUN=all``);
* ``one new``: the state has seen every post but the newest; the timed run
  finds and sends that one;
* ``unchanged``: nothing new; the server answers 304 to the conditional GET.

Rounds interleave the two tools so that load from other processes hits both
alike; the report is the median wall time of each and their ratio
(digest / rss2email) per case.

digest is meant to run as a daemon (``digest run``), which pays its start-up
once. A last column times that: the same job (check, render, send) run
inside a process that has already run one, against rss2email's whole
process (rss2email has no daemon: cron starts it each time).
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]

RSS2EMAIL = "rss2email==3.14"
DEFAULT_FEED = ROOT.parent / "shared" / "feeds" / "jekyll-rouge-atom.xml"
FALLBACK_FEED = ROOT / "examples" / "feed.xml"


class FeedServer:
    """Serves one feed body at /feed.xml with an ETag and Last-Modified, 304 to a matching request."""

    def __init__(self) -> None:
        self.body = b""
        self.modified = formatdate(usegmt=True)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.body
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                asked = self.headers.get("If-None-Match")
                if asked == etag or (asked is None and self.headers.get("If-Modified-Since") == server.modified):
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", server.modified)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/feed.xml"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, body: bytes) -> None:
        if body != self.body:
            self.body = body
            self.modified = formatdate(time.time(), usegmt=True)

    def close(self) -> None:
        self.httpd.shutdown()


def without_newest(feed: bytes) -> bytes:
    """The feed as it was before its newest post: the first <entry> or <item> removed."""
    for tag in (b"entry", b"item"):
        match = re.search(rb"<%s[\s>].*?</%s>\s*" % (tag, tag), feed, flags=re.DOTALL)
        if match:
            return feed[: match.start()] + feed[match.end() :]
    raise SystemExit("the feed has no <entry> or <item>")


def rss2email_venv(folder: Path) -> Path:
    r2e = folder / "bin" / "r2e"
    if not r2e.exists():
        print(f"installing {RSS2EMAIL} into {folder} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q", RSS2EMAIL], check=True)
    return r2e


class Sink:
    """aiosmtpd on 127.0.0.1 that counts and discards (the bench process only waits, so it runs here)."""

    def __init__(self) -> None:
        self.messages = 0
        sink = self

        class Count:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                sink.messages += 1
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Count(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


class Rss2email:
    name = "rss2email"

    def __init__(self, r2e: Path, feed_url: str, port: int, state: Path) -> None:
        self.argv = [str(r2e), "-c", str(state / "r2e.cfg"), "-d", str(state / "r2e.json"), "run"]
        (state / "r2e.cfg").write_text(
            "[DEFAULT]\n"
            "from = news@fieldnotes.example.org\n"
            "to = reader@example.com\n"
            "email-protocol = smtp\n"
            "smtp-server = 127.0.0.1\n"
            f"smtp-port = {port}\n"
            "smtp-ssl = False\n"
            "html-mail = True\n"
            "digest = True\n"
            "verbose = warning\n"
            "\n[feed.blog]\n"
            f"url = {feed_url}\n"
        )

    def run(self) -> float:
        return timed(self.argv, os.environ.copy())


class Digest:
    name = "digest"

    def __init__(self, feed_url: str, port: int, state: Path) -> None:
        self.env = {
            **os.environ,
            "DIGEST_FEED_URL": feed_url,
            "DIGEST_DB": str(state / "digest.db"),
            "DIGEST_FROM": "Field Notes <news@fieldnotes.example.org>",
            "DIGEST_PUBLIC_URL": "https://fieldnotes.example.org/digest",
            "DIGEST_SECRET": "bench-secret-0123456789",
            "DIGEST_FIRST_RUN": "all",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_SECURITY": "none",
            "DIGEST_LOG_LEVEL": "WARNING",
        }
        digest = Path(sys.executable).with_name("digest")
        self.argv = [str(digest), "send"]
        adding = [str(digest), "subscribers", "add", "reader@example.com"]
        subprocess.run(adding, env=self.env, check=True, capture_output=True)

    def run(self) -> float:
        return timed(self.argv, self.env)


JOB = """
import os, sys, time
from digest import pipeline
from digest.config import load_settings
from digest.wiring import wire

wiring = wire(load_settings(None, dict(os.environ)))
pipeline.send(wiring)  # the daemon's earlier job: everything loaded, the state up to date
print("ready", flush=True)
sys.stdin.readline()
started = time.perf_counter()
pipeline.send(wiring)
print(time.perf_counter() - started, flush=True)
"""


def daemon_job(case: str, server: FeedServer, feed: bytes, sink: Sink, port: int) -> float:
    """Seconds of one check-and-send job in a process that has run one before (``digest run``'s case)."""
    with tempfile.TemporaryDirectory() as folder:
        tool = Digest(server.url, port, Path(folder))
        server.serve(without_newest(feed) if case == "one new" else feed)
        job = subprocess.Popen([sys.executable, "-c", JOB], env=tool.env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert job.stdin is not None and job.stdout is not None
        if job.stdout.readline().strip() != "ready":
            raise SystemExit("digest daemon job: the first job failed")
        server.serve(feed)
        before = sink.messages
        job.stdin.write("go\n")
        job.stdin.flush()
        elapsed = float(job.stdout.readline())
        job.wait()
        if sink.messages - before != (1 if case == "one new" else 0):
            raise SystemExit(f"digest daemon job, {case}: sent {sink.messages - before} messages")
        return elapsed


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return elapsed


Tool = Rss2email | Digest


def one_case(case: str, make: Callable[[Path], Tool], server: FeedServer, feed: bytes, sink: Sink) -> float:
    """Wall time of one timed run of a tool in ``case``, from a fresh state; checks what it sent."""
    with tempfile.TemporaryDirectory() as folder:
        tool = make(Path(folder))
        if case == "one new":
            server.serve(without_newest(feed))
            tool.run()  # the state now holds every post but the newest
        elif case == "unchanged":
            server.serve(feed)
            tool.run()
        server.serve(feed)
        before = sink.messages
        elapsed = tool.run()
        sent = sink.messages - before
        expected = 0 if case == "unchanged" else 1
        if sent != expected:
            raise SystemExit(f"{tool.name}, {case}: sent {sent} messages, expected {expected}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--feed", type=Path, default=DEFAULT_FEED if DEFAULT_FEED.exists() else FALLBACK_FEED)
    parser.add_argument("--venv", type=Path, default=ROOT / "bench" / ".rss2email-venv")
    parser.add_argument("--quick", action="store_true", help="one round: a smoke test, not a measurement")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    r2e = rss2email_venv(args.venv.resolve())
    # pip compiled rss2email's bytecode when it installed it; an editable
    # install of digest gets its .pyc on first import, unless the environment
    # says PYTHONDONTWRITEBYTECODE: compile it now so both start alike.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True, capture_output=True)
    feed = args.feed.read_bytes()
    sink = Sink()
    port = sink.port
    server = FeedServer()
    makers: dict[str, Callable[[Path], Tool]] = {
        "rss2email": lambda state: Rss2email(r2e, server.url, port, state),
        "digest": lambda state: Digest(server.url, port, state),
    }
    cases = ("first", "one new", "unchanged")
    times: dict[tuple[str, str], list[float]] = {(c, t): [] for c in cases for t in (*makers, "daemon")}
    try:
        for n in range(rounds):
            for case in cases:
                order = list(makers) if n % 2 == 0 else list(reversed(makers))
                for tool in order:
                    times[case, tool].append(one_case(case, makers[tool], server, feed, sink))
                if case != "first":
                    times[case, "daemon"].append(daemon_job(case, server, feed, sink, port))
            print(f"round {n + 1} of {rounds} done", file=sys.stderr)
    finally:
        server.close()
        sink.close()
    print(f"feed: {args.feed.name} ({len(feed):,} bytes), rounds: {rounds}, load average: {os.getloadavg()[0]:.1f}")
    print("| case | rss2email (process) | digest (process) | ratio | digest run's job (in process) | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case in cases:
        theirs = statistics.median(times[case, "rss2email"])
        ours = statistics.median(times[case, "digest"])
        row = f"| {case} | {1000 * theirs:.0f} ms | {1000 * ours:.0f} ms | {ours / theirs:.2f} |"
        if times[case, "daemon"]:
            job = statistics.median(times[case, "daemon"])
            row += f" {1000 * job:.0f} ms | {job / theirs:.2f} |"
        else:
            row += " (the daemon's first job is a first run) | |"
        print(row)


if __name__ == "__main__":
    main()
