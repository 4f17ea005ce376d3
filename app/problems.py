"""RFC 9457 problems: the errors the API reports, raised as exceptions by any layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_BASE = "https://problems.coditect.ai/"
PROBLEM_JSON = "application/problem+json"

TITLES = {
    "validation-error": (400, "Your request is not valid."),
    "invalid-cursor": (400, "The pagination cursor is not valid."),
    "unauthorized": (401, "Authentication is required."),
    "forbidden": (403, "You are not allowed to do this."),
    "not-found": (404, "The resource was not found."),
    "method-not-allowed": (405, "The method is not allowed on this resource."),
    "conflict": (409, "The request conflicts with the current state of the resource."),
    "idempotency-key-reused": (422, "The Idempotency-Key was used for a different request."),
    "payload-too-large": (413, "The request body is too large."),
    "unsupported-media-type": (415, "The request body has an unsupported media type."),
    "rate-limited": (429, "Too many requests."),
    "request-header-fields-too-large": (431, "The request header fields are too large."),
    "internal-error": (500, "An unexpected error occurred."),
    "service-unavailable": (503, "The service is not ready."),
}


class Problem(Exception):
    """An error the API reports to its caller; `kind` is the stable slug of its type URI."""

    def __init__(
        self,
        kind: str,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        title: str | None = None,
    ) -> None:
        default_status, default_title = TITLES[kind]
        self.kind = kind
        self.status = status or default_status
        self.title = title or default_title
        self.detail = detail
        self.errors = [dict(e) for e in errors] if errors else None
        self.headers = dict(headers or {})
        super().__init__(f"{self.status} {kind}: {detail or self.title}")

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.kind

    def body(self, *, instance: str | None, request_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail[:2000]
        if instance:
            body["instance"] = instance[:2000]
        if request_id:
            body["request_id"] = request_id
        if self.errors is not None:
            body["errors"] = self.errors[:100]
        return body


def unauthorized(detail: str = "The access token is missing, invalid or expired.") -> Problem:
    return Problem("unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="coditect"'})


def not_found(what: str = "resource") -> Problem:
    return Problem("not-found", f"No such {what}.")


def forbidden(detail: str) -> Problem:
    return Problem("forbidden", detail)


# Seconds a caller is asked to wait when the database cannot serve: long enough for a pool
# to reconnect after a restart or failover, short enough not to lose the caller.
UNAVAILABLE_RETRY_AFTER_S = 5
_UNAVAILABLE = "The database is temporarily unavailable; retry after Retry-After seconds."


def database_unavailable() -> Problem:
    """503: the database cannot serve now (lost, restarting, out of resources, pool exhausted)."""
    return Problem(
        "service-unavailable",
        _UNAVAILABLE,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
    )


# The one SQLSTATE -> problem mapping: a full SQLSTATE, or a two-character class standing for
# every SQLSTATE in it (the full code wins). Anything not listed is a 500.
_SQLSTATE = {
    "23505": ("conflict", "A resource with the same unique value already exists."),
    "23503": ("not-found", "A referenced resource does not exist."),
    "23514": ("validation-error", "A value is outside its allowed range."),
    "23502": ("validation-error", "A required value is missing."),
    "22001": ("validation-error", "A value is too long."),
    "22003": ("validation-error", "A number is out of range."),
    "22007": ("validation-error", "A date or time is not valid."),
    "22008": ("validation-error", "A date or time is out of range."),
    "22P02": ("validation-error", "A value has the wrong format."),
    "22P05": ("validation-error", "Text must not contain NUL characters."),
    "42501": ("forbidden", "You are not allowed to do this."),
    "40001": ("conflict", "A concurrent change conflicted with this request; retry it."),
    "40P01": ("conflict", "A concurrent change conflicted with this request; retry it."),
    # The database cannot serve now: connection exceptions, insufficient resources (too many
    # connections, out of memory or disk), and a server shutting down or starting up.
    "08": ("service-unavailable", _UNAVAILABLE),
    "53": ("service-unavailable", _UNAVAILABLE),
    "57P01": ("service-unavailable", _UNAVAILABLE),  # admin_shutdown
    "57P02": ("service-unavailable", _UNAVAILABLE),  # crash_shutdown
    "57P03": ("service-unavailable", _UNAVAILABLE),  # cannot_connect_now
    # A statement over DATABASE_STATEMENT_TIMEOUT_MS: a fault the server can name (an
    # overloaded or locked-up database), not a bug; the transaction was rolled back.
    "57014": (
        "service-unavailable",
        "The database took too long to answer; retry after Retry-After seconds.",
    ),
}


def from_sqlstate(sqlstate: str | None) -> Problem | None:
    if not sqlstate:
        return None
    found = _SQLSTATE.get(sqlstate) or _SQLSTATE.get(sqlstate[:2])
    if found is None:
        return None
    kind, detail = found
    if kind == "service-unavailable":
        return database_unavailable()
    return Problem(kind, detail)
