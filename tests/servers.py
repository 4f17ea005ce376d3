"""`coditect-cloud serve` as a real process, for tests that need HTTP: start, wait, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import TestDatabase


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"server exited with {process.returncode}:\n{output}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail("server did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# The highest limit the spec's RateLimit-Limit header allows: effectively unlimited.
UNLIMITED = {
    "RATE_LIMIT_ANONYMOUS": "1000000/minute",
    "RATE_LIMIT_STANDARD": "1000000/minute",
    "RATE_LIMIT_OPERATOR": "1000000/minute",
}


@contextmanager
def running_server(
    database: TestDatabase, workdir: Path, *, workers: int = 1, **env_overrides: str
) -> Iterator[str]:
    """Serves `database` as the app role (no migrations) and yields its base URL; the server's
    output goes to workdir/server.log. Default limits unless `env_overrides` says otherwise."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "RATE_"))}
    env |= {
        "DATABASE_URL": database.app_dsn,
        "DATABASE_SYSTEM_URL": database.system_dsn,
        "CODITECT_DATA_DIR": str(workdir / "data"),
        "LOG_LEVEL": "warning",
    } | env_overrides
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.ops.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(port, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)
