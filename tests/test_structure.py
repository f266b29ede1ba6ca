"""The code's shape: which concern lives where (checked by reading the source files)."""

from __future__ import annotations

import ast
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


# --- the import graph -------------------------------------------------------------

# The foundation every stage stands on: configuration, plain data, errors and
# the pure helpers. None of them may import a stage (fetching, parsing, the
# store, rendering, mail, the use cases, the daemon, the web app, the CLI),
# not even lazily inside a function.
FOUNDATION = {"digest", "digest.errors", "digest.models", "digest.config_warnings", "digest.subscribers",
              "digest.schedule", "digest.headers", "digest.placeholders", "digest.tokens", "digest.verp",
              "digest.textdir", "digest.csvcells", "digest.exitcodes", "digest.lock", "digest.signals",
              "digest.urls"}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    """The package's modules one import statement names (``from digest import store`` names digest.store)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    if node.level or not base.startswith("digest"):
        return set()
    named = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules}
    return named or ({base} if base in modules else set())


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module loads: not those in functions, nor under ``if TYPE_CHECKING``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def _graph(*, lazy: bool) -> dict[str, set[str]]:
    sources = {_module_name(path): ast.parse(path.read_text(encoding="utf-8")) for path in _sources(PACKAGE)}
    modules = set(sources)
    graph = {}
    for name, tree in sources.items():
        nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)] if lazy else None
        statements = nodes if nodes is not None else _top_level_imports(tree)
        graph[name] = set().union(*(_imported(node, modules) for node in statements)) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    # Modules importing each other as they load, however long the loop. A
    # package's __init__ importing its own modules is not a loop: Python loads
    # the package before the module.
    graph = _graph(lazy=False)
    for name in graph:
        graph[name] = {target for target in graph[name] if not name.startswith(target + ".")}
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_foundation_imports_no_stage() -> None:
    graph = _graph(lazy=True)
    foundation = FOUNDATION | {name for name in graph if name == "digest.config" or name.startswith("digest.config.")}
    assert foundation <= set(graph)  # every name above is a module
    upward = {f"{name} -> {target}" for name in foundation for target in graph[name] if target not in foundation}
    assert upward == set()
    # The check sees imports: the stages above do import the foundation.
    assert "digest.config" in graph["digest.feedcheck"] and "digest.errors" in graph["digest.config.settings"]
