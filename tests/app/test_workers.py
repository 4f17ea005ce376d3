"""Several workers: a socket each, connections reach all, their metrics and logs add up."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from tests.conftest import TestDatabase
from tests.metrics import Samples, parse, value
from tests.servers import running_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balancing is Linux-only"),
]


def _sockets(port: int, status: str) -> dict[int, set[str]]:
    """pid -> inodes of its TCP sockets on `port` in `status`."""
    out: dict[int, set[str]] = {}
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == status and conn.pid:
            try:
                inode = os.readlink(f"/proc/{conn.pid}/fd/{conn.fd}")
            except FileNotFoundError:  # the process exited meanwhile
                continue
            out.setdefault(conn.pid, set()).add(inode)
    return out


def test_two_workers_listen_separately_and_both_get_connections(
    database: TestDatabase, tmp_path: Path
) -> None:
    with running_server(database, tmp_path, workers=2) as base:
        port = urlsplit(base).port
        assert port is not None
        # The first worker to finish starting answers /readyz; give the other one its time.
        deadline = time.monotonic() + 60
        listening = _sockets(port, psutil.CONN_LISTEN)
        while len(listening) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            listening = _sockets(port, psutil.CONN_LISTEN)
        assert len(listening) == 2, listening
        first, second = listening.values()
        assert first.isdisjoint(second), "the workers share one listening socket"
        clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(16)]
        try:
            for client in clients:
                client.request("GET", "/healthz")
                assert client.getresponse().read() == b'{"status":"ok"}'
            serving = _sockets(port, psutil.CONN_ESTABLISHED)
            assert set(serving) == set(listening), "a worker got none of 16 connections"
        finally:
            for client in clients:
                client.close()


REQUESTS = "coditect_http_request_duration_seconds_count"


def scrape(port: int) -> Samples:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request("GET", "/metrics")
        return parse(client.getresponse().read().decode())
    finally:
        client.close()


def wait_for_count(port: int, expected: int) -> None:
    deadline = time.monotonic() + 30
    while value(scrape(port), REQUESTS, operation="getHealth", status="200") < expected:
        assert time.monotonic() < deadline, "requests were not counted"
        time.sleep(0.2)


def access_lines(workdir: Path) -> list[dict[str, Any]]:
    """The server's access-log lines; every line of its output must be JSON."""
    lines = [json.loads(line) for line in (workdir / "server.log").read_text().splitlines()]
    return [line for line in lines if line["logger"] == "coditect.access"]


def test_two_workers_metrics_count_every_request_once_and_log_json(
    database: TestDatabase, tmp_path: Path
) -> None:
    env = {"LOG_LEVEL": "info", "DATABASE_POOL_SIZE": "3"}
    with running_server(database, tmp_path, workers=2, **env) as base:
        port = urlsplit(base).port
        assert port is not None
        deadline = time.monotonic() + 60
        while len(_sockets(port, psutil.CONN_LISTEN)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        # A connection per request: the kernel spreads them over both workers.
        for _ in range(24):
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            client.request("GET", "/healthz")
            assert client.getresponse().status == 200
            client.close()
        # A request is counted just after its last byte is sent: the last one may trail.
        wait_for_count(port, 24)
        # Whichever worker answers a scrape, it reports both workers' requests, once each.
        for _ in range(6):
            samples = scrape(port)
            assert value(samples, REQUESTS, operation="getHealth", status="200") == 24
            # Each worker's pool of 3, summed over the live workers.
            assert value(samples, "coditect_db_pool_connections") == 6
        # A worker killed outright: its requests stay counted; its pool leaves the sum (it
        # never ran its shutdown: the supervisor drops its live gauges) and the pool of the
        # worker that replaces it joins: still 6, not 9.
        workers = {line["process"] for line in access_lines(tmp_path) if line["status"] == 200}
        os.kill(min(workers), signal.SIGKILL)
        deadline = time.monotonic() + 120
        while not {line["process"] for line in access_lines(tmp_path)} - workers:
            assert time.monotonic() < deadline, "no worker replaced the killed one"
            time.sleep(0.5)
            with contextlib.suppress(OSError):  # no worker listening for a moment
                scrape(port)
        for _ in range(6):
            samples = scrape(port)
            assert value(samples, REQUESTS, operation="getHealth", status="200") == 24
            assert value(samples, "coditect_db_pool_connections") == 6
    health = [line for line in access_lines(tmp_path) if line["operation_id"] == "getHealth"]
    assert len(health) == 24
    assert len({line["process"] for line in health}) == 2, "one worker served every request"
