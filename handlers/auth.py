"""Operations of the `auth` tag: signup, login, refresh, logout, me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg.errors
from starlette.responses import Response

from app import context, runtime
from app.adapter import request
from app.adapter.bearer import caller
from app.auth import tokens
from app.edge import responses
from app.licensing import keys as license_keys
from app.mail import messages
from app.problems import Problem, not_found, unauthorized
from app.rules import audit, pagination, slugs
from db import queries

Q = queries("auth")
ORGS = queries("organizations")
LICENSES = queries("licenses")
USERS = queries("users")
REFRESH_GRACE_SECONDS = 10
RESET_TOKEN_MINUTES = 60
# Per email: at most this many reset messages in the window, whoever asks (the anonymous
# rate limit counts per client address).
RESETS_PER_EMAIL = 3
RESET_WINDOW_SECONDS = 3600
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


async def logout(scope: str = "current") -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        if scope == "all":
            await tx.run(
                Q.end_all_sessions,
                organization_id=principal.organization_id,
                user_id=principal.user_id,
                reason="logout_all",
            )
        else:
            await tx.run(
                Q.end_session,
                organization_id=principal.organization_id,
                session_id=principal.session_id,
            )
    return responses.empty()


async def list_sessions(limit: int = 20, cursor: str | None = None) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        body = await pagination.keyset_page(
            tx,
            runtime.current().cursors,
            Q.list_sessions_first,
            Q.list_sessions_after,
            # Bound to the user too: a cursor is only good for the list of whoever got it.
            kind=f"sessions:{principal.user_id}",
            organization_id=principal.organization_id,
            limit=limit,
            cursor=cursor,
            user_id=principal.user_id,
            session_id=principal.session_id,
        )
    return responses.json(body)


async def revoke_session(session_id: str) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        ended = await tx.run(
            Q.revoke_session,
            organization_id=principal.organization_id,
            user_id=principal.user_id,
            session_id=session_id,
        )
    if ended == 0:
        raise not_found("session")
    return responses.empty()


async def change_password(body: dict[str, Any]) -> Response:
    principal = caller()
    org, user = principal.organization_id, principal.user_id
    passwords = runtime.current().passwords
    async with runtime.current().database.tenant(principal) as tx:
        found = await tx.one(Q.get_password_hash, organization_id=org, user_id=user)
    stored = found["password_hash"] if found else None
    # Verified outside the transaction: argon2 takes tens of milliseconds, held by no lock.
    if not await passwords.verify(stored, body["current_password"]) or stored is None:
        raise Problem(
            "validation-error",
            "The current password is not correct.",
            errors=[{"field": "body.current_password", "message": "is not correct"}],
        )
    new_hash = await passwords.hash(body["new_password"])
    async with runtime.current().database.tenant(principal) as tx:
        changed = await tx.run(
            Q.change_password_hash,
            organization_id=org,
            user_id=user,
            old_hash=stored,
            new_hash=new_hash,
        )
        if changed == 0:
            raise Problem("conflict", "The password was changed meanwhile; try again.")
        ended = await tx.run(
            Q.end_other_sessions,
            organization_id=org,
            user_id=user,
            session_id=principal.session_id,
            reason="password_changed",
        )
        await audit.by_caller(
            tx, principal, "user.password_changed", "user", user, {"sessions_ended": ended}
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


def _bad_token() -> Problem:
    # One body for unknown, used, revoked and expired tokens.
    return unauthorized("The token is not valid: it is unknown, used, revoked or expired.")


async def request_password_reset(body: dict[str, Any]) -> Response:
    # The same work and the same answer whether or not the email belongs to anyone: a token
    # is made, a message written and the one statement run every time; only the database
    # decides, silently, whether to store and queue them.
    token = tokens.new_secret()
    settings = runtime.current().settings
    message = messages.password_reset(settings.public_base_url, token, RESET_TOKEN_MINUTES)
    await runtime.current().database.anonymous_statement(
        Q.request_password_reset,
        email=body["email"],
        token_digest=tokens.digest(token),
        expires_at=datetime.now(UTC) + timedelta(minutes=RESET_TOKEN_MINUTES),
        subject=message.subject,
        body=message.body,
        max_recent=RESETS_PER_EMAIL,
        window_seconds=RESET_WINDOW_SECONDS,
    )
    return responses.empty(202)


async def reset_password(body: dict[str, Any]) -> Response:
    new_hash = await runtime.current().passwords.hash(body["new_password"])
    reset = await runtime.current().database.anonymous_statement(
        Q.reset_password,
        token_digest=tokens.digest(body["token"]),
        new_hash=new_hash,
        request_id=context.request_id.get(),
    )
    if reset is None:
        raise _bad_token()
    return responses.empty()


async def accept_invitation(body: dict[str, Any]) -> Response:
    password_hash = await runtime.current().passwords.hash(body["password"])
    refresh = tokens.new_secret()
    async with runtime.current().database.anonymous() as tx:
        accepted = await tx.one(
            Q.accept_invitation,
            token_digest=tokens.digest(body["token"]),
            password_hash=password_hash,
            refresh_digest=tokens.digest(refresh),
            expires_at=_session_expiry(),
            user_agent=request.user_agent(),
            ip=request.client_ip(),
            request_id=context.request_id.get(),
        )
        tier = (
            await tx.one(Q.organization_tier, organization_id=accepted["organization_id"])
            if accepted is not None
            else None
        )
    if accepted is None:
        raise _bad_token()
    pair = runtime.current().tokens.pair(
        user_id=accepted["user_id"],
        organization_id=accepted["organization_id"],
        session_id=accepted["session_id"],
        refresh_token=refresh,
        tier=tier["tier"] if tier else None,
    )
    return responses.json(pair.body())
