"""JSON access-log lines without secrets, errors with their request id, and the metrics."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.auth.keys import KeySet
from app.ops import logs
from tests.api.conftest import Account, unique_email
from tests.metrics import scrape, value

Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The server's log as production writes it (the JSON formatter, the request-id filter)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(logs.RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The server's lines: the test client's own (httpx logs the URLs it calls) left out."""
    parsed = [json.loads(line) for line in buffer.getvalue().splitlines()]
    return [line for line in parsed if not line["logger"].startswith("httpx")]


def server_text(buffer: io.StringIO) -> str:
    return "\n".join(json.dumps(line) for line in lines(buffer))


def access_lines(buffer: io.StringIO) -> dict[str, dict[str, Any]]:
    return {
        line["request_id"]: line for line in lines(buffer) if line["logger"] == "coditect.access"
    }


def test_access_lines_name_each_request_and_carry_no_secret(
    client: TestClient, json_log: io.StringIO
) -> None:
    email, password = unique_email("Secret.Person"), f"pw-{uuid.uuid4().hex}"
    signup_body = {
        "email": email,
        "password": password,
        "full_name": "Sam Secret",
        "organization_name": f"Secret Org {uuid.uuid4().hex[:6]}",
    }
    refused = client.post(
        "/api/v1/auth/signup", json=signup_body | {"email": "not an email"}, params={"q": email}
    )
    assert refused.status_code == 400
    created = client.post("/api/v1/auth/signup", json=signup_body)
    assert created.status_code == 201
    org_id = created.json()["organization"]["id"]
    license_key = created.json()["license"]["license_key"]
    logged_in = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert logged_in.status_code == 200
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": logged_in.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200
    bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    organization = client.get(f"/api/v1/organizations/{org_id}", headers=bearer)
    assert organization.status_code == 200
    validated = client.post(
        "/api/v1/licenses/validate",
        json={"license_key": license_key, "fingerprint": f"machine-{uuid.uuid4().hex}"},
    )
    assert validated.status_code == 200
    wrong_password = client.post("/api/v1/auth/login", json={"email": email, "password": "x" * 12})
    assert wrong_password.status_code == 401

    text = server_text(json_log)
    secrets = {
        "password": password,
        "email": email,
        "email, lower case": email.lower(),
        "email's local part (as URL-encoded, say)": email.split("@")[0],
        "the wrong password": "x" * 12,
        "license key": license_key,
    }
    for response in (created, logged_in, refreshed):
        tokens = response.json().get("tokens", response.json())
        secrets["access token"] = tokens["access_token"]
        secrets["refresh token"] = tokens["refresh_token"]
        for what, secret in secrets.items():
            assert secret not in text, f"the log holds a {what}"

    access = access_lines(json_log)
    expected = {
        "signup": [refused, created],
        "login": [logged_in, wrong_password],
        "refreshTokens": [refreshed],
        "getOrganization": [organization],
        "validateLicense": [validated],
    }
    for operation_id, responses in expected.items():
        for response in responses:
            line = access[response.headers["x-request-id"]]
            assert line["operation_id"] == operation_id
            assert line["status"] == response.status_code
            assert line["method"] == response.request.method
            assert line["duration_ms"] > 0
    # The same id in the problem body, the response header and the log line.
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    # The template, not the raw path (ids, or whatever an unmatched request put there).
    assert access[organization.headers["x-request-id"]]["path"] == (
        "/api/v1/organizations/{organization_id}"
    )
    assert access[refused.headers["x-request-id"]]["path"] == "/api/v1/auth/signup"
    # Who the request acted for, once known: by token, by login or refresh, by license key.
    for response in (created, logged_in, refreshed, organization, validated):
        assert access[response.headers["x-request-id"]]["organization_id"] == org_id
    assert access[wrong_password.headers["x-request-id"]]["organization_id"] is None


def test_an_unmatched_path_is_logged_without_it(client: TestClient, json_log: io.StringIO) -> None:
    response = client.get("/api/v1/no-such-thing/secret-looking@example.test")
    assert response.status_code == 404
    line = access_lines(json_log)[response.headers["x-request-id"]]
    assert line["operation_id"] is None
    assert line["path"] is None
    assert "secret-looking" not in server_text(json_log)


def test_an_unexpected_error_is_logged_with_the_request_id_of_its_problem(
    client: TestClient, json_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_self: KeySet) -> dict[str, Any]:
        raise RuntimeError("the key store is broken")

    monkeypatch.setattr(KeySet, "jwks", broken)
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 500
    request_id = response.json()["request_id"]
    errors = [line for line in lines(json_log) if line["level"] == "ERROR"]
    assert [line["request_id"] for line in errors] == [request_id]
    assert "the key store is broken" in errors[0]["exc_info"]
    assert access_lines(json_log)[request_id]["status"] == 500


def test_metrics_count_operations_validations_seats_and_refresh_reuse(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    before = scrape(client)
    key = owner.license["license_key"]
    machine = {"license_key": key, "fingerprint": f"machine-{uuid.uuid4().hex}"}
    assert client.post("/api/v1/licenses/validate", json=machine).json()["code"] == "VALID"
    assert client.post("/api/v1/licenses/validate", json=machine).json()["code"] == "VALID"
    unknown = {"license_key": "cdt_live_" + "x" * 43}
    assert client.post("/api/v1/licenses/validate", json=unknown).json()["code"] == "NOT_FOUND"
    assert client.post("/api/v1/licenses/validate", json={}).status_code == 400
    old = owner.tokens["refresh_token"]
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": old}).status_code == 200
    sql(
        "update sessions set rotated_at = now() - interval '1 minute' where user_id = %s",
        owner.user["id"],
    )
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": old}).status_code == 401
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "coditect_http_request_duration_seconds_count"
    assert grew(requests, operation="validateLicense", status="200") == 3
    assert grew(requests, operation="validateLicense", status="400") == 1
    assert grew(requests, operation="refreshTokens", status="200") == 1
    assert grew(requests, operation="refreshTokens", status="401") == 1
    assert grew(requests, operation="getMetrics", status="200") == 1, "the first scrape"
    assert (
        grew(
            "coditect_http_request_duration_seconds_bucket",
            le="+Inf",
            operation="validateLicense",
            status="200",
        )
        == 3
    )
    assert grew("coditect_license_validations_total", code="VALID") == 2
    assert grew("coditect_license_validations_total", code="NOT_FOUND") == 1
    assert grew("coditect_license_seat_activations_total") == 1, "the second was a known machine"
    assert grew("coditect_refresh_tokens_total", outcome="rotated") == 1
    assert grew("coditect_refresh_tokens_total", outcome="reused") == 1
    assert value(after, "coditect_db_pool_connections") >= 1
    assert value(after, "coditect_up") == 1
