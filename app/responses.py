"""Ready responses with an explicit content type, encoded once with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"


def json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    # orjson writes UUIDs and timezone-aware datetimes in the spec's formats (RFC 3339).
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)


def text(body: str, status: int = 200, media_type: str = "text/plain; version=0.0.4") -> Response:
    return Response(body, status_code=status, media_type=media_type)


def empty(status: int = 204) -> Response:
    return Response(status_code=status)
