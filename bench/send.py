"""Sending throughput against the practical ceiling (run by hand).

    python bench/send.py [--subscribers 10000] [--connections 2] [--data both] [--rss 100000] [--quick]

Starts an aiosmtpd sink that accepts and discards (in its own process, so it
does not compete with the sender for the GIL), then in the same run:

1. baseline: a plain smtplib loop sending one pre-built digest message N times
   over one connection: what Python can push to this sink at best;
2. digest: ``pipeline.send`` to N subscribers from a real SQLite file, with
   per-subscriber personalisation and one committed delivery row per message.

The subscribers are either ``ascii`` ("Reader 17" at reader17@example.com)
or ``international``, a realistic list whose mix is, of every 20 addresses:
11 ASCII names, 3 accented Latin names (Ada García, Zoë Ångström), 2 CJK or
Cyrillic names (张伟, Ольга), 2 names with a comma or quotes (Anne, Jr.;
Eve "E" Smith), 1 non-ASCII local part (jörg17@example.com, sent with
SMTPUTF8) and 1 internationalised domain (reader17@bücher.example.de).
``--data both`` (the default) runs the two one after the other.

Prints both rates, the sender's CPU time per message, and their ratio (the
digest run sits between two halves of the baseline so that load from other
processes hits both alike; ``--rounds`` repeats and reports the median).
With ``--rss M`` it also measures the peak RSS of a separate process sending
to M subscribers.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from digest import feedcheck, pipeline, planning, store  # noqa: E402
from digest.config import load_settings  # noqa: E402
from digest.models import Subscriber  # noqa: E402
from digest.wiring import wire  # noqa: E402

SINK = """
import socket, sys
from aiosmtpd.controller import Controller

