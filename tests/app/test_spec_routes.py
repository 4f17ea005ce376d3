"""The spec/UI middleware serves its own paths as stock Connexion does, and steps over the rest."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

from app.spec_routes import route_prefixes


async def endpoint(*_: Any) -> None: ...


def test_prefixes_cover_every_route_its_redirects_and_mounted_apps(tmp_path: Any) -> None:
    api = Router(
        [
            Route("/openapi.json", endpoint),
            Route("/ui/", endpoint),
            Route("/docs/{page}", endpoint),
            Mount("/static", app=StaticFiles(directory=tmp_path)),
        ]
    )
    routes = [Mount("/api/v1", app=api), Mount("/", app=Router([]))]
    assert sorted(route_prefixes(routes, "")) == [
        "/api/v1/docs",
        "/api/v1/openapi.json",
        "/api/v1/static",
        "/api/v1/ui",
    ]


def test_a_route_that_could_match_anything_sends_everything_through() -> None:
    assert list(route_prefixes([Mount("/", app=Router([Route("/", endpoint)]))], "")) == [""]
    assert list(route_prefixes([Route("/{anything}", endpoint)], "")) == [""]


@pytest.fixture
def stock_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = SwaggerUIMiddleware.__call__

    async def counting(self: Any, scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(SwaggerUIMiddleware, "__call__", counting)
    return calls


def test_api_requests_step_over_the_stock_router(
    client: TestClient, stock_calls: list[str]
) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.post("/api/v1/licenses/validate", json={}).status_code == 400
    assert client.get("/api/v1/projects").status_code == 401
    assert stock_calls == []


def test_its_own_paths_take_the_stock_path(client: TestClient, stock_calls: list[str]) -> None:
    assert client.get("/api/v1/openapi.json").json()["openapi"] == "3.1.0"
    assert client.get("/api/v1/ui/").status_code == 200
    redirect = client.get("/api/v1/ui", follow_redirects=False)
    assert redirect.status_code in (302, 307), redirect.text
    assert redirect.headers["location"].endswith("/api/v1/ui/")
    assert stock_calls == ["/api/v1/openapi.json", "/api/v1/ui/", "/api/v1/ui"]
