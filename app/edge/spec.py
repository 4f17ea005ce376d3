"""The contract: openapi.yaml loaded once, split into the /api/v1 API and the service endpoints."""

from __future__ import annotations

import copy
import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_APP = Path(__file__).resolve().parent.parent  # the app package
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def spec_path() -> Path:
    for candidate in (_APP / "openapi.yaml", _APP.parent / "openapi.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("openapi.yaml not found next to the app package")


@cache
def source() -> bytes:
    """The contract as authored: the bytes of openapi.yaml."""
    return spec_path().read_bytes()


def sha256() -> str:
    """Names the contract's exact bytes: what `serve` validated is what a worker serves."""
    return hashlib.sha256(source()).hexdigest()


@cache
def load() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(source())
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


def operation_url_path(spec: dict[str, Any], operation_id: str) -> str:
    """The request path of an operation of a split document: its server URL plus its path."""
    base = spec["servers"][0]["url"].rstrip("/")
    for path, _method, op in operations(spec):
        if op.get("operationId") == operation_id:
            return base + path
    raise KeyError(operation_id)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


class AllowedMethods:
    """Which methods each served path answers, for 405 responses' Allow header.

    Starlette's router reports only the methods of the first route whose path matched,
    and Connexion makes one route per operation, so its Allow header is incomplete.
    """

    def __init__(self, mounted: list[tuple[str, dict[str, Any]]]) -> None:
        self._index: list[tuple[re.Pattern[str], str]] = []
        self.literal: dict[str, frozenset[str]] = {}
        for base, document in mounted:
            for path, item in document["paths"].items():
                methods = {m.upper() for m in item if m in HTTP_METHODS}
                if "GET" in methods:
                    methods.add("HEAD")
                if "{" not in path:
                    self.literal[base.rstrip("/") + path] = frozenset(methods)
                parts = re.split(r"(\{[^/}]+\})", base.rstrip("/") + path)
                pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
                self._index.append((re.compile(f"^{pattern}$"), ", ".join(sorted(methods))))

    def for_path(self, path: str) -> str | None:
        # A fixed path wins over a templated one that also matches it, wherever the spec
        # lists it (/licenses/deactivate is not /licenses/{license_id}).
        literal = self.literal.get(path)
        if literal is not None:
            return ", ".join(sorted(literal))
        for pattern, allowed in self._index:
            if pattern.match(path):
                return allowed
        return None
