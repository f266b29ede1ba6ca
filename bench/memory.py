"""Peak memory of whole commands against the size of the data (run by hand).

    python bench/memory.py [--big] [--send-seconds 30] [--quick]

Builds, in a temporary folder, databases the way digest leaves them (the real
schema; subscribers, sent digests of about 80 KB of HTML each, one delivery
row per subscriber and digest, the kept counts) and CSV exports, then runs
each command as its own process (``python -m digest ...``) and reads that
process's peak resident set size (VmHWM, written by the process as it exits):

* ``send --dry-run`` and ``send --to`` (a test send, to an aiosmtpd sink in
  this process), on every database; the dry run's database must come out
  byte-identical (checked: sha256);
* ``status``;
* ``send`` to every subscriber (the sink discards). A list too long to send
  in ``--send-seconds`` is stopped with SIGTERM then (digest finishes the
  messages in flight and exits); ``--send-seconds 0`` sends to everyone;
* ``subscribers import`` of a CSV export into an empty database;
* the baseline, in the same run: what a dry run did before any of its work,
  ``sqlite3``'s ``backup()`` of the database into memory, in a bare Python.

Cases: tiny (1,000 subscribers, no history; a 1,000-row file) is the
baseline of each command; 100,000 subscribers with 10 and with 50 past
digests; 100,000 rows. ``--big`` adds 1,000,000 subscribers with 10 past
digests (10M delivery rows) and 1,000,000 rows. Prints one line per command
and case with its ratio to the same command's tiny case. ``--quick`` (1,000
and 5,000 subscribers, 2 digests, 5,000 rows) is a smoke test, not a
measurement.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aiosmtpd.controller import Controller  # noqa: E402

from _data import build_db, invalid_rows, make_csv  # noqa: E402

DOMAIN = "bench-mail.org"
HTML = "<p>" + "An archived digest paragraph. " * 2700 + "</p>"  # about 80 KB, like a real digest


@dataclass(frozen=True)
class Case:
    name: str
    subscribers: int
    digests: int


class Discard:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


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
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_case(case: Case, folder: Path, base_env: dict[str, str], send_seconds: float) -> dict[str, float]:
    db = folder / f"{case.name}.db"
    builder = multiprocessing.Process(
        target=build_db, args=(db, case.subscribers, case.digests), kwargs={"domain": DOMAIN, "html": HTML}
    )
    builder.start()  # in a child, so this process stays small
    builder.join()
    assert builder.exitcode == 0, "building the database failed"
    environ = {**base_env, "DIGEST_DB": str(db)}
    peaks: dict[str, float] = {}
    before = sha256(db)
    peaks["baseline: backup()"], _ = peak_mib(["--baseline-backup", str(db)], environ)
    peaks["send --dry-run"], _ = peak_mib(["send", "--dry-run", "--output", str(folder / "preview")], environ)
    assert sha256(db) == before, "the dry run changed the database"
    peaks["send --to"], _ = peak_mib(["send", "--to", "tester@bench-mail.org"], environ)
    assert sha256(db) == before, "the test send changed the database"
    peaks["status"], _ = peak_mib(["status"], environ)
    peaks["send"], _ = peak_mib(["send"], environ, stop_after=send_seconds)
    conn = sqlite3.connect(db)
    sent = conn.execute("SELECT COUNT(*) FROM deliveries WHERE digest_id > ?", [case.digests]).fetchone()[0]
    conn.close()
    print(f"{case.name}: the send reached {sent:,} of {case.subscribers:,} subscribers", flush=True)
    assert sent > 0
    db.unlink()
    return peaks


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


COMMANDS = ("send --dry-run", "send --to", "status", "send")
BASELINE = "baseline: backup()"  # the old dry run's copy alone (Python and sqlite3, nothing else)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="add 1,000,000 subscribers (10 digests) and 1,000,000 rows")
    parser.add_argument("--send-seconds", type=float, default=30.0, help="stop a send after this long (0: never)")
    parser.add_argument("--quick", action="store_true", help="a small smoke test, not a measurement")
    args = parser.parse_args()
    cases = [Case("tiny", 1000, 0), Case("100k x 10", 100_000, 10), Case("100k x 50", 100_000, 50)]
    sizes = [1000, 100_000]
    if args.big:
        cases.append(Case("1M x 10", 1_000_000, 10))
        sizes.append(1_000_000)
    if args.quick:
        cases, sizes = [Case("tiny", 1000, 0), Case("5k x 2", 5000, 2)], [1000, 5000]
        args.send_seconds = min(args.send_seconds or 5.0, 5.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Controller(Discard(), hostname="127.0.0.1", port=port)
    sink.start()
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
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, dict[str, float]] = {}
    imports: dict[int, float] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for case in cases:
                results[case.name] = run_case(case, Path(folder), base_env, args.send_seconds)
            for rows in sizes:
                imports[rows] = run_import(rows, Path(folder), base_env)
    finally:
        sink.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    tiny = results["tiny"]
    ratios = []
    print(f"{'command':<20} {'case':<22} {'peak MiB':>9} {'x tiny':>7}")
    for command in COMMANDS:
        for name, peaks in results.items():
            ratios.append(peaks[command] / tiny[command])
            print(f"{command:<20} {name:<22} {peaks[command]:>9.1f} {ratios[-1]:>7.2f}")
    for name, peaks in results.items():
        print(f"{BASELINE:<20} {name:<22} {peaks[BASELINE]:>9.1f} {peaks[BASELINE] / tiny[BASELINE]:>7.2f}")
    for rows, peak in imports.items():
        ratios.append(peak / imports[sizes[0]])
        print(f"{'subscribers import':<20} {f'{rows:,} rows':<22} {peak:>9.1f} {ratios[-1]:>7.2f}")
    print(f"largest ratio vs tiny: {max(ratios):.2f}")


if __name__ == "__main__":
    main()
