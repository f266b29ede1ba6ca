"""The code's shape: which concern lives where (checked by reading the source files)."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "digest"
STORE = PACKAGE / "store"

# What only the store may say: SQL statements, and the driver it speaks them through.
_SQL = re.compile(r"sqlite3|INSERT |UPDATE |SELECT |DELETE FROM|BEGIN")


def _sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_only_the_store_speaks_sql() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in _sources(PACKAGE)
        if STORE not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _SQL.search(line)
    ]
    assert found == [], "SQL or sqlite3 outside src/digest/store/:\n" + "\n".join(found)


def test_the_check_sees_sql_where_it_is() -> None:
    # The pattern is not vacuous: the store itself matches it.
    assert any(_SQL.search(path.read_text(encoding="utf-8")) for path in _sources(STORE))


def test_every_module_is_at_most_400_lines() -> None:
    # Every module of the package, the store's, the config's and the web app's included.
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines()) for path in _sources(PACKAGE)
    }
    assert {"cli.py", "pipeline.py", "store/entries.py", "web/app.py"} <= set(sizes)
    assert {name: n for name, n in sizes.items() if n > 400} == {}


def test_the_store_imports_nothing_above_it() -> None:
    # The store is below every stage: it may use the plain data, the errors and
    # the address rules, never config, rendering or the use cases.
    allowed = {"digest.errors", "digest.models", "digest.subscribers"}
    imports = re.compile(r"^\s*(?:from|import) (digest(?:\.\w+)*)", re.MULTILINE)
    upward = {
        f"{path.name}: {name}"
        for path in _sources(STORE)
        for name in imports.findall(path.read_text(encoding="utf-8"))
        if name not in allowed and not name.startswith("digest.store")
    }
    assert upward == set()


def test_every_public_store_function_wraps_sqlite_errors() -> None:
    # Callers catch DatabaseError, never sqlite3's errors: each public function
    # of a store module wears @guarded (or @guarded_iter), which sets __wrapped__.
    import importlib
    import inspect

    bare = []
    for path in _sources(STORE):
        if path.stem in ("__init__", "connection", "schema", "times"):
            continue
        module = importlib.import_module(f"digest.store.{path.stem}")
        for name, value in vars(module).items():
            defined_here = inspect.isfunction(value) and value.__module__ == module.__name__
            if defined_here and not name.startswith("_") and not hasattr(value, "__wrapped__"):
                bare.append(f"{path.stem}.{name}")
    assert bare == []


def test_no_function_is_rated_d_or_worse() -> None:
    # `radon cc -s src/digest`: rank D starts at a cyclomatic complexity of 21.
    from radon.complexity import cc_rank, cc_visit

    ranked = [
        f"{path.relative_to(PACKAGE)}: {block.fullname} {cc_rank(block.complexity)} ({block.complexity})"
        for path in _sources(PACKAGE)
        for block in cc_visit(path.read_text(encoding="utf-8"))
    ]
    assert len(ranked) > 100  # the check sees the functions (and methods, and classes)
    assert [line for line in ranked if line.split(" ")[-2] not in "ABC"] == []
