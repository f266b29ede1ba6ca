"""Peak memory of whole commands against the size of the data (run by hand).

    python bench/memory.py [--big | --huge] [--send-seconds 30] [--send-all-up-to N]
                           [--cases NAME ...] [--quick]

Builds, in a temporary folder, databases the way digest leaves them (the real
schema; subscribers, sent digests of about 80 KB of HTML each, one delivery
row per subscriber and digest with its Message-ID, the kept counts: see
``build_db``) and CSV exports, then runs each command as its own process
(``python -m digest ...``) and reads that process's peak resident set size
(VmHWM, written by the process as it exits):

* ``send --dry-run`` and ``send --to`` (a test send, to an aiosmtpd sink in
  this process), on every database; the database must come out
  byte-identical (checked: sha256);
* the dry run again while this process holds the file open with committed
  frames in -wal, as a running daemon does (file and -wal checked);
* ``status``;
* ``send`` to every subscriber. A list longer than ``--send-all-up-to`` is
  stopped with SIGTERM after ``--send-seconds`` (digest finishes the messages
  in flight and exits); ``--send-seconds 0`` sends to everyone. The sink
  counts the messages each subscriber got: each must have got one, the
  delivery log must say the same, and the kept counts must match it;
* ``subscribers import`` of a CSV export into an empty database;
* the baseline, in the same run: what a dry run did before any of its work,
  ``sqlite3``'s ``backup()`` of the database into memory, in a bare Python.

Cases: tiny (1,000 subscribers, no history; a 1,000-row file) is the
baseline of each command; 100,000 subscribers with 10 and with 50 past
digests; 100,000 rows. ``--big`` adds 1,000,000 subscribers with 10 past
digests (10M delivery rows) and 1,000,000 rows; ``--huge`` also 1,000,000
subscribers with 50 (50M delivery rows, 7.1 GiB; under 3 minutes to build).
``--cases`` runs only the named ones, of all of these (and tiny). Prints one line per
command and case with its ratio to the same command's tiny case.
``--quick`` (1,000 and 5,000 subscribers, 2 digests, 5,000 rows) is a
smoke test, not a measurement.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import Envelope  # noqa: E402

from _data import build_db, invalid_rows, make_csv  # noqa: E402

DOMAIN = "bench-mail.org"
BESIDE_WAL = "dry run beside -wal"  # while another process (a daemon) holds -wal frames
COMMANDS = ("send --dry-run", BESIDE_WAL, "send --to", "status", "send")
BASELINE = "baseline: backup()"  # the old dry run's copy alone (Python and sqlite3, nothing else)
HTML = "<p>" + "An archived digest paragraph. " * 2700 + "</p>"  # about 80 KB, like a real digest


@dataclass(frozen=True)
class Case:
    name: str
    subscribers: int
    digests: int


class Sink:
    """The SMTP server: discards each message, counting how many each subscriber got.

    Subscriber ``n`` is ``reader{n}@bench-mail.org``: ``copies[n]`` counts its
    messages (up to 255), ``others`` those to any other address.
    """

    def __init__(self) -> None:
        self.copies = bytearray()
        self.others = 0

    def reset(self, subscribers: int) -> None:
        self.copies, self.others = bytearray(subscribers), 0

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            local, _, domain = address.partition("@")
            number = local.removeprefix("reader")
            if domain == "bench-mail.org" and number.isdigit() and int(number) < len(self.copies):
                self.copies[int(number)] = min(255, self.copies[int(number)] + 1)
            else:
                self.others += 1
        return "250 OK"

    def messages(self) -> int:
        return sum(self.copies) + self.others


# Runs digest's __main__ in this process and, at exit, writes the process's
# VmHWM (peak resident set) to a file. Not os.wait4's ru_maxrss: Linux carries
# that across exec, so it would include the parent that spawned the command.
_MEASURED = """import atexit, os, runpy, sys
def _hwm():
    with open('/proc/self/status') as status, open(os.environ['BENCH_HWM_FILE'], 'w') as out:
        out.write(next(line for line in status if line.startswith('VmHWM:')).split()[1])
atexit.register(_hwm)
if sys.argv[1:2] == ['--baseline-backup']:  # what a dry run did before: copy the database into memory
    import sqlite3
    sqlite3.connect(sys.argv[2]).backup(sqlite3.connect(':memory:'))
    sys.exit(0)
