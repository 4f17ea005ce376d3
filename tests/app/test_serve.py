"""`coditect-cloud serve` on an empty data dir: embedded PostgreSQL, ready, and durable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.servers import free_port, stop, wait_ready

pytestmark = pytest.mark.slow


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env["CODITECT_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "app.ops.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def socket_dir(pgdata: Path) -> str:
    # postmaster.pid line 5 is the socket directory of the running cluster.
    return (pgdata / "postmaster.pid").read_text().splitlines()[4]


def test_serve_starts_on_an_empty_data_dir_and_keeps_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "coditect"
    port = free_port()
    first = start(data_dir, port)
    try:
        ready = wait_ready(port, first)
        assert ready.json()["checks"]["migrations"]["ok"] is True
        kid = httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json").json()["keys"][0]["kid"]
        dsn = f"postgresql://postgres@/coditect?host={socket_dir(data_dir / 'pgdata')}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create table if not exists restart_probe (v text)")
            conn.execute("insert into restart_probe values ('survives')")
    finally:
        stop(first)
    assert first.returncode == 0
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "embedded server was not stopped"

    second = start(data_dir, port)
    try:
        wait_ready(port, second)
        again = httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json").json()["keys"][0]["kid"]
        assert again == kid, "the development key must be generated once, not per start"
        dsn = f"postgresql://postgres@/coditect?host={socket_dir(data_dir / 'pgdata')}"
        with psycopg.connect(dsn) as conn:
            assert conn.execute("select v from restart_probe").fetchall() == [("survives",)]
    finally:
        stop(second)
