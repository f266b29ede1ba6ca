"""Benchmark: import 100,000 (or a million) subscribers from a CSV export (run by hand).

    python bench/import.py [--rows 100000] [--baseline-rows 100000]

Measures, in one run, on fresh SQLite files in a temporary folder:

* floor:    parsing the CSV and validating every address, nothing written
            (what any import must pay);
* validate: ``normalise_email`` alone on every address (no CSV), against
            email-validator called on every address (what ``normalise_email``
            did before its cached fast path): the validation speed-up;
* import:   ``csvimport.import_csv`` into an empty database (one transaction,
            executemany);
* again:    the same file a second time (every row "already present");
* baseline: the naive way, ``store.add_subscriber`` once per row
            (one transaction per row), as a loop over `digest subscribers add`
            would do without process start-up, on the first
            ``--baseline-rows`` rows (a million single-row transactions take
            most of an hour); compared per row.

Prints one line per measurement, the import/floor ratio (the goal: at most
2x) and the per-row baseline/import ratio. Peak memory of the import as a
whole process is in bench/memory.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from email_validator import validate_email

from _data import export_address, make_csv, valid_address
from digest import csvimport, csvread, store, subscribers
from digest.errors import InputError


def timed(label: str, func: object) -> float:
    started = time.perf_counter()
    result = func()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"{label:<10} {elapsed:8.2f} s   {result}", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000, help="rows for the per-row baseline")
    parser.add_argument("--quick", action="store_true", help="2,000 rows: a smoke test, not a measurement")
    args = parser.parse_args()
    if args.quick:
        args.rows = 2000
    baseline_rows = min(args.rows, args.baseline_rows)
    print(f"python {platform.python_version()}, {args.rows} rows")
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        source = base / "export.csv"
        make_csv(source, args.rows)

        def floor() -> str:
            _, _, parsed = csvread.read_csv(source)
            good = sum(1 for item in parsed if isinstance(item, csvread.CsvRow))
            return f"{good} valid rows parsed"

        addresses = [valid_address(n) for n in range(baseline_rows)]

        def validate_new() -> str:
            return f"{len({subscribers.normalise_email(a) for a in addresses})} addresses (cached fast path)"

        def validate_old() -> str:
            found = {str(validate_email(a, check_deliverability=False).normalized).lower() for a in addresses}
            return f"{len(found)} addresses (email-validator on each)"

        db = store.open_db(base / "import.db")

        def import_once() -> str:
            report = csvimport.import_csv(db, source)
            return f"added {report.added}, present {report.already_present}, invalid {report.invalid}"

        naive = store.open_db(base / "naive.db")

        def baseline() -> str:
            added = 0
            for n in range(baseline_rows):
                try:
                    store.add_subscriber(naive, export_address(n), f"Reader Number {n}")
                    added += 1
                except InputError:
                    pass
            return f"added {added}"

        t_floor = timed("floor", floor)
        t_new = timed("validate", validate_new)
        t_old = timed("validate0", validate_old)
        t_import = timed("import", import_once)
        timed("again", import_once)
        t_floor = (t_floor + timed("floor", floor)) / 2  # the floor on both sides of the import
        t_base = timed("baseline", baseline)
        db.close()
        naive.close()
    per_row = (t_base / baseline_rows) / (t_import / args.rows)
    print(f"baseline on {baseline_rows} rows; load average {os.getloadavg()[0]:.2f}")
    print(f"import is {per_row:.1f}x faster than the per-row baseline (per row); "
          f"{t_import / t_floor:.2f}x the parse-and-validate floor; "
          f"validation is {t_old / t_new:.1f}x faster than email-validator on every address")  # fmt: skip


if __name__ == "__main__":
    main()
