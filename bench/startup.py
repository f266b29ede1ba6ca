"""Start-up cost of the CLI against the interpreter's own floor (run by hand).

    python bench/startup.py [--rounds 10]

Times whole processes, interleaved round by round so that load from other
processes hits every command alike, and reports medians and ratios against
``python -c 'import click'`` (the least any click program can do) measured in
the same run. Also counts the modules each command imports (``sys.modules``
at exit), which does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
COUNT = "import atexit, sys; atexit.register(lambda: print(len(sys.modules), file=sys.stderr)); "


def commands(env_file: Path) -> dict[str, list[str]]:
    cli = f"{COUNT}from digest.cli import main; sys.argv = ['digest'] + sys.argv[1:]; main()"
    env = ["--env", str(env_file)]
    return {
        "python -c pass": [PY, "-c", COUNT],
        "python -c 'import click'": [PY, "-c", COUNT + "import click"],
        "digest --version": [PY, "-c", cli, "--version"],
        "digest --help": [PY, "-c", cli, "--help"],
        "digest subscribers list": [PY, "-c", cli, *env, "subscribers", "list"],
        "digest status": [PY, "-c", cli, *env, "status"],
    }


def run_once(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[-1]}: exit {done.returncode}: {done.stderr.strip()}")
    return elapsed, int(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="two rounds: a smoke test, not a measurement")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "bench.env"
        env_file.write_text(
            f"DIGEST_FEED_URL={ROOT / 'examples' / 'feed.xml'}\nDIGEST_DB={Path(tmp) / 'bench.db'}\n"
            "DIGEST_FROM=Bench <bench@example.com>\n",
            encoding="utf-8",
        )
        table = commands(env_file)
        times: dict[str, list[float]] = {name: [] for name in table}
        modules: dict[str, int] = {}
        for _ in range(rounds):
            for name, argv in table.items():
                elapsed, count = run_once(argv)
                times[name].append(elapsed)
                modules[name] = count
    floor = statistics.median(times["python -c 'import click'"])
    load = os.getloadavg()[0]
    print(f"rounds: {rounds}, load average at the end: {load:.2f}")
    print("| command | median | × import click | modules |")
    print("| --- | --- | --- | --- |")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| `{name}` | {median * 1000:.0f} ms | {median / floor:.2f} | {modules[name]} |")


if __name__ == "__main__":
    main()
