"""The digest scores as ham with SpamAssassin run offline.

Skipped when it is not installed, except under CI=true, where .ci/run
installs it and a missing one fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import SHARED_FEED, run_cli

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = pytest.mark.skipif(
    SPAMASSASSIN is None and not os.environ.get("CI"), reason="spamassassin is not installed"
)


@pytest.mark.parametrize("feed", ["example", "jekyll"])
def test_the_digest_scores_as_ham(env: dict[str, str], tmp_path: Path, feed: str) -> None:
    environ = {**env, "DIGEST_POSTAL_ADDRESS": "1 Example Street, Lyon"}
    if feed == "jekyll":
        if not SHARED_FEED.exists() and not os.environ.get("CI"):
            pytest.skip("shared feed not present")
        environ.update(DIGEST_FEED_URL=str(SHARED_FEED), DIGEST_MODE="full", DIGEST_FIRST_RUN="all")
    result = run_cli(["send", "--dry-run", "--output", str(tmp_path)], environ)
    assert result.exit_code == 0, result.output

    assert SPAMASSASSIN is not None
    checked = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"],  # -L: local tests only, no network
        input=(tmp_path / "digest.eml").read_bytes(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    report = checked.stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: (\w+), score=(-?[\d.]+)", report, re.M)
    assert status, report[-2000:]
    assert status.group(1) == "No", report[report.find("Content analysis details") :]
    assert float(status.group(2)) < 2.0, report[report.find("Content analysis details") :]
