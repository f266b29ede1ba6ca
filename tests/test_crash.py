"""kill -9 in the middle of `digest send`, then `digest send` again (invariant 2).

A real subprocess sends to a few hundred subscribers through a sink that
takes a few milliseconds per message, so the kill lands mid-run. After the
second run every subscriber has exactly one copy, except at most one per
connection (messages in flight at the kill instant), and nobody is missing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from digest import store
from digest.store import add_subscriber
from helpers import RecordingHandler, run_cli, start_smtp, wait_until

SUBSCRIBERS = 300
CONNECTIONS = 2


@dataclass
class SlowHandler(RecordingHandler):
    delay: float = 0.01

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.slow
def test_kill_9_mid_send_then_send_again_loses_nobody_and_duplicates_only_in_flight(env: dict[str, str]) -> None:
    handler = SlowHandler()
    server = start_smtp(handler)
    try:
        environ = {**env, "SMTP_PORT": str(server.port), "SMTP_CONNECTIONS": str(CONNECTIONS)}
        addresses = [f"reader{n:04d}@example.com" for n in range(SUBSCRIBERS)]
        db = store.open_db(Path(environ["DIGEST_DB"]))
        try:
            for address in addresses:
                add_subscriber(db, address)
        finally:
            db.close()

        src = Path(__file__).resolve().parents[1] / "src"
        child_env = {**os.environ, **environ, "PYTHONPATH": str(src)}
        sender = subprocess.Popen([sys.executable, "-m", "digest", "send"], env=child_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_until(lambda: len(handler.recipients()) >= SUBSCRIBERS // 4, "the first messages", interval=0.002)
        finally:
            sender.send_signal(signal.SIGKILL)
            sender.wait(timeout=20)
        received_before_kill = len(handler.recipients())
        assert received_before_kill < SUBSCRIBERS, "the kill came too late to test anything"

        result = run_cli(["send"], environ)

        assert result.exit_code == 0, result.output
        assert "Resumed digest 1" in result.output
        copies = Counter(handler.recipients())
        assert set(copies) == set(addresses), "nobody is missing"
        duplicates = sum(n - 1 for n in copies.values())
        assert duplicates <= CONNECTIONS, copies.most_common(3)
        db = store.open_db(Path(environ["DIGEST_DB"]))
        try:
            rows = db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall()
            assert rows == [("sent", SUBSCRIBERS)]
            assert db.execute("SELECT status FROM digests").fetchall() == [("sent",)]
        finally:
            db.close()
    finally:
        server.controller.stop()
