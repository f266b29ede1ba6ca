"""`digest serve`: the endpoint alone in the foreground, its setup errors, and a clean stop."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from helpers import add_subscribers, run_cli, wait_until
from test_web import link, post, status_line, status_of


def test_serve_needs_a_listen_address(env: dict[str, str]) -> None:
    result = run_cli(["serve"], env)

    assert result.exit_code == 2
    assert result.stderr == "Error: DIGEST_HTTP_LISTEN: not set (e.g. DIGEST_HTTP_LISTEN=127.0.0.1:8080)\n"


def test_serve_needs_the_secret(env: dict[str, str]) -> None:
    environ = {k: v for k, v in env.items() if k != "DIGEST_SECRET"}

    result = run_cli(["serve"], {**environ, "DIGEST_HTTP_LISTEN": "127.0.0.1:0"})

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: DIGEST_SECRET: not set (the endpoint checks the signature of every unsubscribe link)\n"
    )


def test_serve_on_a_busy_port_is_a_runtime_error(env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = run_cli(["serve"], {**env, "DIGEST_HTTP_LISTEN": f"127.0.0.1:{port}"})

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: DIGEST_HTTP_LISTEN: cannot listen on 127.0.0.1:{port}: ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_serve_runs_until_sigterm(env: dict[str, str]) -> None:
    add_subscribers(env, "ada@example.com")
    environ = {**os.environ, **env, "DIGEST_HTTP_LISTEN": "127.0.0.1:0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve"], env=environ, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        stderr = process.stderr

        def pump() -> None:
            for line in stderr:
                lines.put(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        ready = ""

        def serving() -> bool:
            nonlocal ready
            with contextlib.suppress(queue.Empty):
                ready = lines.get(timeout=0.1)
            return ready.startswith("Serving ")

        wait_until(serving, "the 'Serving ...' line")
        assert ready.startswith("Serving the web app on http://127.0.0.1:"), ready
        for served in ("sign-up and confirm (/subscribe)", "the archive (/archive)", "one-click unsubscribe"):
            assert served in ready, ready
        port = int(ready.split("http://127.0.0.1:", 1)[1].split(":", 1)[0])

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=20) as response:
            assert response.read() == b"ok\n"
        assert status_line(post(port, link(env, "ada@example.com"))) == b"HTTP/1.1 200 OK"
        assert status_of(env, "ada@example.com") == "unsubscribed"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        reader.join(timeout=20)
        assert "Stopped (SIGTERM).\n" in list(lines.queue)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def port_closed() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) != 0

    wait_until(port_closed, "the port to stop accepting connections after the process exited")
