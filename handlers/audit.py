"""Operations of the `audit` tag: the organization's audit trail, read by its ADMINs."""

from __future__ import annotations

from datetime import datetime

from starlette.responses import Response

from app import runtime
from app.adapter.bearer import caller
from app.edge import responses
from app.problems import Problem
from app.rules import pagination, roles
from db import queries

Q = queries("audit")


async def list_audit_events(
    limit: int = 20,
    cursor: str | None = None,
    action: str | None = None,
    actor_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    start, end = _instant("since", since), _instant("until", until)
    if start is not None and end is not None and start >= end:
        raise Problem(
            "validation-error",
            "`since` must be before `until`.",
            errors=[{"field": "query.until", "message": "must be after since"}],
        )
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        roles.require(tx.role, "ADMIN", "read the audit trail")
        body = await pagination.keyset_page(
            tx,
            runtime.current().cursors,
            Q.list_audit_events_first,
            Q.list_audit_events_after,
            kind="audit",
            organization_id=principal.organization_id,
            limit=limit,
            cursor=cursor,
            action=action,
            actor_id=actor_id,
            target_type=target_type,
            target_id=target_id,
            since=start,
            until=end,
        )
    return responses.json(body)


def _instant(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:  # RFC 3339 requires the offset
        raise Problem(
            "validation-error",
            f"`{name}` must be an RFC 3339 date-time with an offset.",
            errors=[{"field": f"query.{name}", "message": "is not an RFC 3339 date-time"}],
        )
    return value
