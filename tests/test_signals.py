"""`digest send` under SIGTERM and SIGINT: a real subprocess against a slow aiosmtpd.

The server takes a while per message, so the signal lands mid-send: no new
subscriber is taken, the messages in flight finish and are recorded, the
summary is printed marked as interrupted, and the exit code is 128 + signal.
A second `digest send` then delivers the rest: every subscriber exactly once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import RecordingHandler, SmtpServer, run_cli, running_smtp, wait_until

SUBSCRIBERS = [f"reader{n:02d}@example.com" for n in range(30)]


class SlowHandler(RecordingHandler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.1)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp() -> Iterator[SmtpServer]:
    with running_smtp(SlowHandler()) as server:
        yield server


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Every process a test starts is killed at the end, even when the test fails."""
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_send_finishes_in_flight_prints_the_summary_and_resume_sends_the_rest(
    env: dict[str, str], slow_smtp: SmtpServer, processes: list[subprocess.Popen[str]], tmp_path: Path,
    signum: signal.Signals, code: int,
) -> None:  # fmt: skip
    environ = {**env, "SMTP_PORT": str(slow_smtp.port), "SMTP_CONNECTIONS": "2"}
    listing = tmp_path / "list.csv"
    listing.write_text("email\n" + "\n".join(SUBSCRIBERS) + "\n", encoding="utf-8")
    assert run_cli(["subscribers", "import", str(listing)], environ).exit_code == 0

    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "send"],
        env={**os.environ, **environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    processes.append(process)
    wait_until(lambda: len(slow_smtp.handler.recipients()) >= 3, "the first messages")
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == code, output
    assert f"interrupted by {signum.name}" in output, output
    assert "still owed this digest" in output, output
    first = slow_smtp.handler.recipients()
    assert 3 <= len(first) < len(SUBSCRIBERS)
    sent = re.search(r": (\d+) sent, ", output)
    assert sent is not None and int(sent.group(1)) == len(first), output  # every accepted message recorded

    again = run_cli(["send"], environ)

    assert again.exit_code == 0, again.output
    assert "Resumed digest 1" in again.output
    delivered = slow_smtp.handler.recipients()
    assert sorted(delivered) == sorted(SUBSCRIBERS)  # every subscriber exactly once
