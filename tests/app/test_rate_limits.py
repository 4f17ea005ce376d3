"""Tiered rate limits on in-process apps with the default limits: headers, 429s, Redis."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import CHEAP_HASHING, TestDatabase

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "rate limit password"

Server = Callable[..., TestClient]


@pytest.fixture
def start_server(database: TestDatabase, tmp_path: Path) -> Iterator[Server]:
    """Starts apps in this process, as production runs them (no response validation), with the
    default limits unless overridden; each app counts in its own store, as a process does."""
    with ExitStack() as servers:

        def start(**env_overrides: str) -> TestClient:
            env = {
                "DATABASE_URL": database.app_dsn,
                "DATABASE_SYSTEM_URL": database.system_dsn,
                "CODITECT_DATA_DIR": str(tmp_path / "data"),
            } | env_overrides
            settings = dataclasses.replace(Settings.from_env(env), password_hashing=CHEAP_HASHING)
            client = TestClient(create_app(settings), raise_server_exceptions=False)
            return servers.enter_context(client)

        yield start


def limits_of(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["ratelimit-limit"]), int(h["ratelimit-remaining"]), int(h["ratelimit-reset"])


def signup(base: TestClient) -> dict:  # type: ignore[type-arg]
    response = base.post(
        "/api/v1/auth/signup",
        json={
            "email": f"rl-{uuid.uuid4().hex[:8]}@example.test",
            "password": PASSWORD,
            "full_name": "Rate Limited",
            "organization_name": "Rate Org",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_429(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://problems.coditect.ai/rate-limited"
    assert int(response.headers["retry-after"]) >= 1
    assert limits_of(response)[:2] == (limit, 0)


def test_anonymous_traffic_gets_10_a_minute_per_address(start_server: Server) -> None:
    base = start_server()
    seen = []
    for _ in range(10):
        response = base.post("/api/v1/auth/login", json={})
        assert response.status_code == 400  # counted even though it is rejected
        seen.append(limits_of(response))
    assert [s[1] for s in seen] == list(range(9, -1, -1))
    assert all(s[0] == 10 and 0 <= s[2] <= 60 for s in seen)
    assert_429(base.post("/api/v1/auth/login", json={}), 10)
    # probes are not counted but still carry the headers
    health = base.get("/healthz")
    assert health.status_code == 200
    assert limits_of(health)[:2] == (10, 0)


def test_the_contract_and_the_ui_are_not_counted(start_server: Server) -> None:
    base = start_server()  # the default anonymous limit: 10 a minute
    files = ["ui/", "ui/swagger-ui-bundle.js", "ui/swagger-ui-standalone-preset.js"]
    files += ["ui/swagger-ui.css", "openapi.json"]
    for n in range(20):
        response = base.get(f"/api/v1/{files[n % len(files)]}")
        assert response.status_code == 200, (n, response.text[:200])
        # They carry the headers, and see the budget untouched.
        assert limits_of(response)[:2] == (10, 10)
    assert base.get("/api/v1/ui", follow_redirects=False).status_code == 307
    response = base.post("/api/v1/auth/login", json={})
    assert response.status_code == 400
    assert limits_of(response)[:2] == (10, 9), "the first counted request of the minute"
    # A path under the UI that serves nothing is counted like any other.
    assert base.get("/api/v1/ui/nothing.js").status_code == 404
    assert limits_of(base.get("/api/v1/openapi.json"))[:2] == (10, 8)


def test_authenticated_traffic_gets_100_a_minute_per_user(start_server: Server) -> None:
    base = start_server(RATE_LIMIT_ANONYMOUS="1000/minute")
    first, second = signup(base), signup(base)
    headers = {"Authorization": f"Bearer {first['tokens']['access_token']}"}
    for n in range(100):
        # a malformed id: rejected by validation, so no database work, but still counted
        response = base.get("/api/v1/users/not-a-uuid", headers=headers)
        assert response.status_code == 400
        assert limits_of(response)[:2] == (100, 99 - n)
    assert_429(base.get("/api/v1/auth/me", headers=headers), 100)
    other = {"Authorization": f"Bearer {second['tokens']['access_token']}"}
    response = base.get("/api/v1/auth/me", headers=other)
    assert response.status_code == 200, "each user has a budget of their own"
    assert limits_of(response)[:2] == (100, 99)


def test_enterprise_organizations_get_1000_a_minute(
    start_server: Server, database: TestDatabase
) -> None:
    base = start_server(RATE_LIMIT_ANONYMOUS="1000/minute")
    account = signup(base)
    with psycopg.connect(database.system_dsn, autocommit=True) as conn:
        conn.execute(
            "insert into licenses"
            " (organization_id, name, key_prefix, key_digest, tier, status, seats)"
            " values (%s, 'Enterprise', 'cdt_ent_test', sha256(%s::bytea),"
            " 'ENTERPRISE', 'ACTIVE', 50)",
            (account["organization"]["id"], uuid.uuid4().hex.encode()),
        )
    tokens = base.post(
        "/api/v1/auth/login", json={"email": account["user"]["email"], "password": PASSWORD}
    ).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = base.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200
    assert limits_of(response)[:2] == (1000, 999)
    # As production runs (no response validation): the edge still stamps every response.
    assert len(response.headers["x-request-id"]) >= 8
    assert response.headers.get_list("ratelimit-limit") == ["1000"]
    free = {"Authorization": f"Bearer {account['tokens']['access_token']}"}
    assert limits_of(base.get("/api/v1/auth/me", headers=free))[0] == 100


def test_a_forged_token_is_counted_as_anonymous(start_server: Server) -> None:
    base = start_server()
    response = base.get("/api/v1/auth/me", headers={"Authorization": "Bearer forged.token.x"})
    assert response.status_code == 401
    assert limits_of(response)[0] == 10


def test_the_limiter_fails_open_when_its_store_is_down(start_server: Server) -> None:
    base = start_server(RATE_LIMIT_STORAGE_URL="redis://127.0.0.1:1/0")
    for _ in range(12):
        assert base.post("/api/v1/auth/login", json={}).status_code == 400
    ready = base.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["rate_limit_store"]["ok"] is False


@pytest.mark.redis
def test_two_processes_sharing_redis_count_one_budget(start_server: Server) -> None:
    redis = pytest.importorskip("redis")
    url = f"{REDIS_URL.rstrip('/')}/13"
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"needs a Redis server at {REDIS_URL} (set REDIS_URL); CI has one")
    a = start_server(RATE_LIMIT_STORAGE_URL=url)
    b = start_server(RATE_LIMIT_STORAGE_URL=url)
    remaining = []
    for n in range(10):
        response = (a, b)[n % 2].post("/api/v1/auth/login", json={})
        remaining.append(limits_of(response)[1])
    assert remaining == list(range(9, -1, -1))
    assert_429(a.post("/api/v1/auth/login", json={}), 10)
    assert_429(b.post("/api/v1/auth/login", json={}), 10)


def validate(base: TestClient, key: str) -> httpx.Response:
    return base.post("/api/v1/licenses/validate", json={"license_key": key})


def test_license_validation_is_limited_per_key_by_its_tier(
    start_server: Server, database: TestDatabase
) -> None:
    base = start_server()
    account = signup(base)
    free_key = account["license"]["license_key"]
    pro_key = f"cdt_live_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    with psycopg.connect(database.system_dsn, autocommit=True) as conn:
        conn.execute(
            "insert into licenses"
            " (organization_id, name, key_prefix, key_digest, tier, status, seats)"
            " values (%s, 'Pro', %s, sha256(%s::bytea), 'PRO', 'ACTIVE', 5)",
            (account["organization"]["id"], pro_key[:12], pro_key.encode()),
        )
    # First sight of a key: this process does not know its tier yet, so the address pays.
    assert validate(base, free_key).status_code == 200
    assert validate(base, pro_key).status_code == 200
    for n in range(10):
        response = validate(base, free_key)
        assert response.status_code == 200
        assert limits_of(response)[:2] == (10, 9 - n)
    assert_429(validate(base, free_key), 10)
    response = validate(base, pro_key)
    assert response.status_code == 200, "another key has a budget of its own"
    assert limits_of(response)[:2] == (100, 99)
    # Unknown keys share one per-address budget for validation (the two first sights used 2).
    unknown = validate(base, "cdt_live_" + "x" * 40)
    assert unknown.json()["code"] == "NOT_FOUND"
    assert limits_of(unknown)[:2] == (10, 7)
