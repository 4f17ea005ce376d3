"""Ready responses with an explicit content type, encoded once with orjson."""

from __future__ import annotations

import json as stdlib_json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from app.problems import PROBLEM_JSON, Problem

JSON = "application/json"


def encode(body: Any) -> bytes:
    # orjson writes UUIDs and timezone-aware datetimes in the spec's formats (RFC 3339).
    try:
        return orjson.dumps(body)
    except TypeError:
        # Stored metadata may hold integers beyond 64 bits, which JSON allows and orjson
        # refuses: the slow path writes them exactly.
        return stdlib_json.dumps(body, default=_fallback, separators=(",", ":")).encode()


def _fallback(value: Any) -> Any:
    if isinstance(value, orjson.Fragment):
        # Stored JSON (db returns jsonb as Fragments) cannot be re-read here: fail loudly.
        raise TypeError("a stored JSON fragment cannot take the stdlib path")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # UUID


def json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(encode(body), status_code=status, headers=headers, media_type=JSON)


def text(body: str, status: int = 200, media_type: str = "text/plain; version=0.0.4") -> Response:
    return Response(body, status_code=status, media_type=media_type)


def empty(status: int = 204) -> Response:
    return Response(status_code=status)


def problem(problem: Problem, *, instance: str | None, request_id: str | None) -> Response:
    return Response(
        orjson.dumps(problem.body(instance=instance, request_id=request_id)),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )
