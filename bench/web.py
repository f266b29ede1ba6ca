"""The public web app under load, slow clients and a locked database (run by hand).

    python bench/web.py [--requests 2000] [--clients 100] [--drippers 64] [--drip-for 30] [--lock-for 8] [--quick]

Starts `digest serve` (the real WebServer, waitress, in its own process) on
127.0.0.1 over a real SQLite file, with an aiosmtpd sink (in this process)
catching the confirmation mails and the digests, and a few digests already
sent so that the archive has pages. Then, in one run:

0. baseline: one client, one request at a time, GET of archive pages: the
   idle latency every other figure is compared with;
1. load: ``--requests`` requests from ``--clients`` concurrent clients, each
   on a connection of its own, mixing archive pages (40 %), sign-ups (GET
   the form, POST it: 20 %), confirmations (GET the page, POST it: 15 %) and
   one-click unsubscribes (25 %, each for a different subscriber). Counts
   connection resets (and any other transport error) and 5xx answers (goal:
   zero of each), then checks the database: every one-click and every
   confirmation took effect;
2. slow loris: ``--drippers`` connections each send one byte of a request
   every two seconds for ``--drip-for`` seconds, while a client GETs an
   archive page twice a second: the latency of those normal requests (goal:
   under two seconds) and how the server ended the dripping connections;
3. locked database: another process holds a write transaction for
   ``--lock-for`` seconds (longer than the web app's 3 s busy timeout, as a
   big import does) while 20 one-click unsubscribes arrive at once; then a
   real send runs. Goal: every one of them answered 200, none lost (each is
   unsubscribed, none receives the digest).

``--quick`` (200 requests, 20 clients, 8 drippers for 5 s, a 4 s lock, 5
unsubscribes) is the smoke test tests/test_bench_quick.py runs; it checks the
counts, not the speed. Exit status 1 when a reset, a 5xx or a lost
unsubscribe was seen.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import os
import queue
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aiosmtpd.controller import Controller  # noqa: E402

from digest import pipeline, tokens, unsubscribe_queue  # noqa: E402
from digest.config import load_settings  # noqa: E402
from digest.mailer import DeliveryOptions  # noqa: E402
from digest.wiring import wire  # noqa: E402

SECRET = "bench-secret-0123456789"
PUBLIC = "https://bench.example.org"
FAST = DeliveryOptions(attempts=2, backoff=0, connections=4, rate=0.0)
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


# --- the sink ------------------------------------------------------------------------------


@dataclass
class Sink:
    mails: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self.lock:
            self.mails.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))  # type: ignore[attr-defined]
        return "250 OK"

    def confirm_links(self) -> dict[str, str]:
        """The last confirmation link mailed to each address (path and query)."""
        found = {}
        with self.lock:
            mails = list(self.mails)
        for rcpt, data in mails:
            match = re.search(
                rb"https://bench\.example\.org(/confirm\?token=[A-Za-z0-9_.%=-]+)", data.replace(b"=\r\n", b"")
            )
            if match:
                found[rcpt[0]] = match.group(1).decode().replace("=3D", "=")
        return found

    def recipients_of(self, subject_word: str) -> set[str]:
        with self.lock:
            return {
                r for rcpt, data in self.mails if subject_word.encode() in data.split(b"\r\n\r\n", 1)[0] for r in rcpt
            }


# --- the site --------------------------------------------------------------------------------


def write_feed(path: Path, count: int) -> None:
    entries = "".join(
        f"<entry><id>urn:bench:{n}</id><title>Post {n}</title><link href='https://blog.example.org/{n}'/>"
        f"<updated>2026-11-{n:02d}T08:00:00Z</updated><content type='html'>&lt;p&gt;Post {n}, "
        + "with a paragraph of text. " * 20
        + "&lt;/p&gt;</content></entry>"
        for n in range(count, 0, -1)
    )
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'><title>Bench</title>"
        f"<id>urn:bench</id><updated>2026-12-03T08:00:00Z</updated><link href='https://blog.example.org/'/>{entries}</feed>",
        encoding="utf-8",
    )


def environment(folder: Path, smtp_port: int) -> dict[str, str]:
    return {
        "DIGEST_FEED_URL": str(folder / "feed.atom"),
        "DIGEST_DB": str(folder / "digest.db"),
        "DIGEST_FROM": "Bench <news@bench.example.org>",
        "DIGEST_PUBLIC_URL": PUBLIC,
        "DIGEST_SECRET": SECRET,
        "DIGEST_HTTP_LISTEN": "127.0.0.1:0",
        "DIGEST_FIRST_RUN": "all",
        "DIGEST_SIGNUP_MIN_AGE": "0s",
        "DIGEST_SIGNUP_PER_IP": "1000000",  # every client here is 127.0.0.1
        "DIGEST_SIGNUP_MAILS_PER_HOUR": "1000000",
        "DIGEST_LOG_LEVEL": "WARNING",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_SECURITY": "none",
    }


def seed(environ: dict[str, str], subscribers: int) -> list[str]:
    """Three digests sent (the archive's pages), then ``subscribers`` active readers; their tokens."""
    settings = load_settings(None, environ)
    for count in (1, 2, 3):
        write_feed(Path(environ["DIGEST_FEED_URL"]), count)
        if count == 1:
            _add_readers(environ, 5, "early")
        pipeline.send(wire(settings, delivery=FAST))
    _add_readers(environ, subscribers, "reader")
    conn = sqlite3.connect(environ["DIGEST_DB"])
    try:
        rows = conn.execute("SELECT token FROM subscribers WHERE email LIKE 'reader%' ORDER BY id").fetchall()
    finally:
        conn.close()
    return [row[0] for row in rows]


def _add_readers(environ: dict[str, str], count: int, prefix: str) -> None:
    from digest import store  # the real schema and tokens

    with store.opened(Path(environ["DIGEST_DB"])) as db:
        for n in range(count):
            store.add_subscriber(db, f"{prefix}{n}@example.org")


@contextlib.contextmanager
def served(environ: dict[str, str]) -> Iterator[tuple[int, list[str]]]:
    """`digest serve` in its own process; yields its port and the log lines it writes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve"],
        env={**os.environ, **environ, "PYTHONPATH": str(ROOT / "src")},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    ready: queue.Queue[int] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            match = re.match(r"Serving the web app on http://127\.0\.0\.1:(\d+)", line)
            if match:
                ready.put(int(match.group(1)))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield ready.get(timeout=60), log
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- one client ------------------------------------------------------------------------------


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int | None, error: str | None, seconds: float) -> None:
        with self.lock:
            if error is not None:
                self.errors[error] += 1
            else:
                assert status is not None
                self.statuses[status] += 1
                self.latencies.append(seconds)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())


def request(port: int, tally: Tally, method: str, target: str, form: dict[str, str] | None = None) -> str:
    """One request on a connection of its own; the body ('' after a transport error)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        body = urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
    except TRANSPORT_ERRORS as exc:
        tally.record(None, type(exc).__name__, time.perf_counter() - started)
        return ""
    finally:
        connection.close()
    tally.record(response.status, None, time.perf_counter() - started)
    return text


def archive_paths(port: int) -> list[str]:
    page = request(port, Tally(), "GET", "/archive")
    ids = re.findall(r"/archive/(\d+)", page)
    return ["/archive", "/archive.atom", *(f"/archive/{n}" for n in sorted(set(ids)))]


def sign_up(port: int, tally: Tally, email: str) -> None:
    form = request(port, tally, "GET", "/subscribe")
    match = re.search(r'name="form_token" value="([^"]+)"', form)
    if match:
        request(port, tally, "POST", "/subscribe", {"email": email, "form_token": match.group(1)})


def confirm(port: int, tally: Tally, target: str) -> None:
    request(port, tally, "GET", target)
    request(port, tally, "POST", target, {})


def one_click(port: int, tally: Tally, token: str) -> None:
    link = tokens.link_token(SECRET, token)
    request(port, tally, "POST", f"/unsubscribe?token={link}", {"List-Unsubscribe": "One-Click"})


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def baseline(port: int, paths: list[str], count: int) -> float:
    tally = Tally()
    for n in range(count):
        request(port, tally, "GET", paths[n % len(paths)])
    return statistics.median(tally.latencies)


# --- 1. load -----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    tally: Tally
    seconds: float
    unsubscribed: list[str]
    confirmed: list[str]


def load(port: int, sink: Sink, tokens_free: list[str], requests: int, clients: int, paths: list[str]) -> LoadResult:
    # Pre-seed the confirmations the load will press (their sign-ups are not counted).
    confirms = int(requests * 0.15) // 2
    seed_tally = Tally()
    for n in range(confirms):
        sign_up(port, seed_tally, f"pending{n}@example.org")
    links = sink.confirm_links()
    confirm_targets = [(email, links[email]) for email in sorted(links) if email.startswith("pending")]
    jobs: list[tuple[int, Callable[[Tally], object]]] = []  # (requests it makes, job)
    clicks = int(requests * 0.25)
    chosen = tokens_free[:clicks]
    del tokens_free[:clicks]
    jobs += [(1, functools.partial(one_click, port, token=token)) for token in chosen]
    jobs += [(2, functools.partial(confirm, port, target=target)) for _email, target in confirm_targets]
    signups = int(requests * 0.20) // 2
    jobs += [(2, functools.partial(sign_up, port, email=f"new{n}@example.org")) for n in range(signups)]
    made = sum(n for n, _ in jobs)
    pages = (paths[n % len(paths)] for n in range(requests - made))
    jobs += [(1, functools.partial(request, port, method="GET", target=page)) for page in pages]
    random.Random(12).shuffle(jobs)

    tally = Tally()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(job, tally) for _n, job in jobs]:
            future.result()
    seconds = time.perf_counter() - started
    return LoadResult(tally, seconds, chosen, [email for email, _target in confirm_targets])


# --- 2. slow loris --------------------------------------------------------------------------


@dataclass
class DripResult:
    latencies: list[float]
    probe_errors: int
    closed_by_server: int
    still_open: int


def drip(port: int, drippers: int, seconds: float, paths: list[str]) -> DripResult:
    request_bytes = b"GET /archive HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 200 + b"\r\n\r\n"
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(drippers)]
    open_ = set(range(drippers))
    stop = threading.Event()
    probes = Tally()

    def probe() -> None:
        n = 0
        while not stop.is_set():
            request(port, probes, "GET", paths[n % len(paths)])
            n += 1
            stop.wait(0.5)

    prober = threading.Thread(target=probe)
    prober.start()
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and open_:
        for index in list(open_):
            try:
                sockets[index].sendall(request_bytes[sent % len(request_bytes) : sent % len(request_bytes) + 1])
            except OSError:
                open_.discard(index)
        sent += 1
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    stop.set()
    prober.join()
    for sock in sockets:
        sock.close()
    return DripResult(probes.latencies, sum(probes.errors.values()), drippers - len(open_), len(open_))


# --- 3. a locked database ---------------------------------------------------------------------

HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO state (key, value) VALUES ('bench-import', 'running') "
             "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@dataclass
class LockResult:
    statuses: Counter[int]
    errors: int
    slowest: float
    queued: int
    lost: list[str]
    received_digest: int


