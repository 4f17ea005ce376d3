"""Operations of the `projects` tag: the projects of the caller's organization."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg.errors
from starlette.responses import Response

from app import runtime
from app.adapter.bearer import caller
from app.auth.verifier import Principal
from app.edge import responses
from app.problems import Problem, forbidden, not_found
from app.rules import audit, pagination, roles
from db import Jsonb, Row, Transaction, queries

Q = queries("projects")


async def list_projects(limit: int = 20, cursor: str | None = None) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        body = await pagination.keyset_page(
            tx,
            runtime.current().cursors,
            Q.list_projects_first,
            Q.list_projects_after,
            kind="projects",
            organization_id=principal.organization_id,
            limit=limit,
            cursor=cursor,
        )
    return responses.json(body)


async def create_project(body: dict[str, Any]) -> Response:
    principal = caller()
    try:
        async with runtime.current().database.tenant(principal) as tx:
            roles.require(tx.role, "MEMBER", "create projects")
            project = await tx.one(
                Q.create_project,
                organization_id=principal.organization_id,
                name=body["name"],
                description=body.get("description"),
                status=body.get("status"),
                created_by=principal.user_id,
                metadata=Jsonb(body.get("metadata") or {}),
            )
            assert project is not None
            await audit.by_caller(
                tx, principal, "project.created", "project", project["id"], {"name": body["name"]}
            )
    except psycopg.errors.UniqueViolation:
        raise _name_taken() from None
    return responses.json(project, 201, {"Location": f"/api/v1/projects/{project['id']}"})


async def get_project(project_id: str) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        project = await tx.one(
            Q.get_project, organization_id=principal.organization_id, project_id=project_id
        )
    if project is None:
        raise not_found("project")
    return responses.json(project)


async def update_project(project_id: str, body: dict[str, Any]) -> Response:
    principal = caller()
    org = principal.organization_id
    metadata = body.get("metadata")
    try:
        async with runtime.current().database.tenant(principal) as tx:
            target = await _find(tx, org, project_id)
            _require_can_change(tx.role, principal, target)
            project = await tx.one(
                Q.update_project,
                organization_id=org,
                project_id=project_id,
                name=body.get("name"),
                set_description="description" in body,
                description=body.get("description"),
                status=body.get("status"),
                metadata=Jsonb(metadata) if metadata is not None else None,
            )
            if project is None:  # deleted by a concurrent request since _find
                raise not_found("project")
            await audit.by_caller(
                tx, principal, "project.updated", "project", project_id, {"fields": sorted(body)}
            )
    except psycopg.errors.UniqueViolation:
        raise _name_taken() from None
    return responses.json(project)


async def delete_project(project_id: str) -> Response:
    principal = caller()
    org = principal.organization_id
    async with runtime.current().database.tenant(principal) as tx:
        target = await _find(tx, org, project_id)
        _require_can_change(tx.role, principal, target)
        if await tx.run(Q.delete_project, organization_id=org, project_id=project_id) == 0:
            raise not_found("project")
        await audit.by_caller(tx, principal, "project.deleted", "project", project_id, {})
    return responses.empty()


async def _find(tx: Transaction, organization_id: uuid.UUID, project_id: str) -> Row:
    # A plain read first: RLS hides from UPDATE the rows the caller may not change, and a
    # project the caller may see but not change must answer 403, not 404.
    target = await tx.one(Q.find_project, organization_id=organization_id, project_id=project_id)
    if target is None:
        raise not_found("project")
    return target


def _require_can_change(role: str, principal: Principal, target: Row) -> None:
    """ADMIN+ change any project; a MEMBER only the projects it created; a GUEST none."""
    roles.require(role, "MEMBER", "change projects")
    if not roles.at_least(role, "ADMIN") and target["created_by"] != principal.user_id:
        raise forbidden("A MEMBER may change only the projects it created.")


def _name_taken() -> Problem:
    # The one unique key a tenant can hit here: projects_org_name_live_key.
    return Problem("conflict", "Another live project of this organization has this name.")
