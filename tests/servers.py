"""`coditect-cloud serve` as a real process on a test database, for tests that need HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.app.test_serve import free_port, stop, wait_ready
from tests.conftest import TestDatabase

# The highest limit the spec's RateLimit-Limit header allows: effectively unlimited.
UNLIMITED = {"RATE_LIMIT_ANONYMOUS": "1000000/minute", "RATE_LIMIT_STANDARD": "1000000/minute"}


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
                "app.cli",
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
