"""Operations of the `auth` tag: signup, login, refresh, logout, me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg.errors
from starlette.responses import Response

from app import runtime
from app.adapter import request
from app.adapter.bearer import caller
from app.auth import tokens
from app.edge import responses
from app.licensing import keys as license_keys
from app.problems import Problem, not_found, unauthorized
from app.rules import slugs
from db import queries

Q = queries("auth")
ORGS = queries("organizations")
LICENSES = queries("licenses")
USERS = queries("users")
REFRESH_GRACE_SECONDS = 10
EMAIL_TAKEN = "users_email_live_key"
SLUG_TAKEN = "organizations_slug_live_key"


def _bad_login() -> Problem:
    # One body for unknown email, wrong password, suspended user and deleted organization.
    return unauthorized("The email or password is not correct.")


def _session_expiry() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=runtime.current().settings.refresh_token_ttl_s)


async def signup(body: dict[str, Any]) -> Response:
    password_hash = await runtime.current().passwords.hash(body["password"])
    slug = slugs.slugify(body["organization_name"])
    for _attempt in range(3):
        try:
            return await _signup(body, password_hash, slug)
        except psycopg.errors.UniqueViolation as e:
            if e.diag.constraint_name == EMAIL_TAKEN:
                raise Problem("conflict", "An account with this email already exists.") from None
            if e.diag.constraint_name != SLUG_TAKEN:
                raise
            slug = slugs.with_suffix(slugs.slugify(body["organization_name"]))
    raise Problem("conflict", "Could not choose a unique organization slug; try another name.")


async def _signup(body: dict[str, Any], password_hash: str, slug: str) -> Response:
    license_key = license_keys.new_license_key()
    refresh = tokens.new_secret()
    async with runtime.current().database.anonymous() as tx:
        created = await tx.one(
            Q.signup,
            email=body["email"],
            password_hash=password_hash,
            full_name=body["full_name"],
            organization_name=body["organization_name"],
            slug=slug,
            license_key_digest=license_keys.key_digest(license_key),
            license_key_prefix=license_keys.key_prefix(license_key),
            refresh_digest=tokens.digest(refresh),
            session_expires_at=_session_expiry(),
            user_agent=request.user_agent(),
            ip=request.client_ip(),
        )
        assert created is not None
        org_id, user_id = created["organization_id"], created["user_id"]
        await tx.one(Q.set_tenant, organization_id=org_id, user_id=user_id)
        user = await tx.one(USERS.get_user, organization_id=org_id, user_id=user_id)
        organization = await tx.one(ORGS.get_organization, organization_id=org_id)
        license_row = await tx.one(
            LICENSES.get_license, organization_id=org_id, license_id=created["license_id"]
        )
    pair = runtime.current().tokens.pair(
        user_id=user_id,
        organization_id=org_id,
        session_id=created["session_id"],
        refresh_token=refresh,
        tier="FREE",
    )
    reply = {
        "user": user,
        "organization": organization,
        "license": {**(license_row or {}), "license_key": license_key},
        "tokens": pair.body(),
    }
    return responses.json(reply, 201, {"Location": f"/api/v1/organizations/{org_id}"})


async def login(body: dict[str, Any]) -> Response:
    found = await runtime.current().database.anonymous_statement(Q.find_login, email=body["email"])
    stored = found["password_hash"] if found else None
    if not await runtime.current().passwords.verify(stored, body["password"]) or found is None:
        raise _bad_login()
    if found["user_status"] != "ACTIVE" or not found["organization_live"]:
        raise _bad_login()
    new_hash = (
        await runtime.current().passwords.hash(body["password"])
        if runtime.current().passwords.needs_rehash(stored or "")
        else None
    )
    refresh = tokens.new_secret()
    async with runtime.current().database.anonymous() as tx:
        if new_hash is not None:
            await tx.one(
                Q.set_password_hash, user_id=found["user_id"], old_hash=stored, new_hash=new_hash
            )
        opened = await tx.one(
            Q.open_session,
            user_id=found["user_id"],
            refresh_digest=tokens.digest(refresh),
            expires_at=_session_expiry(),
            user_agent=request.user_agent(),
            ip=request.client_ip(),
        )
        tier = await tx.one(Q.organization_tier, organization_id=found["organization_id"])
    if opened is None or opened["session_id"] is None:
        raise _bad_login()
    pair = runtime.current().tokens.pair(
        user_id=found["user_id"],
        organization_id=found["organization_id"],
        session_id=opened["session_id"],
        refresh_token=refresh,
        tier=tier["tier"] if tier else None,
    )
    return responses.json(pair.body())


async def refresh_tokens(body: dict[str, Any]) -> Response:
    refresh = tokens.new_secret()
    async with runtime.current().database.anonymous() as tx:
        rotated = await tx.one(
            Q.rotate_refresh,
            old_digest=tokens.digest(body["refresh_token"]),
            new_digest=tokens.digest(refresh),
            grace_seconds=REFRESH_GRACE_SECONDS,
        )
        live = rotated is not None and rotated["outcome"] in ("rotated", "grace")
        tier = (
            await tx.one(Q.organization_tier, organization_id=rotated["organization_id"])
            if live and rotated is not None
            else None
        )
    runtime.current().metrics.refresh_rotated(rotated)
    # Raised after the commit: a reuse revokes the session even though the caller gets a 401.
    if not live or rotated is None:
        raise unauthorized("The refresh token is not valid.")
    pair = runtime.current().tokens.pair(
        user_id=rotated["user_id"],
        organization_id=rotated["organization_id"],
        session_id=rotated["session_id"],
        refresh_token=refresh,
        tier=tier["tier"] if tier else None,
    )
    return responses.json(pair.body())


async def logout() -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        await tx.run(
            Q.end_session,
            organization_id=principal.organization_id,
            session_id=principal.session_id,
        )
    return responses.empty()


async def get_current_user() -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        user = await tx.one(
            USERS.get_user, organization_id=principal.organization_id, user_id=principal.user_id
        )
        organization = await tx.one(
            ORGS.get_organization, organization_id=principal.organization_id
        )
    if user is None or organization is None:
        raise not_found("user")
    return responses.json({"user": user, "organization": organization})
