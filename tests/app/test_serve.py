"""`coditect-cloud serve` on an empty data dir: embedded PostgreSQL, ready, durable, stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
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


def test_sigterm_finishes_the_request_in_flight_and_stops_the_embedded_database(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "coditect"
    port = free_port()
    server = start(data_dir, port)
    try:
        wait_ready(port, server)
        postmaster = int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        body = json.dumps({"license_key": "cdt_live_" + "x" * 43}).encode()
        head = (
            "POST /api/v1/licenses/validate HTTP/1.1\r\nHost: test\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        in_flight = socket.create_connection(("127.0.0.1", port), timeout=30)
        # The request has begun: its head and part of its body are in, the rest is awaited.
        in_flight.sendall(head + body[:10])
        # A full round trip after it: by then the server has read what was sent before.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        server.send_signal(signal.SIGTERM)
        refused_by = time.monotonic() + 30
        while time.monotonic() < refused_by:  # stopped accepting: the shutdown has begun
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server kept accepting connections after SIGTERM")
        assert server.poll() is None, "the server exited with a request in flight"
        in_flight.sendall(body[10:])
        response = in_flight.makefile("rb").read()
        in_flight.close()
        assert response.startswith(b"HTTP/1.1 200 "), response[:200]
        assert b'"code":"NOT_FOUND"' in response
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            stop(server)
    pgdata = data_dir / "pgdata"
    assert not (pgdata / "postmaster.pid").exists(), "embedded server still running"
    # postmaster.pid goes just before the process exits: give it a moment.
    deadline = time.monotonic() + 30
    while running(postmaster, pgdata):
        assert time.monotonic() < deadline, "the embedded PostgreSQL outlived the server"
        time.sleep(0.2)


def running(pid: int, pgdata: Path) -> bool:
    """Whether the PostgreSQL of `pgdata` still runs as `pid` (not a zombie, not a reused pid)."""
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        return alive and any(str(pgdata) in arg for arg in process.cmdline())
    except psutil.NoSuchProcess:
        return False
