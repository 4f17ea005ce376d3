"""The contract: openapi.yaml loaded once, split into the /api/v1 API and the service endpoints."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_HERE = Path(__file__).resolve().parent
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def spec_path() -> Path:
    for candidate in (_HERE / "openapi.yaml", _HERE.parent / "openapi.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("openapi.yaml not found next to the app package")


@cache
def load() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def _is_service_path(item: dict[str, Any]) -> bool:
    return any(server.get("url") == "/" for server in item.get("servers", []))


def split(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two documents Connexion can mount: the API under its server URL, the service paths at /.

    Connexion honours only the document-level server, so path-level `servers: [{url: /}]`
    items are served as a second API sharing the same components.
    """
    api = copy.deepcopy(spec)
    service = copy.deepcopy(spec)
    api["paths"] = {p: i for p, i in spec["paths"].items() if not _is_service_path(i)}
    service["paths"] = {}
    for path, item in spec["paths"].items():
        if _is_service_path(item):
            item = {k: v for k, v in copy.deepcopy(item).items() if k != "servers"}
            service["paths"][path] = item
    service["servers"] = [{"url": "/"}]
    return api, service


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]
