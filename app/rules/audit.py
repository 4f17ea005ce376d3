"""Audit entries for changes to who can do what, written in the request's own transaction."""

from __future__ import annotations

import uuid
from typing import Any

from app import context
from db import Jsonb, Principal, Transaction, queries

_RECORD = queries("audit").record_audit


async def record(
    tx: Transaction,
    *,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    # The request id and client address come from the request being served (app.context,
    # set by the edge and the adapter); an operator command has neither.
    await tx.run(
        _RECORD,
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=Jsonb(detail or {}),
        request_id=context.request_id.get(),
        client_ip=context.client_ip(),
    )


async def by_caller(
    tx: Transaction,
    principal: Principal,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    detail: dict[str, Any] | None = None,
) -> None:
    """An entry for a change the calling user made in their own organization."""
    await record(
        tx,
        organization_id=principal.organization_id,
        actor_id=principal.user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
    )
