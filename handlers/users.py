"""Operations of the `users` tag: the people of the caller's organization and their roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg.errors
from starlette.responses import Response

from app import runtime
from app.adapter.bearer import caller
from app.auth import tokens
from app.auth.verifier import Principal
from app.edge import responses
from app.mail import messages
from app.problems import Problem, forbidden, not_found
from app.rules import audit, pagination, roles
from db import Jsonb, Row, Transaction, queries

Q = queries("users")
ORGS = queries("organizations")
INVITATION_DAYS = 7


async def list_users(limit: int = 20, cursor: str | None = None) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        body = await pagination.keyset_page(
            tx,
            runtime.current().cursors,
            Q.list_users_first,
            Q.list_users_after,
            kind="users",
            organization_id=principal.organization_id,
            limit=limit,
            cursor=cursor,
        )
    return responses.json(body)


async def create_user(body: dict[str, Any]) -> Response:
    principal = caller()
    password = body.get("password")
    password_hash = await runtime.current().passwords.hash(password) if password else None
    try:
        async with runtime.current().database.tenant(principal) as tx:
            roles.require(tx.role, "ADMIN", "add users")
            roles.require_can_assign(tx.role, body["role"])
            user = await tx.one(
                Q.create_user if password_hash else Q.create_invited_user,
                organization_id=principal.organization_id,
                email=body["email"],
                full_name=body["full_name"],
                role=body["role"],
                password_hash=password_hash,
                metadata=Jsonb(body.get("metadata") or {}),
            )
            assert user is not None
            await audit.by_caller(
                tx,
                principal,
                "user.created" if password_hash else "user.invited",
                "user",
                user["id"],
                {"role": body["role"]},
            )
            if password_hash is None:
                await _invite(tx, principal.organization_id, user)
    except psycopg.errors.UniqueViolation:
        raise Problem("conflict", "A user with this email already exists.") from None
    return responses.json(user, 201, {"Location": f"/api/v1/users/{user['id']}"})


async def _invite(tx: Transaction, organization_id: uuid.UUID, user: Row) -> None:
    """A new invitation token for `user` and its message, in the caller's transaction; any
    earlier invitation of the user stops working."""
    token = tokens.new_secret()
    organization = await tx.one(ORGS.get_organization, organization_id=organization_id)
    settings = runtime.current().settings
    message = messages.invitation(
        settings.public_base_url,
        token,
        organization["name"] if organization else "your organization",
        INVITATION_DAYS,
    )
    await tx.run(Q.revoke_invitation_tokens, organization_id=organization_id, user_id=user["id"])
    await tx.run(
        Q.create_invitation_token,
        organization_id=organization_id,
        user_id=user["id"],
        token_digest=tokens.digest(token),
        expires_at=datetime.now(UTC) + timedelta(days=INVITATION_DAYS),
    )
    await tx.run(
        Q.queue_mail,
        organization_id=organization_id,
        kind="invitation",
        recipient=user["email"],
        subject=message.subject,
        body=message.body,
    )


async def _invited(tx: Transaction, principal: Principal, user_id: str) -> Row:
    """The invited user the caller may manage, locked; 404 for anyone else."""
    roles.require(tx.role, "ADMIN", "manage invitations")
    target = await _locked(tx, principal.organization_id, user_id)
    roles.require_can_manage(tx.role, target["role"])
    if target["status"] != "INVITED":
        raise not_found("invitation")
    found = await tx.one(
        Q.find_invited_user, organization_id=principal.organization_id, user_id=user_id
    )
    if found is None:
        raise not_found("invitation")
    return found


async def resend_invitation(invited_user_id: str) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        target = await _invited(tx, principal, invited_user_id)
        await _invite(tx, principal.organization_id, target)
        await audit.by_caller(tx, principal, "user.invitation_resent", "user", invited_user_id)
    return responses.empty(202)


async def revoke_invitation(invited_user_id: str) -> Response:
    principal = caller()
    org = principal.organization_id
    async with runtime.current().database.tenant(principal) as tx:
        await _invited(tx, principal, invited_user_id)
        await tx.run(Q.revoke_invitation_tokens, organization_id=org, user_id=invited_user_id)
        # The invited user goes with the invitation, so the email is free to invite again.
        await tx.run(Q.delete_user, organization_id=org, user_id=invited_user_id)
        await audit.by_caller(tx, principal, "user.invitation_revoked", "user", invited_user_id)
    return responses.empty()


async def get_user(user_id: str) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        user = await tx.one(Q.get_user, organization_id=principal.organization_id, user_id=user_id)
    if user is None:
        raise not_found("user")
    return responses.json(user)


async def update_user(user_id: str, body: dict[str, Any]) -> Response:
    principal = caller()
    org = principal.organization_id
    async with runtime.current().database.tenant(principal) as tx:
        target = await _locked(tx, org, user_id)
        new_role: str = body.get("role") or target["role"]
        new_status: str = body.get("status") or target["status"]
        if _is_self(principal, user_id):
            _check_self_update(tx.role, new_role, new_status, target["status"])
        else:
            roles.require_can_manage(tx.role, target["role"])
            roles.require_can_assign(tx.role, new_role)
        if (target["status"] == "INVITED") != (new_status == "INVITED"):
            raise Problem(
                "conflict",
                "An invited user becomes ACTIVE by accepting the invitation, and nobody "
                "becomes INVITED again; revoke or resend the invitation instead.",
            )
        if target["role"] == "OWNER" and (new_role != "OWNER" or new_status != "ACTIVE"):
            await _keep_an_owner(tx, org, target)
        metadata = body.get("metadata")
        user = await tx.one(
            Q.update_user,
            organization_id=org,
            user_id=user_id,
            full_name=body.get("full_name"),
            role=body.get("role"),
            status=body.get("status"),
            metadata=Jsonb(metadata) if metadata is not None else None,
        )
        if user is None:  # deleted by someone else meanwhile
            raise not_found("user")
        if new_role != target["role"]:
            await audit.by_caller(
                tx,
                principal,
                "user.role_changed",
                "user",
                user_id,
                {"from": target["role"], "to": new_role},
            )
        if new_status != target["status"]:
            await audit.by_caller(
                tx,
                principal,
                "user.status_changed",
                "user",
                user_id,
                {"from": target["status"], "to": new_status},
            )
            if new_status != "ACTIVE":
                await tx.run(
                    Q.end_user_sessions,
                    organization_id=org,
                    user_id=user_id,
                    reason="user_suspended",
                )
    return responses.json(user)


async def delete_user(user_id: str) -> Response:
    principal = caller()
    org = principal.organization_id
    async with runtime.current().database.tenant(principal) as tx:
        target = await _locked(tx, org, user_id)
        if not _is_self(principal, user_id):
            roles.require_can_manage(tx.role, target["role"])
        if target["role"] == "OWNER":
            await _keep_an_owner(tx, org, target)
        await audit.by_caller(
            tx, principal, "user.deleted", "user", user_id, {"role": target["role"]}
        )
        await tx.run(Q.delete_user, organization_id=org, user_id=user_id)
        await tx.run(Q.release_ownership, organization_id=org, user_id=user_id)
        await tx.run(
            Q.end_user_sessions, organization_id=org, user_id=user_id, reason="user_deleted"
        )
    return responses.empty()


async def _locked(tx: Transaction, organization_id: uuid.UUID, user_id: str) -> Row:
    """The target as it is once locked, so the role and last-owner checks cannot act on a
    row another request is changing. A plain read first: FOR UPDATE only sees rows the
    caller may update, and a row the caller may see but not change must answer 403 (from
    the checks that follow), not 404."""
    found = await tx.one(Q.find_user, organization_id=organization_id, user_id=user_id)
    if found is None:
        raise not_found("user")
    locked = await tx.one(Q.lock_user, organization_id=organization_id, user_id=user_id)
    return locked if locked is not None else found


def _is_self(principal: Principal, user_id: str) -> bool:
    # The path accepts upper-case hex: compare ids, not strings.
    return uuid.UUID(user_id) == principal.user_id


def _check_self_update(role: str, new_role: str, new_status: str, status: str) -> None:
    if roles.RANK[new_role] > roles.RANK[role]:
        raise forbidden("Nobody can raise their own role.")
    if new_status != status:
        raise forbidden("You cannot change your own status.")


async def _keep_an_owner(tx: Transaction, organization_id: uuid.UUID, target: Row) -> None:
    await tx.all(Q.lock_owners, organization_id=organization_id)
    counted = await tx.one(Q.count_live_owners, organization_id=organization_id)
    active_owners = counted["owners"] if counted else 0
    if target["status"] == "ACTIVE" and active_owners <= 1:
        raise Problem("conflict", "The last owner of an organization cannot be removed or demoted.")