def locked(
    port: int, environ: dict[str, str], sink: Sink, tokens_free: list[str], hold: float, count: int
) -> LockResult:
    chosen = tokens_free[:count]
    del tokens_free[:count]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, environ["DIGEST_DB"], str(hold)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    tally = Tally()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(lambda token: one_click(port, tally, token), chosen))
    queued = len(unsubscribe_queue.pending(Path(environ["DIGEST_DB"])))
    holder.wait(timeout=hold + 60)

    write_feed(Path(environ["DIGEST_FEED_URL"]), 4)  # a new post: the next send has a digest to deliver
    pipeline.send(wire(load_settings(None, environ), delivery=FAST))
    conn = sqlite3.connect(environ["DIGEST_DB"])
    try:
        emails = {
            token: conn.execute("SELECT email, status FROM subscribers WHERE token = ?", [token]).fetchone()
            for token in chosen
        }
    finally:
        conn.close()
    got_digest = sink.recipients_of("Post 4")
    lost = [email for email, status in emails.values() if status != "unsubscribed" or email in got_digest]
    return LockResult(tally.statuses, sum(tally.errors.values()), max(tally.latencies, default=0.0), queued, lost,
                      len(got_digest))  # fmt: skip


# --- the run ---------------------------------------------------------------------------------


