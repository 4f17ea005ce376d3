"""What the edge adds to or changes in every response: redirects never reflect Host."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from app.edge.headers import relative_location

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
