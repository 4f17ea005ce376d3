"""Service endpoints and the behaviour every route shares: problems, request ids, limits."""

from __future__ import annotations

import re

import jwt
import pytest
from starlette.testclient import TestClient

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, kind: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"https://problems.coditect.ai/{kind}"
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_migrations(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    migrations = body["checks"]["migrations"]
    assert migrations["ok"] is True
    assert migrations["current"] == migrations["expected"]


def test_jwks_serves_public_keys_that_verify_our_signatures(client: TestClient) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    served = client.app.runtime.keys  # type: ignore[attr-defined]
    token_key = served.token_key
    assert {k["kid"] for k in keys} >= {token_key.kid, served.license_key.kid}
    signed = jwt.encode(
        {"x": 1}, token_key.private, algorithm="EdDSA", headers={"kid": token_key.kid}
    )
    jwk = next(k for k in keys if k["kid"] == token_key.kid)
    public = jwt.PyJWK.from_dict(jwk).key
    assert jwt.decode(signed, public, algorithms=["EdDSA"]) == {"x": 1}


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "coditect_up 1" in response.text


def test_request_ids_are_made_or_adopted(client: TestClient) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    adopted = client.get("/healthz", headers={"X-Request-Id": "client-abc-123"})
    assert adopted.headers["x-request-id"] == "client-abc-123"
    hostile = client.get("/healthz", headers={"X-Request-Id": "<script>"})
    assert hostile.headers["x-request-id"] != "<script>"


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/nowhere"), 404, "not-found")
    assert_problem(client.get("/nowhere"), 404, "not-found")


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    response = client.put("/api/v1/projects")
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


def test_missing_or_bad_bearer_is_a_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/auth/me")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(response, 401, "unauthorized")
    response = client.get("/api/v1/auth/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_problem(response, 401, "unauthorized")


def test_malformed_and_non_utf8_bodies_are_400_problems(client: TestClient) -> None:
    for raw in (b'{"email": ', b"\xff\xfe\xfa", b"[1, 2"):
        response = client.post(
            "/api/v1/auth/login", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 400, "validation-error")


def test_validation_problems_name_each_field(client: TestClient) -> None:
    response = client.post("/api/v1/auth/login", json={"email": "not-an-email", "extra": True})
    body = assert_problem(response, 400, "validation-error")
    fields = {e["field"] for e in body["errors"]}
    assert {"body.email", "body.password", "body.extra"} <= fields


def test_wrong_content_type_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login", content=b"email=x", headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize("content_type", ["Application/JSON", "APPLICATION/JSON; charset=utf-8"])
def test_the_media_type_is_case_insensitive(client: TestClient, content_type: str) -> None:
    headers = {"Content-Type": content_type}
    invalid = client.post("/api/v1/licenses/validate", content=b'{"zzz": 1}', headers=headers)
    body = assert_problem(invalid, 400, "validation-error")
    assert {"field": "body.zzz", "message": "is not allowed"} in body["errors"]
    valid = b'{"license_key": "cdt_live_unknown_key_0000"}'
    response = client.post("/api/v1/licenses/validate", content=valid, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == "NOT_FOUND"


def test_oversize_body_is_413_declared_or_streamed(client: TestClient) -> None:
    big = b'{"email": "' + b"a" * 70_000 + b'"}'
    response = client.post(
        "/api/v1/auth/login", content=big, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"email": "'
        for _ in range(10):
            yield b"a" * 10_000
        yield b'"}'

    response = client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


def test_a_body_on_a_bodiless_method_is_ignored_not_413(client: TestClient) -> None:
    # No GET has a request body in the spec, so none documents 413; nothing reads it either.
    response = client.request("GET", "/healthz", content=b"x" * 70_000)
    assert response.status_code == 200, response.text


def test_swagger_ui_and_spec_are_served(client: TestClient) -> None:
    assert client.get("/api/v1/ui/").status_code == 200
    served = client.get("/api/v1/openapi.json").json()
    assert served["openapi"] == "3.1.0"


def test_a_fixed_path_is_not_captured_by_a_templated_one(client: TestClient) -> None:
    response = client.patch("/api/v1/licenses/validate", json={})
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/healthz", "/.well-known/jwks.json"])
def test_an_operation_without_parameters_refuses_a_query_parameter(
    client: TestClient, path: str
) -> None:
    body = assert_problem(client.get(f"{path}?surprise=1"), 400, "validation-error")
    assert body["errors"] == [{"field": "query.surprise", "message": "is not a known parameter"}]


def test_validation_refuses_a_query_parameter(client: TestClient) -> None:
    response = client.post(
        "/api/v1/licenses/validate?surprise=1", json={"license_key": "cdt_live_" + "x" * 20}
    )
    assert_problem(response, 400, "validation-error")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/auth/login", b'{"email": "a@example.test", "password": "twelve chars!"}'),
        ("POST", "/api/v1/licenses/validate", b'{"license_key": "cdt_live_unknown_key_0000"}'),
        ("POST", "/api/v1/auth/signup", b""),
    ],
)
def test_a_body_without_content_type_is_415(
    client: TestClient, method: str, path: str, body: bytes
) -> None:
    response = client.request(method, path, content=body)
    problem = assert_problem(response, 415, "unsupported-media-type")
    assert "no Content-Type" in problem["detail"]
    for empty in ("", " ", "; charset=utf-8"):
        response = client.request(method, path, content=body, headers={"Content-Type": empty})
        assert_problem(response, 415, "unsupported-media-type")


def test_a_body_without_content_type_on_an_authenticated_write_is_415(
    client: TestClient,
) -> None:
    signup = client.post(
        "/api/v1/auth/signup",
        json={
            "email": "no-content-type@example.test",
            "password": "correct horse battery staple",
            "full_name": "No Type",
            "organization_name": "No Type Org",
        },
    )
    assert signup.status_code == 201, signup.text
    headers = {"Authorization": f"Bearer {signup.json()['tokens']['access_token']}"}
    created = client.post("/api/v1/projects", content=b'{"name": "untyped"}', headers=headers)
    assert_problem(created, 415, "unsupported-media-type")
    project = client.post("/api/v1/projects", json={"name": "typed"}, headers=headers)
    assert project.status_code == 201, project.text
    url = f"/api/v1/projects/{project.json()['id']}"
    patched = client.patch(url, content=b'{"name": "renamed"}', headers=headers)
    assert_problem(patched, 415, "unsupported-media-type")


def test_a_post_without_a_body_is_not_asked_for_a_content_type(client: TestClient) -> None:
    # logout takes no body: no Content-Type is needed.
    signup = client.post(
        "/api/v1/auth/signup",
        json={
            "email": "logout-untyped@example.test",
            "password": "correct horse battery staple",
            "full_name": "Log Out",
            "organization_name": "Logout Org",
        },
    )
    assert signup.status_code == 201, signup.text
    headers = {"Authorization": f"Bearer {signup.json()['tokens']['access_token']}"}
    response = client.post("/api/v1/auth/logout", headers=headers)
    assert response.status_code == 204, response.text
