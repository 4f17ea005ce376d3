"""Operations of the `organizations` tag: the caller's own organization."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg.errors
from starlette.responses import Response

from app import runtime
from app.adapter.bearer import caller
from app.edge import responses
from app.problems import Problem, not_found
from app.rules import audit, roles
from db import Jsonb, queries

Q = queries("organizations")


async def get_organization(organization_id: uuid.UUID) -> Response:
    async with runtime.current().database.tenant(caller()) as tx:
        organization = await tx.one(Q.get_organization, organization_id=organization_id)
    if organization is None:
        raise not_found("organization")
    return responses.json(organization)


async def update_organization(organization_id: uuid.UUID, body: dict[str, Any]) -> Response:
    principal = caller()
    metadata = body.get("metadata")
    try:
        async with runtime.current().database.tenant(principal) as tx:
            if await tx.one(Q.get_organization, organization_id=organization_id) is None:
                raise not_found("organization")
            roles.require(tx.role, "ADMIN", "change the organization")
            updated = await tx.one(
                Q.update_organization,
                organization_id=organization_id,
                name=body.get("name"),
                slug=body.get("slug"),
                metadata=Jsonb(metadata) if metadata is not None else None,
            )
            if updated is None:  # deleted by its owner meanwhile
                raise not_found("organization")
            await audit.by_caller(
                tx,
                principal,
                "organization.updated",
                "organization",
                organization_id,
                {"fields": sorted(body)},
            )
    except psycopg.errors.UniqueViolation:
        raise Problem("conflict", "Another organization already uses this slug.") from None
    return responses.json(updated)


async def delete_organization(organization_id: uuid.UUID) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        if await tx.one(Q.get_organization, organization_id=organization_id) is None:
            raise not_found("organization")
        roles.require(tx.role, "OWNER", "delete the organization")
        await audit.by_caller(
            tx, principal, "organization.deleted", "organization", organization_id
        )
        await tx.run(Q.delete_organization, organization_id=organization_id)
        await tx.run(Q.delete_organization_users, organization_id=organization_id)
        await tx.run(Q.end_organization_sessions, organization_id=organization_id)
    return responses.empty()
