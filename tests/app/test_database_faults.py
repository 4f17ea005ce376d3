"""Database faults: a database that cannot serve answers 503 with Retry-After, quickly, and
pooled connections the server closed are replaced before a request sees them."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from starlette.testclient import TestClient

import db
from app import problems
from app.adapter.errors import as_problem
from app.config import Settings
from app.main import create_app
from db.queries import Query
from tests.conftest import CHEAP_HASHING, TestDatabase

Server = Callable[..., TestClient]


@pytest.mark.parametrize(
    "sqlstate",
    [
        "57P01",
        "57P02",
        "57P03",
        "57014",
        "08000",
        "08001",
        "08003",
        "08006",
        "53000",
        "53100",
        "53300",
    ],
)
def test_the_sqlstates_of_a_database_that_cannot_serve_are_503_with_retry_after(
    sqlstate: str,
) -> None:
    problem = problems.from_sqlstate(sqlstate)
    assert problem is not None
    assert (problem.status, problem.kind) == (503, "service-unavailable")
    assert int(problem.headers["Retry-After"]) > 0


def test_the_table_still_maps_full_sqlstates_and_nothing_else() -> None:
    conflict = problems.from_sqlstate("23505")
    assert conflict is not None
    assert conflict.status == 409
    # Class 57 as a whole is not "unavailable" (57000, 57P04 stay unmapped: 500).
    for unmapped in ("57000", "57P04", "42P01", "XX000", "", None):
        assert problems.from_sqlstate(unmapped) is None


def test_db_unavailable_is_a_503_with_retry_after() -> None:
    problem = as_problem(db.Unavailable("no database connection within 5 s"))
    assert problem.status == 503
    assert problem.headers["Retry-After"] == str(problems.UNAVAILABLE_RETRY_AFTER_S)
    # What happened is logged, not told to the caller.
    assert "5 s" not in (problem.detail or "")


def test_the_pool_timeout_is_configured() -> None:
    assert Settings.from_env({}).pool_timeout_s == 5.0
    assert Settings.from_env({"DATABASE_POOL_TIMEOUT_SECONDS": "0.5"}).pool_timeout_s == 0.5
    with pytest.raises(ValueError, match="DATABASE_POOL_TIMEOUT_SECONDS"):
        Settings.from_env({"DATABASE_POOL_TIMEOUT_SECONDS": "0"})
    with pytest.raises(ValueError, match="seconds"):
        Settings.from_env({"DATABASE_POOL_TIMEOUT_SECONDS": "soon"})


async def test_a_connection_lost_in_a_transaction_is_a_503(database: TestDatabase) -> None:
    database_ = db.Database(database.app_dsn, pool_size=1, pool_timeout_s=2)
    await database_.open()
    suicide = Query(
        "terminate_self",
        "select pg_terminate_backend(pg_backend_pid())",
        "select pg_terminate_backend(pg_backend_pid())",
    )
    try:
        with pytest.raises((db.Unavailable, psycopg.Error)) as raised:
            async with database_.anonymous() as tx:
                await tx.one(suicide)
        problem = as_problem(raised.value)
        assert problem.status == 503
        assert "Retry-After" in problem.headers
        # The pool replaced the connection: the next transaction works.
        async with database_.anonymous() as tx:
            assert await tx.one(Query("one", "select 1 as one", "select 1 as one")) == {"one": 1}
    finally:
        await database_.dispose()


@pytest.fixture
def start_server(database: TestDatabase, tmp_path: Path) -> Iterator[Server]:
    with ExitStack() as servers:

        def start(app_dsn: str, **env_overrides: str) -> TestClient:
            env = {
                "DATABASE_URL": app_dsn,
                "DATABASE_SYSTEM_URL": database.system_dsn,
                "CODITECT_DATA_DIR": str(tmp_path / "data"),
                "CODITECT_VALIDATE_RESPONSES": "true",
                "RATE_LIMIT_ANONYMOUS": "100000/minute",
            } | env_overrides
            settings = dataclasses.replace(Settings.from_env(env), password_hashing=CHEAP_HASHING)
            client = TestClient(create_app(settings), raise_server_exceptions=False)
            return servers.enter_context(client)

        yield start


def signup(client: TestClient) -> int:
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "email": f"fault-{uuid.uuid4().hex[:8]}@example.test",
            "password": "fault tolerant password",
            "full_name": "Fault Tolerant",
            "organization_name": "Fault Org",
        },
    )
    return response.status_code


def wait_until_gone(admin: psycopg.Connection[Any], application_name: str) -> None:
    """pg_terminate_backend only signals: wait for the backends to have gone."""
    deadline = time.monotonic() + 10
    query = "select count(*) from pg_stat_activity where application_name = %s"
    while (row := admin.execute(query, (application_name,)).fetchone()) and row[0]:
        assert time.monotonic() < deadline, "the backends did not exit"
        time.sleep(0.05)


async def test_a_live_idle_connection_is_handed_out_without_a_round_trip(
    database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = []
    full_check = AsyncConnectionPool.check_connection

    async def counted(conn: Any) -> None:
        checks.append(conn)
        await full_check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", counted)
    name = f"idle-{uuid.uuid4().hex[:8]}"
    pool = db.Database(f"{database.app_dsn}&application_name={name}", pool_size=1)
    await pool.open()
    one = Query("one", "select 1 as one", "select 1 as one")
    try:
        for _ in range(5):
            assert await pool.anonymous_statement(one) == {"one": 1}
        assert checks == []  # a poll of the socket, no query
        with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = %s",
                (name,),
            )
            wait_until_gone(admin, name)
        assert await pool.anonymous_statement(one) == {"one": 1}
        assert len(checks) == 1  # the closed one was checked, failed, and replaced
    finally:
        await pool.dispose()


def test_pooled_connections_the_server_closed_are_replaced_before_use(
    database: TestDatabase, start_server: Server
) -> None:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    client = start_server(f"{database.app_dsn}&application_name={name}", DATABASE_POOL_SIZE="2")
    assert signup(client) == 201
    with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
        killed = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            (name,),
        ).fetchall()
        assert killed == [(True,), (True,)]
        wait_until_gone(admin, name)
    assert signup(client) == 201
    assert client.get("/readyz").status_code == 200


def test_a_database_that_cannot_be_reached_answers_503_within_the_pool_timeout(
    database: TestDatabase, start_server: Server
) -> None:
    client = start_server(database.app_dsn, DATABASE_POOL_SIZE="1")
    runtime = client.app.runtime  # type: ignore[attr-defined]
    serving = runtime.database
    # Nothing listens on this port of the cluster's socket directory.
    unreachable = db.Database(f"{database.app_dsn}&port=1", pool_size=1, pool_timeout_s=0.5)
    client.portal.call(lambda: unreachable.open(wait=False))  # type: ignore[union-attr]
    runtime.attach(unreachable)
    try:
        started = time.monotonic()
        response = client.post(
            "/api/v1/auth/login",
            json={"email": "nobody@example.test", "password": "twelve chars long"},
        )
        elapsed = time.monotonic() - started
    finally:
        runtime.attach(serving)
        client.portal.call(unreachable.dispose)  # type: ignore[union-attr]
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == problems.PROBLEM_JSON
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["type"] == problems.PROBLEM_BASE + "service-unavailable"
    assert 0.5 <= elapsed < 3, elapsed
    assert client.get("/readyz").status_code == 200


def test_readiness_answers_503_within_a_second_or_two_when_the_database_cannot_be_reached(
    database: TestDatabase, start_server: Server
) -> None:
    client = start_server(database.app_dsn, DATABASE_POOL_SIZE="1")
    runtime = client.app.runtime  # type: ignore[attr-defined]
    serving = runtime.database
    # The pool would wait 5 s for a connection: readiness waits 1 s at most.
    unreachable = db.Database(f"{database.app_dsn}&port=1", pool_size=1, pool_timeout_s=5)
    client.portal.call(lambda: unreachable.open(wait=False))  # type: ignore[union-attr]
    runtime.attach(unreachable)
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
        assert client.get("/healthz").status_code == 200  # liveness depends on nothing
    finally:
        runtime.attach(serving)
        client.portal.call(unreachable.dispose)  # type: ignore[union-attr]
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "not_ready"
    assert response.json()["checks"]["database"] == {"ok": False, "detail": "Unavailable"}
    assert elapsed < 2, elapsed
    assert client.get("/readyz").status_code == 200
