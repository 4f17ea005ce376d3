"""Every exception, as the problem+json its caller gets; database errors mapped by SQLSTATE."""

from __future__ import annotations

import logging

import connexion.exceptions
import orjson
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

import db
from app import context, runtime
from app.problems import (
    PROBLEM_JSON,
    Problem,
    database_unavailable,
    from_sqlstate,
    unauthorized,
)

log = logging.getLogger("coditect")

_KIND_BY_STATUS = {
    400: "validation-error",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
    431: "request-header-fields-too-large",
    503: "service-unavailable",
}


def as_problem(exc: Exception) -> Problem:
    """Every exception the app can see, as the problem its caller gets."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, db.SessionNotLive):
        return unauthorized("The session has ended.")
    if isinstance(exc, db.Unavailable):
        log.warning("database unavailable (request %s): %s", context.request_id.get(), exc)
        return database_unavailable()
    if isinstance(exc, connexion.exceptions.ProblemException) and exc.status == 401:
        return unauthorized()
    if isinstance(exc, connexion.exceptions.ProblemException | HTTPException):
        status = (
            exc.status
            if isinstance(exc, connexion.exceptions.ProblemException)
            else exc.status_code
        )
        kind = _KIND_BY_STATUS.get(status)
        if kind is not None:
            detail = exc.detail if isinstance(exc.detail, str) else None
            headers = getattr(exc, "headers", None) or {}
            return Problem(kind, detail, headers=headers)
    mapped = from_sqlstate(db.sqlstate(exc))
    if mapped is not None:
        if mapped.status == 503:
            log.warning("database unavailable (request %s): %r", context.request_id.get(), exc)
        return mapped
    log.error(
        "unhandled error (request %s)",
        context.request_id.get(),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return Problem("internal-error", "The error was logged; quote the request_id to support.")


async def render_problem(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    problem = as_problem(exc)
    if problem.status == 405:
        allow = runtime.current().allowed.for_path(request.url.path)
        if allow:
            problem.headers["Allow"] = allow
    body = problem.body(instance=request.url.path, request_id=context.request_id.get())
    return ConnexionResponse(
        status_code=problem.status,
        mimetype=PROBLEM_JSON,
        content_type=PROBLEM_JSON,
        body=orjson.dumps(body),
        headers=problem.headers,
    )
