"""A rate-limit store that hangs: a short timeout, then a circuit breaker that skips it, liveness
that never touches it, readiness that reports it, and recovery once it answers again."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.edge.ratelimit import CircuitBreaker
from app.main import create_app
from tests.conftest import CHEAP_HASHING, TestDatabase

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
# A request that meets a hung store pays the store timeout (50 ms) once, then nothing: this
# is the bound the issue asks for on a fault, not a benchmark.
FAULT_BOUND_S = 0.1

Server = Callable[..., TestClient]


class FakeStore:
    """A TCP server on 127.0.0.1 that accepts connections and reads them, answering nothing
    (a hung Redis), until told to forward them to a real Redis instead."""

    def __init__(self) -> None:
        self.connections = 0
        self.bytes_received = 0
        self.forward_to: tuple[str, int] | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shut_down(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.forward_to is not None:
            await self._forward(reader, writer, *self.forward_to)
            return
        try:
            while data := await reader.read(65536):
                self.bytes_received += len(data)
        finally:
            writer.close()

    async def _forward(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(
            pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True
        )

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop)
        self._thread.join(5)


@pytest.fixture
def fake_store() -> Iterator[FakeStore]:
    store = FakeStore()
    yield store
    store.close()


@pytest.fixture
def start_server(database: TestDatabase, tmp_path: Path) -> Iterator[Server]:
    """Apps in this process sharing one data directory (so one signing key: a token one app
    issues, another accepts)."""
    with ExitStack() as servers:

        def start(**env_overrides: str) -> TestClient:
            env = {
                "DATABASE_URL": database.app_dsn,
                "DATABASE_SYSTEM_URL": database.system_dsn,
                "CODITECT_DATA_DIR": str(tmp_path / "data"),
                "CODITECT_VALIDATE_RESPONSES": "true",
            } | env_overrides
            settings = dataclasses.replace(Settings.from_env(env), password_hashing=CHEAP_HASHING)
            client = TestClient(create_app(settings), raise_server_exceptions=False)
            return servers.enter_context(client)

        yield start


def access_token(client: TestClient) -> str:
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "email": f"store-{uuid.uuid4().hex[:8]}@example.test",
            "password": "store fault password",
            "full_name": "Store Fault",
            "organization_name": "Store Fault Org",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["tokens"]["access_token"])


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_hung_store_costs_a_request_its_timeout_once_then_nothing(
    start_server: Server, fake_store: FakeStore
) -> None:
    token = access_token(start_server())  # signed up on an app with the in-memory store
    me = {"Authorization": f"Bearer {token}"}
    client = start_server(
        RATE_LIMIT_STORAGE_URL=f"redis://127.0.0.1:{fake_store.port}",
        RATE_LIMIT_STORE_RETRY_SECONDS="300",  # no probe during this test
    )

    health, took = timed(lambda: client.get("/healthz"))
    assert health.status_code == 200
    assert took < FAULT_BOUND_S, took
    assert fake_store.connections == 0, "liveness touched the store"
    assert "ratelimit-limit" not in health.headers

    # The first request to meet the hung store waits for the store timeout, and fails open.
    read, took = timed(lambda: client.get("/api/v1/auth/me", headers=me))
    assert read.status_code == 200, read.text
    assert took < FAULT_BOUND_S, took
    assert fake_store.bytes_received > 0, "the store was asked"
    assert read.headers["ratelimit-remaining"] == read.headers["ratelimit-limit"]

    # The breaker is open: no request asks the store again.
    asked = fake_store.bytes_received, fake_store.connections
    for call in (
        lambda: client.get("/api/v1/auth/me", headers=me),
        lambda: client.get("/healthz"),
        lambda: client.post("/api/v1/auth/login", json={}),
    ):
        response, took = timed(call)
        assert response.status_code in (200, 400), response.text
        assert took < FAULT_BOUND_S, took
    ready, took = timed(lambda: client.get("/readyz"))
    assert (fake_store.bytes_received, fake_store.connections) == asked
    assert ready.status_code == 200  # the limiter fails open: the instance stays ready
    assert took < 1, took
    store = ready.json()["checks"]["rate_limit_store"]
    assert store["ok"] is False
    assert "timeout" in store["detail"]
    assert "circuit breaker" in store["detail"]


def test_readiness_asks_a_hung_store_within_its_timeout(
    start_server: Server, fake_store: FakeStore
) -> None:
    client = start_server(RATE_LIMIT_STORAGE_URL=f"redis://127.0.0.1:{fake_store.port}")
    ready, took = timed(lambda: client.get("/readyz"))
    assert fake_store.bytes_received > 0
    assert ready.status_code == 200
    assert ready.json()["checks"]["rate_limit_store"]["ok"] is False
    assert took < 1, took


@pytest.mark.redis
def test_the_breaker_closes_by_itself_once_the_store_answers(
    start_server: Server, fake_store: FakeStore
) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"needs a Redis server at {REDIS_URL} (set REDIS_URL); CI has one")
    real = urlsplit(REDIS_URL)
    client = start_server(
        RATE_LIMIT_STORAGE_URL=f"redis://127.0.0.1:{fake_store.port}/12",
        RATE_LIMIT_STORE_RETRY_SECONDS="0.2",
    )
    me = {"Authorization": f"Bearer {access_token(client)}"}  # signing up trips the breaker
    assert client.get("/readyz").json()["checks"]["rate_limit_store"]["ok"] is False

    fake_store.forward_to = (real.hostname or "127.0.0.1", real.port or 6379)
    time.sleep(0.3)  # the breaker half-opens: the next call probes the store
    first = client.get("/api/v1/auth/me", headers=me)
    second = client.get("/api/v1/auth/me", headers=me)
    # Counting again, in the real store: this user's budget goes down by one a request.
    remaining = [int(r.headers["ratelimit-remaining"]) for r in (first, second)]
    assert remaining == [99, 98]
    store = client.get("/readyz").json()["checks"]["rate_limit_store"]
    assert store == {"ok": True, "detail": "ok"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_on_failure_half_opens_for_one_probe_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(5.0, clock)
    assert breaker.closed
    assert breaker.admit()
    assert breaker.admit()
    assert breaker.failed("timeout") is True
    assert not breaker.closed
    assert not breaker.admit()
    clock.now = 4.9
    assert not breaker.admit()
    clock.now = 5.0
    assert breaker.admit(), "half-open: one probe"
    assert not breaker.admit(), "only one probe at a time"
    assert breaker.failed("timeout") is False  # it was open already: logged once
    clock.now = 9.9
    assert not breaker.admit()
    clock.now = 10.0
    assert breaker.admit()
    breaker.abandoned()  # a cancelled probe does not keep the breaker from probing
    assert breaker.admit()
    assert breaker.succeeded() is True
    assert breaker.closed
    assert breaker.admit()
    assert breaker.succeeded() is False


def test_the_store_timeout_and_retry_are_configured() -> None:
    settings = Settings.from_env({})
    assert (settings.rate_limit_store_timeout_ms, settings.rate_limit_store_retry_s) == (50, 5.0)
    settings = Settings.from_env(
        {"RATE_LIMIT_STORE_TIMEOUT_MS": "20", "RATE_LIMIT_STORE_RETRY_SECONDS": "1.5"}
    )
    assert (settings.rate_limit_store_timeout_ms, settings.rate_limit_store_retry_s) == (20, 1.5)
    with pytest.raises(ValueError, match="RATE_LIMIT_STORE_TIMEOUT_MS"):
        Settings.from_env({"RATE_LIMIT_STORE_TIMEOUT_MS": "0"})