class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
controller = Controller(Discard(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
controller.start()
print(port, flush=True)
sys.stdin.read()
controller.stop()
"""


def start_sink() -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    return sink, int(sink.stdout.readline())


def environment(db: Path, port: int, connections: int) -> dict[str, str]:
    return {
        "DIGEST_FEED_URL": str(ROOT / "examples" / "feed.xml"),
        "DIGEST_DB": str(db),
        "DIGEST_FROM": "Field Notes <news@fieldnotes.example.org>",
        "DIGEST_PUBLIC_URL": "https://fieldnotes.example.org/digest",
        "DIGEST_SECRET": "bench-secret-0123456789",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "SMTP_CONNECTIONS": str(connections),
        "DIGEST_LOG_LEVEL": "WARNING",
    }


_NAMES = (
    *(("Reader {n}", "reader{n}@example.com"),) * 11,
    ("Ada García {n}", "ada{n}@example.com"),
    ("Zoë Ångström", "zoe{n}@example.org"),
    ("François Müller", "francois{n}@example.net"),
    ("张伟", "zhang{n}@example.cn"),
    ("Ольга Иванова", "olga{n}@example.ru"),
    ("Anne, Jr.", "anne{n}@example.com"),
    ('Eve "E" Smith', "eve{n}@example.com"),
    ("Jörg", "jörg{n}@example.com"),
    ("Reader {n}", "reader{n}@bücher.example.de"),
)


def people(subscribers: int, data: str) -> list[tuple[str, str]]:
    """(name, email) for each subscriber: the mix the module docstring describes, or ASCII only."""
    if data == "ascii":
        return [(f"Reader {n}", f"reader{n}@example.com") for n in range(subscribers)]
    return [
        (name.format(n=n), email.format(n=n)) for n, (name, email) in zip(range(subscribers), _cycle(), strict=False)
    ]


def _cycle() -> Iterator[tuple[str, str]]:
    while True:
        yield from _NAMES


def make_database(db: Path, subscribers: int, data: str = "ascii") -> None:
    conn = store.open_db(db)
    now = store.to_text(store.utcnow())
    rows = [(email, name, secrets.token_urlsafe(24), now, now) for name, email in people(subscribers, data)]
    with conn.atomic():
        conn.conn.executemany(
            "INSERT INTO subscribers (email, name, status, token, created, updated, source) "
            "VALUES (?, ?, 'active', ?, ?, ?, 'bench')",
            rows,
        )
    conn.close()


def digest_send(db: Path, port: int, connections: int) -> tuple[int, float]:
    settings = load_settings(None, environment(db, port, connections))
    outcome = pipeline.send(wire(settings))
    report = outcome.digests[0]
    return report.sent, report.elapsed


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline_message(db: Path, port: int) -> bytes:
    """One personalised message of the digest waiting in ``db`` (made here, sent later by ``pipeline.send``)."""
    settings = load_settings(None, environment(db, port, 1))
    conn = store.open_db(db)
    feedcheck.check_feeds(conn, wire(settings))
    plan = planning.create_next_digest(conn, wire(settings))
    conn.close()
    assert plan is not None
    recipient = Subscriber(0, "reader1@example.com", "Reader 1", "active", secrets.token_urlsafe(24))
    return planning.prepared_for(plan, settings).personalise(recipient, datetime.now(UTC)).data


def baseline(message: bytes, port: int, count: int) -> tuple[float, float]:
    """Seconds and CPU seconds for the plain loop."""
    smtp = smtplib.SMTP("127.0.0.1", port)
    cpu, started = cpu_seconds(), time.perf_counter()
    for _ in range(count):
        smtp.sendmail("news@fieldnotes.example.org", ["reader1@example.com"], message)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    smtp.quit()
    return elapsed, cpu


def one_round(subscribers: int, port: int, connections: int, data: str) -> tuple[float, float, float, float]:
    """(plain msg/s, plain CPU ms/msg, digest msg/s, digest CPU ms/msg) for one round."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "digest.db"
        make_database(db, subscribers, data)
        message = baseline_message(db, port)
        # The machine is shared: the digest run sits between two halves of
        # the baseline, so drifting load hits both sides alike.
        half = subscribers // 2
        first, first_cpu = baseline(message, port, half)
        cpu = cpu_seconds()
        sent, elapsed = digest_send(db, port, connections)
        cpu = cpu_seconds() - cpu
        second, second_cpu = baseline(message, port, subscribers - half)
    assert sent == subscribers
    plain_time, plain_cpu = first + second, first_cpu + second_cpu
    return subscribers / plain_time, 1000 * plain_cpu / subscribers, sent / elapsed, 1000 * cpu / sent


def child_rss(subscribers: int, port: int, connections: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "digest.db"
        make_database(db, subscribers)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sent, elapsed = digest_send(db, port, connections)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"{sent} {elapsed:.2f} {before} {peak}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="repeat and report the median ratio")
    parser.add_argument("--rss", type=int, default=0, metavar="M", help="also measure peak RSS for M subscribers")
    parser.add_argument("--data", choices=("ascii", "international", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="200 subscribers, one round: a smoke test")
    parser.add_argument("--child-rss", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        child_rss(args.child_rss, args.port, args.connections)
        return

    if args.quick:
        args.subscribers, args.rounds = 200, 1
    sink, port = start_sink()
    try:
        print(f"subscribers: {args.subscribers}, connections: {args.connections}, cores: {os.cpu_count()}")
        for data in ("ascii", "international") if args.data == "both" else (args.data,):
            ratios = []
            for number in range(1, args.rounds + 1):
                plain, plain_cpu, ours, ours_cpu = one_round(args.subscribers, port, args.connections, data)
                ratios.append(ours / plain)
                print(
                    f"{data} round {number}: plain smtplib loop (1 connection, one pre-built message) "
                    f"{plain:,.0f} msg/s [CPU {plain_cpu:.2f} ms/msg]; digest send ({args.connections} "
                    f"connections, personalised, committed) {ours:,.0f} msg/s [CPU {ours_cpu:.2f} ms/msg]; "
                    f"ratio {ours / plain:.2f}"
                )
            print(f"{data}: ratio digest/plain: {statistics.median(ratios):.2f} (median of {len(ratios)})")
        if args.rss:
            out = subprocess.run(
                [sys.executable, __file__, "--child-rss", str(args.rss), "--port", str(port),
                 "--connections", str(args.connections)],
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            rss_sent, rss_elapsed, before, peak = int(out[0]), float(out[1]), int(out[2]), int(out[3])
            print(f"peak RSS sending to {rss_sent:,} subscribers: {peak / 1024:.0f} MiB "
                  f"(before sending: {before / 1024:.0f} MiB; {rss_sent / rss_elapsed:,.0f} msg/s)")  # fmt: skip
    finally:
        assert sink.stdin is not None
        sink.stdin.close()
        sink.wait(timeout=20)


if __name__ == "__main__":
    main()
