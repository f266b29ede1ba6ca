"""The single-sender lock (invariant 7): who holds it, release, stale holders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from digest.errors import LockHeldError
from digest.lock import lock_path, sender_lock
from helpers import SmtpServer, add_subscribers, run_cli

HOLD_LOCK = """
import sys, time
from pathlib import Path
from digest.lock import sender_lock
with sender_lock(Path(sys.argv[1]), "run"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_sender_is_told_who_holds_the_lock_and_exits_1(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    db_path = Path(smtp_env["DIGEST_DB"])

    with sender_lock(db_path, "run"):
        result = run_cli(["send"], smtp_env)

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {db_path} is in use by digest run (pid {os.getpid()} on ")
    assert "only one digest process may send" in result.output
    assert smtp_server.received == []


def test_the_lock_is_released_when_send_ends(smtp_env: dict[str, str], smtp_server: SmtpServer) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    db_path = Path(smtp_env["DIGEST_DB"])

    assert run_cli(["send"], smtp_env).exit_code == 0
    assert run_cli(["send"], smtp_env).output.strip() == "Nothing new to send."  # not "in use"

    with sender_lock(db_path):
        pass
    assert lock_path(db_path).read_text() == ""


def test_a_killed_holder_does_not_block_the_next_sender(
    smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    add_subscribers(smtp_env, "ada@example.com")
    db_path = Path(smtp_env["DIGEST_DB"])
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError, match=f"pid {holder.pid} "), sender_lock(db_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=20)
        if holder.stdout is not None:
            holder.stdout.close()

    assert f"pid {holder.pid}" in lock_path(db_path).read_text()  # the stale text is still there ...
    result = run_cli(["send"], smtp_env)  # ... and does not matter
    assert result.exit_code == 0, result.output
    assert smtp_server.handler.recipients() == ["ada@example.com"]
