"""Connexion's router with a shortcut: each request still reaches what the stock router picks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from connexion.middleware.routing import RoutingMiddleware, RoutingOperation
from starlette.routing import Mount, Route, Router
from starlette.testclient import TestClient

from app.adapter.routing import literal_routes, resolve


async def endpoint(*_: Any) -> None: ...


def counted_calls(monkeypatch: pytest.MonkeyPatch, middleware: type) -> list[str]:
    """'METHOD path' of each request the stock middleware's own __call__ handles."""
    calls: list[str] = []
    original = middleware.__call__

    async def counting(self: Any, scope: Any, receive: Any, send: Any) -> None:
        calls.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(middleware, "__call__", counting)
    return calls


def operation(name: str) -> RoutingOperation:
    return RoutingOperation(name, endpoint)


def test_the_table_holds_fixed_paths_the_router_itself_resolves_to_them() -> None:
    api = Router(
        [
            Route("/licenses", operation("listLicenses"), methods=["GET"]),
            Route("/captured/{name}", operation("getCaptured"), methods=["GET"]),
            Route("/captured/fixed", operation("neverReached"), methods=["GET"]),
            Route("/licenses/validate", operation("validateLicense"), methods=["POST"]),
            Route("/licenses/{license_id}", operation("getLicense"), methods=["GET"]),
        ]
    )
    service = Router([Route("/healthz", operation("getHealth"), methods=["GET"])])
    router = Router([Mount("/api/v1", app=api), Mount("/", app=service)])
    table = {key: (base, op.operation_id) for key, (base, op) in literal_routes(router).items()}
    assert table == {
        ("/api/v1/licenses", "GET"): ("/api/v1", "listLicenses"),
        ("/api/v1/licenses", "HEAD"): ("/api/v1", "listLicenses"),
        ("/api/v1/licenses/validate", "POST"): ("/api/v1", "validateLicense"),
        ("/healthz", "GET"): ("", "getHealth"),
        ("/healthz", "HEAD"): ("", "getHealth"),
    }
    # A templated route listed first takes the fixed path, so the table leaves it out.
    captured = resolve(router, "/api/v1/captured/fixed", "GET")
    assert isinstance(captured, Route)
    assert captured.path == "/captured/{name}"


@pytest.fixture
def stock_routing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return counted_calls(monkeypatch, RoutingMiddleware)


def test_fixed_paths_skip_the_stock_router_and_the_rest_take_the_scan(
    client: TestClient, stock_routing: list[str]
) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.post("/api/v1/licenses/validate", json={}).status_code == 400
    assert client.get("/api/v1/projects").status_code == 401
    assert stock_routing == []
    project = f"/api/v1/projects/{uuid.uuid4()}"
    assert client.get(project).status_code == 401
    assert client.get("/api/v1/nowhere").status_code == 404
    assert stock_routing == [f"GET {project}", "GET /api/v1/nowhere"]
