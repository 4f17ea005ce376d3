"""The contract as authored, and Swagger UI 5 over it, served at fixed paths under the API.

The contract is served as written (component names and `$ref`s kept, the root-mounted service
paths included with their `servers`), not as Connexion holds it after resolving every
reference. The UI's files come from the swagger-ui-py package (Swagger UI 5, which renders
OpenAPI 3.1), each read at its first request and kept; nothing is fetched from elsewhere at
serve time. Every path here is exact, known at start-up, not counted by the rate limiter, and
cached by clients (Cache-Control and an ETag, answered 304 when it matches).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import string
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

# Where each is served, under the API's server URL (/api/v1).
SPEC_JSON = "/openapi.json"
SPEC_YAML = "/openapi.yaml"
UI = "/ui"

# The contract and the UI page change with a deployment: clients re-check after five minutes
# (as for the JWKS). The UI's files are fetched with the Swagger UI version in their URL.
SPEC_CACHE = "public, max-age=300"
UI_PAGE_CACHE = "public, max-age=300"
UI_FILE_CACHE = "public, max-age=86400"

# The files of swagger-ui-py's Swagger UI distribution the page uses, and their media types.
UI_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}
ALLOW = "GET, HEAD"

# validatorUrl: null, or Swagger UI shows a badge fetched from swagger.io (telling it the
# contract's URL) whenever the page is not on localhost; that validator cannot read 3.1 anyway.
_PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>CODITECT Cloud API: Swagger UI</title>
  <link rel="stylesheet" href="swagger-ui.css?v=$version">
  <link rel="icon" type="image/png" href="favicon-32x32.png?v=$version" sizes="32x32">
  <link rel="icon" type="image/png" href="favicon-16x16.png?v=$version" sizes="16x16">
  <style>html { box-sizing: border-box; overflow-y: scroll; } body { margin: 0; }</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js?v=$version" charset="UTF-8"></script>
  <script src="swagger-ui-standalone-preset.js?v=$version" charset="UTF-8"></script>
  <script>
    window.onload = function () {
      window.ui = SwaggerUIBundle({
        url: $spec_url,
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        plugins: [SwaggerUIBundle.plugins.DownloadUrl],
        layout: "StandaloneLayout",
        validatorUrl: null
      });
    };
  </script>
</body>
</html>
""")


@dataclass(frozen=True)
class Asset:
    """A fixed response body with its media type and caching headers."""

    body: bytes
    media_type: str
    cache_control: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str, cache_control: str) -> Asset:
        return cls(body, media_type, cache_control, f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def response(self, scope: Scope) -> Response:
        headers = {"Cache-Control": self.cache_control, "ETag": self.etag}
        if self.etag in _if_none_match(scope):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


class FileAsset:
    """A file of the UI, read at its first request and kept: a worker holds Swagger UI's
    2.8 MB only once someone has opened the UI (measured 2026-11-30: 2.3 MB of bundle and
    0.5 MB of preset and styles held by every worker from start-up)."""

    def __init__(self, path: Path, media_type: str, cache_control: str) -> None:
        self.path = path
        self.media_type = media_type
        self.cache_control = cache_control

    @cached_property
    def asset(self) -> Asset:
        return Asset.of(self.path.read_bytes(), self.media_type, self.cache_control)

    def response(self, scope: Scope) -> Response:
        return self.asset.response(scope)


def _if_none_match(scope: Scope) -> set[str]:
    value = Headers(scope=scope).get("if-none-match", "")
    return {tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip()}


def swagger_ui_dir() -> Path:
    """The static files of swagger-ui-py, found without importing the package (its import
    loads handlers for other web frameworks)."""
    found = importlib.util.find_spec("swagger_ui")
    if found is None or not found.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: CODITECT_SWAGGER_UI needs it")
    return Path(next(iter(found.submodule_search_locations))) / "static"


def swagger_ui_version(bundle: bytes) -> str:
    """The Swagger UI release a bundle was built from, as its build info records it."""
    found = re.search(rb'PACKAGE_VERSION:"([0-9][0-9A-Za-z.+-]*)"', bundle)
    if found is None:
        raise RuntimeError("swagger-ui-bundle.js does not say which Swagger UI version it is")
    return found.group(1).decode()


@cache
def ui_files() -> tuple[str, dict[str, FileAsset]]:
    """Swagger UI's version (read once per process) and its files (each read when first
    served)."""
    directory = swagger_ui_dir()
    files = {
        name: FileAsset(directory / name, media_type, UI_FILE_CACHE)
        for name, media_type in UI_FILES.items()
    }
    return swagger_ui_version((directory / "swagger-ui-bundle.js").read_bytes()), files


def ui_page(spec_url: str, version: str) -> bytes:
    # The URL as a JavaScript string literal that cannot close the <script> element.
    literal = json.dumps(spec_url).replace("<", "\\u003c").replace(">", "\\u003e")
    return _PAGE.substitute(spec_url=literal, version=version).encode()


class Docs:
    """What is served where: the contract (JSON and YAML) and, when enabled, Swagger UI."""

    def __init__(
        self, base: str, document: Mapping[str, Any], source: bytes, swagger_ui: bool
    ) -> None:
        self.base = base.rstrip("/")
        self.spec_url = self.base + SPEC_JSON
        self.ui_url = self.base + UI + "/"
        self.assets: dict[str, Asset | FileAsset] = {
            self.spec_url: Asset.of(orjson.dumps(document), "application/json", SPEC_CACHE),
            self.base + SPEC_YAML: Asset.of(source, "text/yaml; charset=utf-8", SPEC_CACHE),
        }
        self.redirects: dict[str, str] = {}
        self.version: str | None = None
        if swagger_ui:
            self.version, files = ui_files()
            self.assets.update({self.ui_url + name: asset for name, asset in files.items()})
            # The contract by a URL relative to the page, so it is found behind any prefix.
            page = ui_page(".." + SPEC_JSON, self.version)
            for path in (self.ui_url, self.ui_url + "index.html"):
                self.assets[path] = Asset.of(page, "text/html; charset=utf-8", UI_PAGE_CACHE)
            self.redirects[self.base + UI] = self.ui_url

    @property
    def paths(self) -> frozenset[str]:
        """Every path served here (none of them counted by the rate limiter)."""
        return frozenset(self.assets) | frozenset(self.redirects)


class DocsMiddleware:
    """Answers the paths of `Docs`; every other request goes on untouched (one dict look-up)."""

    def __init__(self, app: ASGIApp, docs: Docs) -> None:
        self.app = app
        self.docs = docs
        self.paths = docs.paths

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine (app.edge.middleware's PASS_THROUGH).
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return self.app(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            # Raised here so the exception middleware renders it like every other problem.
            raise HTTPException(405, headers={"Allow": ALLOW})
        path: str = scope["path"]
        response: Response
        if path in self.docs.redirects:
            response = RedirectResponse(scope.get("root_path", "") + self.docs.redirects[path])
        else:
            response = self.docs.assets[path].response(scope)
        return response(scope, receive, send)