sys.argv = ['digest', *sys.argv[1:]]
runpy.run_module('digest', run_name='__main__', alter_sys=True)
"""


def peak_mib(args: list[str], environ: dict[str, str], *, stop_after: float = 0.0) -> tuple[float, int]:
    """(peak RSS in MiB, exit status) of ``python -m digest ARGS`` as a whole process."""
    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as hwm:
        child = subprocess.Popen(
            [sys.executable, "-c", _MEASURED, *args],
            env={**environ, "BENCH_HWM_FILE": hwm.name},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _, error = child.communicate(timeout=stop_after or None)
            stopped = False
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGTERM)  # digest finishes what is in flight and exits
            _, error = child.communicate()
            stopped = True
        text = error.decode(errors="replace")
        code = child.returncode
        if "Traceback" in text or (code not in (0, 1) and not stopped):
            raise SystemExit(f"digest {' '.join(args)} failed ({code}):\n{text[-2000:]}")
        return int(Path(hwm.name).read_text() or 0) / 1024, code


def sha256(path: Path) -> str:
    with path.open("rb") as data:  # streamed: the big files are larger than memory should be
        return hashlib.file_digest(data, "sha256").hexdigest()


@dataclass
class SendOutcome:
    seconds: float
    sent: int
    to_the_end: bool


def run_case(
    case: Case, folder: Path, base_env: dict[str, str], send_seconds: float, sink: Sink
) -> tuple[dict[str, float], SendOutcome]:
    db = folder / f"{case.name}.db"
    started = time.monotonic()
    builder = multiprocessing.Process(
        target=build_db, args=(db, case.subscribers, case.digests), kwargs={"domain": DOMAIN, "html": HTML}
    )
    builder.start()  # in a child, so this process stays small
    builder.join()
    assert builder.exitcode == 0, "building the database failed"
    size = db.stat().st_size / 2**30
    print(f"{case.name}: built in {time.monotonic() - started:.0f} s, {size:.2f} GiB", flush=True)
    environ = {**base_env, "DIGEST_DB": str(db)}
    peaks: dict[str, float] = {}
    before = sha256(db)
    peaks[BASELINE], _ = peak_mib(["--baseline-backup", str(db)], environ)
    sink.reset(case.subscribers)
    peaks["send --dry-run"], code = peak_mib(["send", "--dry-run", "--output", str(folder / "preview")], environ)
    assert code == 0, f"the dry run exited {code}"
    assert sha256(db) == before, "the dry run changed the database"
    peaks["send --to"], code = peak_mib(["send", "--to", "tester@bench-mail.org"], environ)
    assert code == 0, f"the test send exited {code}"
    assert sha256(db) == before, "the test send changed the database"
    assert (sink.messages(), sink.others) == (1, 1), "the test send did not send one message, to the tester"
    peaks[BESIDE_WAL] = dry_run_beside_wal(db, environ, folder)
    peaks["status"], code = peak_mib(["status"], environ)
    assert code == 0, f"status exited {code}"
    sink.reset(case.subscribers)
    started = time.monotonic()
    peaks["send"], _ = peak_mib(["send"], environ, stop_after=send_seconds)
    outcome = check_send(db, case, sink, time.monotonic() - started)
    db.unlink()
    return peaks, outcome


def dry_run_beside_wal(db: Path, environ: dict[str, str], folder: Path) -> float:
    """The dry run's peak while another process holds the file open with committed frames in -wal.

    As when the daemon runs: the file and the -wal must come out byte-identical.
    """
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("UPDATE subscribers SET updated = '2026-12-02T08:00:00+00:00' WHERE id = 1")  # a real change
        wal = db.with_name(db.name + "-wal")
        assert wal.stat().st_size > 0
        before = sha256(db), sha256(wal)
        peak, code = peak_mib(["send", "--dry-run", "--output", str(folder / "preview")], environ)
        assert code == 0, f"the dry run beside -wal exited {code}"
        assert (sha256(db), sha256(wal)) == before, "the dry run beside -wal frames changed the files"
    finally:
        writer.close()  # the last connection: checkpoints the frames, the next commands see a tidy file
    return peak


def check_send(db: Path, case: Case, sink: Sink, seconds: float) -> SendOutcome:
    """What the send did, from the sink's counts and the delivery log; they must agree."""
    conn = sqlite3.connect(db)
    digest_id, status = conn.execute("SELECT id, status FROM digests ORDER BY id DESC LIMIT 1").fetchone()
    assert digest_id == case.digests + 1, f"the send made no new digest (latest: {digest_id}, {status})"
    logged = dict(
        conn.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE digest_id = ? GROUP BY status", [digest_id]
        ).fetchall()
    )
    distinct = conn.execute(
        "SELECT COUNT(DISTINCT subscriber_id) FROM deliveries WHERE digest_id = ?", [digest_id]
    ).fetchone()[0]
    tallies = dict(
        conn.execute("SELECT status, n FROM delivery_tallies WHERE digest_id = ? AND n > 0", [digest_id]).fetchall()
    )
    conn.close()
    sent = logged.get("sent", 0)
    once, more = sink.copies.count(1), len(sink.copies) - sink.copies.count(0) - sink.copies.count(1)
    assert logged == {"sent": sent} and distinct == sent, f"the delivery log has {logged} for {distinct} subscribers"
    assert tallies == logged, f"the kept counts {tallies} differ from the delivery log {logged}"
    assert (once, more, sink.others) == (sent, 0, 0), (
        f"the sink got {once} subscribers once, {more} more than once, {sink.others} others; the log says {sent} sent"
    )
    to_the_end = sent == case.subscribers
    assert to_the_end == (status == "sent"), f"digest {digest_id} is {status!r} after {sent} deliveries"
    assert sent > 0
    print(
        f"{case.name}: the send reached {sent:,} of {case.subscribers:,} subscribers in {seconds:.0f} s"
        f" ({sent / seconds:.0f}/s{', to the end' if to_the_end else ', stopped'}); each got exactly one"
        " message (sink), the delivery log and the kept counts agree",
        flush=True,
    )
    return SendOutcome(seconds, sent, to_the_end)


