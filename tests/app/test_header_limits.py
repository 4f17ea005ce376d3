"""Request header caps: too large in total or too many fields answer 431, before anything
reads a header."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from app.config import ConfigError, Settings
from app.edge.middleware import HeaderLimitMiddleware
from app.problems import PROBLEM_BASE, PROBLEM_JSON

TOO_LARGE = PROBLEM_BASE + "request-header-fields-too-large"


def assert_431(response, detail: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 431, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == TOO_LARGE
    assert body["status"] == 431
    assert detail in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_the_limits_are_configured() -> None:
    defaults = Settings.from_env({})
    assert (defaults.max_header_bytes, defaults.max_header_count) == (16_384, 100)
    custom = Settings.from_env({"MAX_HEADER_BYTES": "4096", "MAX_HEADER_COUNT": "20"})
    assert (custom.max_header_bytes, custom.max_header_count) == (4096, 20)
    with pytest.raises(ConfigError, match="MAX_HEADER_COUNT"):
        Settings.from_env({"MAX_HEADER_COUNT": "0"})


def test_too_many_header_fields_is_431(client: TestClient) -> None:
    headers = {f"x-filler-{n}": "1" for n in range(120)}
    assert_431(client.get("/api/v1/projects", headers=headers), "more than 100 header fields")
    assert_431(client.get("/healthz", headers=headers), "more than 100 header fields")


def test_header_fields_too_large_in_total_is_431(client: TestClient) -> None:
    headers = {f"x-filler-{n}": "a" * 2000 for n in range(9)}
    assert_431(client.get("/api/v1/projects", headers=headers), "exceed 16384 bytes")


def test_a_huge_bearer_token_is_431_before_it_is_verified(client: TestClient) -> None:
    headers = {"Authorization": "Bearer " + "a" * 20_000}
    assert_431(client.get("/api/v1/auth/me", headers=headers), "exceed 16384 bytes")


def test_ordinary_requests_pass(client: TestClient) -> None:
    headers = {f"x-filler-{n}": "a" * 100 for n in range(80)}
    assert client.get("/healthz", headers=headers).status_code == 200


def _app(max_bytes: int, max_count: int) -> TestClient:
    inner = Starlette(routes=[])
    inner.add_route("/", lambda _request: PlainTextResponse("ok"))
    limited = HeaderLimitMiddleware(inner, max_bytes=max_bytes, max_count=max_count)

    # The middleware returns the next layer's awaitable rather than being a coroutine
    # function (app.edge.middleware's PASS_THROUGH), so the test client, which tells ASGI 3
    # apps by that, is given an outermost layer as a server's stack has.
    async def outermost(scope: Scope, receive: Receive, send: Send) -> None:
        await limited(scope, receive, send)

    return TestClient(outermost)


def _wire_size(client: TestClient, headers: dict[str, str]) -> tuple[int, int]:
    """The header section the test client will send: (bytes, fields)."""
    request = client.build_request("GET", "/", headers=headers)
    fields = request.headers.raw
    return sum(len(k) + len(v) + 4 for k, v in fields), len(fields)


def test_the_limits_are_exact() -> None:
    probe = _app(1_000_000, 1000)
    size, count = _wire_size(probe, {"x-pad": "a" * 1000})
    exact = _app(size, count)
    assert exact.get("/", headers={"x-pad": "a" * 1000}).status_code == 200
    assert exact.get("/", headers={"x-pad": "a" * 1001}).status_code == 431
    assert exact.get("/", headers={"x-pad": "a" * 10, "x-more": "1"}).status_code == 431


def test_uvicorn_h11_leaves_room_for_the_header_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """With h11 as the parser, a request head over its limit never reaches the edge: uvicorn
    is told to allow the configured header bytes plus a request line."""
    import uvicorn

    from app.adapter import workers

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _factory, **options: seen.update(options))
    workers.serve(
        "app.main:create_app",
        host="127.0.0.1",
        port=0,
        workers=1,
        log_level="info",
        log_config={},
        forwarded_allow_ips="127.0.0.1",
        shutdown_grace_s=20,
        max_header_bytes=32_768,
    )
    limit = seen["h11_max_incomplete_event_size"]
    assert isinstance(limit, int)
    assert limit > 32_768
