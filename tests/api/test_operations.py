"""Operations build their handler chain once, and still see each request's own parameters."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.decorators import StarletteDecorator
from starlette.testclient import TestClient


def test_the_handler_chain_is_built_at_most_once_per_operation(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session's app may have built these chains already (then nothing is built here);
    # stock Connexion builds one per call.
    built: list[str] = []
    original = StarletteDecorator.decorate

    def counting(self: StarletteDecorator, function: Any) -> Any:
        built.append(function.__name__)
        return original(self, function)

    monkeypatch.setattr(StarletteDecorator, "decorate", counting)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
        assert client.get("/.well-known/jwks.json").status_code == 200
    assert built.count("get_health") <= 1
    assert built.count("get_jwks") <= 1
    assert set(built) <= {"get_health", "get_jwks"}


def test_each_request_gets_its_own_parameters(client: TestClient, signup: Any) -> None:
    account = signup()
    for name in ("alpha", "beta", "gamma"):
        created = client.post("/api/v1/projects", json={"name": name}, headers=account.headers)
        assert created.status_code == 201, created.text
    sizes = [
        len(client.get(f"/api/v1/projects?limit={n}", headers=account.headers).json()["data"])
        for n in (1, 3, 2)
    ]
    assert sizes == [1, 3, 2]