def run_import(rows: int, folder: Path, base_env: dict[str, str]) -> float:
    csv_file = folder / f"{rows}.csv"
    make_csv(csv_file, rows)
    target = folder / f"import-{rows}.db"
    peak, _ = peak_mib(["subscribers", "import", str(csv_file)], {**base_env, "DIGEST_DB": str(target)})
    conn = sqlite3.connect(target)
    imported = conn.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0]
    conn.close()
    assert imported == rows - invalid_rows(rows), imported
    csv_file.unlink()
    target.unlink()
    return peak


def cases_for(args: argparse.Namespace) -> tuple[list[Case], list[int]]:
    if args.quick:
        return [Case("tiny", 1000, 0), Case("5k x 2", 5000, 2)], [1000, 5000]
    cases = [Case("tiny", 1000, 0), Case("100k x 10", 100_000, 10), Case("100k x 50", 100_000, 50)]
    big, huge = [Case("1M x 10", 1_000_000, 10)], [Case("1M x 50", 1_000_000, 50)]
    sizes = [1000, 100_000, 1_000_000]
    if args.cases:  # any of them, by name; the baselines (tiny, 1,000 rows) always
        chosen = [case for case in cases + big + huge if case.name == "tiny" or case.name in args.cases]
        return chosen, [size for size in sizes if size == sizes[0] or f"{size:,} rows" in args.cases]
    extra = args.big or args.huge
    return cases + (big if extra else []) + (huge if args.huge else []), sizes if extra else sizes[:2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="add 1,000,000 subscribers (10 digests) and 1,000,000 rows")
    parser.add_argument("--huge", action="store_true", help="--big and 1,000,000 subscribers with 50 digests")
    parser.add_argument("--send-seconds", type=float, default=30.0, help="stop a send after this long (0: never)")
    parser.add_argument(
        "--send-all-up-to",
        type=int,
        default=0,
        metavar="N",
        help="send to the end on lists of up to N subscribers, whatever --send-seconds says",
    )
    parser.add_argument(
        "--cases", nargs="+", metavar="NAME", help='only these cases besides tiny ("1M x 10", "100,000 rows")'
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke test, not a measurement")
    args = parser.parse_args()
    cases, sizes = cases_for(args)
    if args.quick:
        args.send_seconds = min(args.send_seconds or 5.0, 5.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    server = Controller(sink, hostname="127.0.0.1", port=port)
    server.start()
    base_env = {
        "PATH": os.environ.get("PATH", ""),
        "DIGEST_FEED_URL": str(ROOT / "examples" / "feed.xml"),
        "DIGEST_FROM": "Bench <news@bench-mail.org>",
        "DIGEST_PUBLIC_URL": "https://bench-mail.org/digest",
        "DIGEST_SECRET": "bench-secret-0123456789",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "PYTHONPATH": str(ROOT / "src"),
    }
    print(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average: {os.getloadavg()}", flush=True)
    results: dict[str, dict[str, float]] = {}
    sends: dict[str, SendOutcome] = {}
    imports: dict[int, float] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for case in cases:
                seconds = 0.0 if case.subscribers <= args.send_all_up_to else args.send_seconds
                results[case.name], sends[case.name] = run_case(case, Path(folder), base_env, seconds, sink)
                print(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average: {os.getloadavg()}", flush=True)
            for rows in sizes:
                imports[rows] = run_import(rows, Path(folder), base_env)
    finally:
        server.stop()
    print(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average: {os.getloadavg()}")
    report(results, sends, imports)


def report(results: dict[str, dict[str, float]], sends: dict[str, SendOutcome], imports: dict[int, float]) -> None:
    tiny = results["tiny"]
    ratios = []
    print(f"{'command':<20} {'case':<22} {'peak MiB':>9} {'x tiny':>7}")
    for command in COMMANDS:
        for name, peaks in results.items():
            ratios.append(peaks[command] / tiny[command])
            print(f"{command:<20} {name:<22} {peaks[command]:>9.1f} {ratios[-1]:>7.2f}")
    for name, peaks in results.items():
        print(f"{BASELINE:<20} {name:<22} {peaks[BASELINE]:>9.1f} {peaks[BASELINE] / tiny[BASELINE]:>7.2f}")
    smallest = min(imports)
    for rows, peak in imports.items():
        ratios.append(peak / imports[smallest])
        print(f"{'subscribers import':<20} {f'{rows:,} rows':<22} {peak:>9.1f} {ratios[-1]:>7.2f}")
    for name, outcome in sends.items():
        how = "to the end" if outcome.to_the_end else "stopped"
        print(f"send {name}: {outcome.sent:,} messages in {outcome.seconds:.0f} s ({how})")
    print(f"largest ratio vs tiny: {max(ratios):.2f}")


if __name__ == "__main__":
    main()
