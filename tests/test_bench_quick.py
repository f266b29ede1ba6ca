"""Every benchmark runs in its --quick mode: a smoke test that they still work.

Only correctness is asserted here (the script ends well and prints its
result line), never a time or a ratio: speed lives in bench/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
EXPECTED = {
    "import.py": "faster than the per-row baseline",
    "memory.py": "largest ratio vs tiny:",
    "unchanged.py": "ratio unchanged/baseline:",
    "render.py": "ratio render/baseline:",
    "rss2email.py": "| unchanged |",
    "send.py": "international: ratio digest/plain:",
    "startup.py": "`digest status`",
    "status.py": "ratio status/baseline:",
    "web.py": "web: no resets, no 5xx, no lost unsubscribes",
}


def test_every_benchmark_is_covered() -> None:
    # bench/_*.py are what the benchmarks share (bench/_data.py), not benchmarks.
    assert sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_the_benchmark_runs_in_quick_mode(script: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[script] in result.stdout, result.stdout[-3000:]
    assert "Traceback" not in result.stderr