def check_load(environ: dict[str, str], result: LoadResult) -> list[str]:
    conn = sqlite3.connect(environ["DIGEST_DB"])
    try:
        status = dict(conn.execute("SELECT token, status FROM subscribers").fetchall())
        by_email = dict(conn.execute("SELECT email, status FROM subscribers").fetchall())
    finally:
        conn.close()
    problems = [
        f"one-click not applied: {token}" for token in result.unsubscribed if status.get(token) != "unsubscribed"
    ]
    problems += [f"confirmation not applied: {email}" for email in result.confirmed if by_email.get(email) != "active"]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--drippers", type=int, default=64)
    parser.add_argument("--drip-for", type=float, default=30.0)
    parser.add_argument("--lock-for", type=float, default=8.0)
    parser.add_argument("--unsubscribes", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.clients, args.drippers, args.drip_for, args.lock_for, args.unsubscribes = (
            200,
            20,
            8,
            5.0,
            4.0,
            5,
        )

    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    failed = False
    with tempfile.TemporaryDirectory(prefix="digest-bench-web-") as tmp:
        environ = environment(Path(tmp), smtp_port)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
        free_tokens = seed(environ, int(args.requests * 0.25) + args.unsubscribes + 50)
        with served(environ) as (port, log):
            paths = archive_paths(port)
            idle = baseline(port, paths, 100)
            print(f"baseline: one client, archive pages: median {idle * 1000:.1f} ms")

            result = load(port, sink, free_tokens, args.requests, args.clients, paths)
            tally = result.tally
            problems = check_load(environ, result)
            median = statistics.median(tally.latencies) if tally.latencies else 0.0
            print(
                f"load: {tally.requests} requests from {args.clients} clients in {result.seconds:.1f} s "
                f"({tally.requests / result.seconds:.0f}/s); statuses {dict(sorted(tally.statuses.items()))}; "
                f"transport errors {dict(tally.errors) or 0}"
            )
            print(
                f"load: latency median {median * 1000:.0f} ms, p99 {percentile(tally.latencies, 0.99) * 1000:.0f} ms, "
                f"max {max(tally.latencies, default=0) * 1000:.0f} ms; ratio median/baseline: {median / idle:.1f}x"
            )
            print(f"load: resets and other transport errors {sum(tally.errors.values())}, 5xx {tally.server_errors}, "
                  f"one-clicks and confirmations not applied {len(problems)}")  # fmt: skip
            failed |= bool(tally.errors or tally.server_errors or problems)

            dripped = drip(port, args.drippers, args.drip_for, paths)
            lat = dripped.latencies
            slow = sum(1 for x in lat if x >= 2.0)
            print(
                f"slow loris: {args.drippers} connections dripping 1 byte / 2 s for {args.drip_for:.0f} s; "
                f"{len(lat)} normal requests: median {statistics.median(lat) * 1000 if lat else 0:.0f} ms, "
                f"max {max(lat, default=0) * 1000:.0f} ms, {slow} over 2 s, {dripped.probe_errors} failed; "
                f"ratio max/baseline: {max(lat, default=0) / idle:.1f}x; dripping connections closed by the server: "
                f"{dripped.closed_by_server}, still open at the end: {dripped.still_open}"
            )
            failed |= bool(dripped.probe_errors)

            held = locked(port, environ, sink, free_tokens, args.lock_for, args.unsubscribes)
            print(
                f"locked database: {args.unsubscribes} one-click POSTs during a {args.lock_for:.0f} s write "
                f"transaction: statuses {dict(held.statuses)}, transport errors {held.errors}, slowest answer "
                f"{held.slowest:.1f} s, queued {held.queued}; next send to {held.received_digest} readers; "
                f"lost unsubscribes: {len(held.lost)}"
            )
            failed |= bool(held.lost or held.errors or set(held.statuses) != {200})
            tracebacks = sum(1 for line in log if "Traceback" in line)
            kinds = Counter(re.sub(r"^\S+ \S+ (\w+) ([\w.]+): (.{0,60}).*", r"\1 \2: \3", line.strip()) for line in log)
            print(f"server log: {len(log)} lines, {tracebacks} tracebacks; most common: {kinds.most_common(3)}")
            failed |= bool(tracebacks)
    controller.stop()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("web: FAILED (see above)" if failed else "web: no resets, no 5xx, no lost unsubscribes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
