"""The served contract is the authored one, and Swagger UI 5 is served over it from local files."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from app.config import Settings
from app.edge import docs, spec
from app.main import create_app

UI_FILES = ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_the_served_json_is_the_yaml_file_parsed(client: TestClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    with spec.spec_path().open(encoding="utf-8") as f:
        authored = yaml.safe_load(f)
    served = response.json()
    assert served == authored


def test_the_served_contract_keeps_names_refs_and_the_service_paths(client: TestClient) -> None:
    served = client.get("/api/v1/openapi.json").json()
    validate(served)  # a valid OpenAPI 3.1 document
    assert served["openapi"].startswith("3.1.")
    # Component names and references as authored, not inlined: every schema is referenced.
    found = refs(served)
    assert len(found) > 100
    schemas = served["components"]["schemas"]
    referenced = {r.rsplit("/", 1)[1] for r in found if r.startswith("#/components/schemas/")}
    assert set(schemas) <= referenced
    for path in ("/healthz", "/readyz", "/.well-known/jwks.json", "/metrics"):
        assert served["paths"][path]["servers"] == [{"url": "/"}], path
    assert served["servers"] == spec.load()["servers"]


def test_the_contract_is_served_as_yaml_too_byte_for_byte(client: TestClient) -> None:
    response = client.get("/api/v1/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/yaml")
    assert response.content == spec.spec_path().read_bytes()


def test_an_unchanged_contract_or_file_answers_304(client: TestClient) -> None:
    for path in ("/api/v1/openapi.json", "/api/v1/ui/swagger-ui-bundle.js"):
        first = client.get(path)
        etag = first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": f'W/"other", {etag}'})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == first.headers["cache-control"]
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_ui_page_loads_swagger_ui_5_from_local_files(client: TestClient) -> None:
    page = client.get("/api/v1/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "public, max-age=300"
    html = page.text
    version = re.search(r'src="swagger-ui-bundle\.js\?v=(\d+)\.(\d+)\.(\d+)"', html)
    assert version is not None, html
    assert int(version.group(1)) == 5
    assert 'url: "../openapi.json"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing from another host"
    assert "validatorUrl: null" in html, "no badge from swagger.io's online validator"
    assert client.get("/api/v1/ui/index.html").content == page.content

    bundle = client.get("/api/v1/ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "text/javascript; charset=utf-8"
    assert bundle.headers["cache-control"] == "public, max-age=86400"
    assert f'PACKAGE_VERSION:"{".".join(version.groups())}"'.encode() in bundle.content
    for name in UI_FILES:
        assert f'"{name}?v=' in html, name
        assert client.get(f"/api/v1/ui/{name}").status_code == 200, name
    assert client.get("/api/v1/ui/LICENSE").status_code == 200
    # Only the files the page uses: not the rest of the package (Swagger Editor, maps).
    assert client.get("/api/v1/ui/swagger-editor-bundle.js").status_code == 404


def test_the_ui_path_without_a_slash_redirects(client: TestClient) -> None:
    response = client.get("/api/v1/ui", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/api/v1/ui/"


def test_other_methods_are_refused_with_the_allowed_ones(client: TestClient) -> None:
    for path in ("/api/v1/openapi.json", "/api/v1/ui/", "/api/v1/ui/swagger-ui.css"):
        response = client.post(path, json={})
        assert response.status_code == 405, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "https://problems.coditect.ai/method-not-allowed"
        assert response.headers["allow"] == "GET, HEAD"
    assert client.head("/api/v1/openapi.json").status_code == 200


def test_without_the_ui_the_contract_is_still_served(app_settings: Settings) -> None:
    settings = dataclasses.replace(app_settings, swagger_ui=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/api/v1/ui/").status_code == 404
        assert client.get("/api/v1/ui/swagger-ui-bundle.js").status_code == 404
        assert client.get("/api/v1/openapi.json").json() == spec.load()


def test_the_version_is_read_from_the_bundles_build_info() -> None:
    assert docs.swagger_ui_version(b'x={PACKAGE_VERSION:"5.24.2",GIT_COMMIT:"g1"}') == "5.24.2"
    with pytest.raises(RuntimeError, match="which Swagger UI version"):
        docs.swagger_ui_version(b"nothing here")
    version, files = docs.ui_files()
    assert version.startswith("5.")
    assert set(files) == set(docs.UI_FILES)


def test_the_page_cannot_be_closed_by_the_spec_url() -> None:
    page = docs.ui_page('</script><script>alert("x")</script>', "5.0.0").decode()
    assert page.count("</script>") == 3  # the page's own three scripts only


def test_a_ui_file_is_read_when_first_served_and_then_kept(tmp_path: Path) -> None:
    # Workers hold Swagger UI's files only once someone has opened the UI.
    path = tmp_path / "swagger-ui-bundle.js"
    path.write_bytes(b"at start-up")
    asset = docs.FileAsset(path, "text/javascript; charset=utf-8", docs.UI_FILE_CACHE)
    path.write_bytes(b"at the first request")
    scope = {"type": "http", "headers": []}
    first = asset.response(scope)
    assert first.body == b"at the first request"
    path.write_bytes(b"later")
    again = asset.response(scope)
    assert again.body == b"at the first request"
    assert again.headers["etag"] == first.headers["etag"]
