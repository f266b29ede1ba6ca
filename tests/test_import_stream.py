"""`subscribers import` streams the file: still one transaction, still line numbers, any size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from helpers import run_cli, subscriber_rows


def write_export(path: Path, rows: int, *, last: bytes = b"") -> None:
    with path.open("wb") as out:
        out.write(b"Email Address,First Name,Last Name\r\n")
        for n in range(rows):
            out.write(f"reader{n}@example{n % 7}.com,Reader,Number {n}\r\n".encode())
        out.write(last)


def subscriber_count(environ: dict[str, str]) -> int:
    path = Path(environ["DIGEST_DB"])
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0])
    finally:
        conn.close()


def test_a_bad_byte_on_the_last_line_imports_nothing_and_names_the_line(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    write_export(path, 3000, last=b"last@example.com,Caf\xe9,Owner\r\n")  # cp1252, not UTF-8: line 3002

    result = run_cli(["subscribers", "import", str(path)], env)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}: line 3002: not valid utf-8-sig text")
    assert "Traceback" not in result.output
    assert subscriber_count(env) == 0


def test_a_broken_quote_on_the_last_line_imports_nothing(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    write_export(path, 2500, last=b'last@example.com,"Unclosed,Owner\r\n')

    result = run_cli(["subscribers", "import", str(path)], env)

    assert result.exit_code == 2
    assert f"{path}: line 2502: unexpected end of data" in result.stderr
    assert subscriber_count(env) == 0


def test_strict_refuses_an_invalid_address_on_the_last_line(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    write_export(path, 2500, last=b"not-an-address,Last,Row\r\n")

    result = run_cli(["subscribers", "import", "--strict", str(path)], env)

    assert result.exit_code == 2
    assert f"{path}: line 2502: invalid email address 'not-an-address'" in result.stderr
    assert "nothing was imported (--strict)" in result.stderr
    assert subscriber_count(env) == 0


def test_twenty_thousand_rows_with_repeats_across_batches_count_right(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    # 20,000 rows, then the first address again (in another batch, another name),
    # one invalid row and a mixed-case repeat of row 5.
    write_export(path, 20_000, last=b"reader0@example0.com,Someone,Else\r\nbroken\r\nREADER5@Example5.com,X,Y\r\n")

    result = run_cli(["subscribers", "import", str(path)], env)

    assert result.exit_code == 0, result.output
    assert "Read 20003 row(s)" in result.stdout
    assert "Added: 20000" in result.stdout
    assert "Duplicates within the file (counted once): 2" in result.stdout
    assert "Invalid (see above): 1" in result.stdout
    assert f"{path}: line 20003: " in result.stderr
    stored = subscriber_rows(env)
    assert len(stored) == 20_000
    assert stored["reader0@example0.com"]["name"] == "Reader Number 0"  # the first line wins
    ids = [stored[f"reader{n}@example{n % 7}.com"]["id"] for n in (0, 1, 19_999)]
    assert ids == sorted(ids)  # added in the file's order

    again = run_cli(["subscribers", "import", "--dry-run", str(path)], env)

    assert again.exit_code == 0, again.output
    assert "Would add: 0" in again.stdout
    assert "Already present: 20000" in again.stdout
