"""Factories for API tests: sign up organizations and add users through the API itself."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.conftest import TestDatabase

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    email: str
    password: str
    user: dict[str, Any]
    organization: dict[str, Any]
    tokens: dict[str, Any]
    license: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def org_id(self) -> str:
        return str(self.organization["id"])


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.test"


@pytest.fixture
def signup(client: TestClient) -> Callable[..., Account]:
    def make(**overrides: Any) -> Account:
        body = {
            "email": unique_email("owner"),
            "password": PASSWORD,
            "full_name": "Olivia Owner",
            "organization_name": f"Org {uuid.uuid4().hex[:8]}",
        } | overrides
        response = client.post("/api/v1/auth/signup", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        return Account(
            email=body["email"],
            password=body["password"],
            user=created["user"],
            organization=created["organization"],
            tokens=created["tokens"],
            license=created["license"],
        )

    return make


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


@pytest.fixture
def add_user(client: TestClient) -> Callable[..., Account]:
    """A user created by `by` (an ADMIN or OWNER) with `role`, logged in."""

    def make(by: Account, role: str, **overrides: Any) -> Account:
        body = {
            "email": unique_email(role.lower()),
            "full_name": f"{role.title()} Person",
            "role": role,
            "password": PASSWORD,
        } | overrides
        response = client.post("/api/v1/users", json=body, headers=by.headers)
        assert response.status_code == 201, response.text
        return Account(
            email=body["email"],
            password=PASSWORD,
            user=response.json(),
            organization=by.organization,
            tokens=login(client, body["email"]),
        )

    return make


@pytest.fixture
def sql(database: TestDatabase) -> Callable[..., list[tuple[Any, ...]]]:
    """Run SQL as the superuser (RLS does not apply), for arranging and inspecting state."""

    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(database.superuser_dsn, autocommit=True) as conn:
            cur = conn.execute(statement, params)  # type: ignore[call-overload]
            return cur.fetchall() if cur.description else []

    return run
