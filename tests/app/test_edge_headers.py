"""What the edge adds to or changes in every response: security headers, no-store, and
redirects that never reflect Host."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from starlette.testclient import TestClient

from app.edge.headers import relative_location, security_headers

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_hardened(response: httpx.Response, cache_control: str = "no-store") -> None:
    for name, value in SECURITY.items():
        assert response.headers.get_list(name) == [value], (name, response.request.url)
    assert response.headers.get_list("cache-control") == [cache_control], response.request.url


def test_every_kind_of_response_carries_the_security_headers_and_no_store(
    client: TestClient,
) -> None:
    signup = client.post(
        "/api/v1/auth/signup",
        json={
            "email": f"headers-{uuid.uuid4().hex[:8]}@example.test",
            "password": "correct horse battery staple",
            "full_name": "Head Ers",
            "organization_name": "Headers Org",
        },
    )
    assert signup.status_code == 201, signup.text
    assert_hardened(signup)  # tokens and a license key: never stored
    auth = {"Authorization": f"Bearer {signup.json()['tokens']['access_token']}"}
    responses = [
        client.get("/api/v1/auth/me", headers=auth),  # 200, per-user data
        client.post("/api/v1/projects", json={"name": "hdr"}, headers=auth),  # 201
        client.post("/api/v1/auth/login", json={"email": "x"}),  # 400
        client.get("/api/v1/auth/me"),  # 401
        client.get(f"/api/v1/projects/{uuid.uuid4()}", headers=auth),  # 404
        client.patch("/api/v1/licenses/validate", json={}),  # 405
        client.post("/api/v1/auth/login", content=b"x", headers={"Content-Type": "text/plain"}),
        client.get("/api/v1/auth/me", headers={f"x-{n}": "1" for n in range(120)}),  # 431
        client.get("/api/v1/nothing-here"),  # 404 outside any operation
        client.get("/api/v1/projects/", follow_redirects=False),  # 307
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/metrics"),
        client.post("/api/v1/auth/logout", headers=auth),  # 204
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 201, 400, 401, 404, 405, 415, 431, 404, 307, 200, 200, 200, 204]
    for response in responses:
        assert_hardened(response)


def test_the_key_set_keeps_its_own_public_cache_header(client: TestClient) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert_hardened(response, cache_control="public, max-age=300")


def test_swagger_ui_still_works_with_the_security_headers(client: TestClient) -> None:
    page = client.get("/api/v1/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"  # the page itself is never framed
    assert "content-security-policy" not in page.headers  # its inline script still runs
    # The UI and the contract keep their own (public) caching: no-store is only a default.
    assert page.headers["cache-control"].startswith("public")
    # With nosniff a browser runs a script or applies a stylesheet only when it is served
    # with a script or CSS media type: every one the page loads is.
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css)(?:\?[^"]*)?)"', page.text)
    assert len(assets) >= 3, page.text
    for asset in assets:
        url = asset if asset.startswith("/") else f"/api/v1/ui/{asset.removeprefix('./')}"
        response = client.get(url)
        assert response.status_code == 200, url
        expected = "text/css" if ".css" in asset else "javascript"
        assert expected in response.headers["content-type"], (url, response.headers)
        assert_hardened(response, cache_control=response.headers["cache-control"])
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert spec.headers["content-type"].startswith("application/json")
    assert_hardened(spec, cache_control=spec.headers["cache-control"])


def test_security_headers_are_added_once() -> None:
    message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"cache-control", b"public, max-age=60"), (b"x-frame-options", b"DENY")],
    }
    security_headers(message)
    security_headers(message)
    assert sorted(message["headers"]) == sorted(
        [
            (b"cache-control", b"public, max-age=60"),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
    )


HOSTILE_HOSTS = ["evil.example", "evil.example:8443", "evil.example/phish?", "evil.example#"]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/api/v1/projects/", "/api/v1/projects"),
        ("/api/v1/projects/?limit=5", "/api/v1/projects?limit=5"),
        ("/healthz/", "/healthz"),
        ("/api/v1/ui", "/api/v1/ui/"),
    ],
)
def test_redirects_are_relative_whatever_the_host_header(
    client: TestClient, host: str, path: str, location: str
) -> None:
    response = client.get(path, headers={"Host": host}, follow_redirects=False)
    assert response.status_code in (301, 302, 307, 308), response.text
    assert response.headers["location"] == location
    assert "evil" not in response.text


def test_the_redirect_still_leads_to_the_resource(client: TestClient) -> None:
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("host", "location", "expected"),
    [
        (b"api.example", "https://api.example/x?y=1", "/x?y=1"),
        (None, "http://10.0.0.1:8000/x", "/x"),
        (b"a.example", "//evil.example/x", "/x"),
        (b"a.example", "/already/relative", "/already/relative"),
        (b"a.example", "http://a.example//evil.example/x", "/evil.example/x"),
    ],
)
def test_relative_location(host: bytes | None, location: str, expected: str) -> None:
    headers = [(b"location", location.encode())]
    scope = {"headers": [(b"host", host)] if host is not None else []}
    message = {"type": "http.response.start", "status": 307, "headers": headers}
    relative_location(message, scope)
    assert dict(message["headers"])[b"location"] == expected.encode()


def test_a_location_that_is_not_a_redirect_is_left_alone() -> None:
    message = {"type": "http.response.start", "status": 201, "headers": [(b"location", b"/a/b")]}
    relative_location(message, {"headers": []})
    assert message["headers"] == [(b"location", b"/a/b")]
