"""Operations of the `operator` tag: the vendor's API across tenants, by operator key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from app import context, runtime
from app.adapter.bearer import operator_caller
from app.adapter.request import header
from app.auth import operator_keys
from app.auth.operator_keys import OperatorKey
from app.edge import responses
from app.licensing import admin
from app.problems import Problem
from app.rules import idempotency, pagination
from db import Transaction, queries

Q = queries("operator")
IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# Cursors of lists that span tenants are bound to no organization (the nil UUID) and to
# their list's kind.
ACROSS_TENANTS = uuid.UUID(int=0)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class Call:
    """One operator call: its transaction, its key, and what it touched (for the call log)."""

    tx: Transaction
    key: OperatorKey
    organization_id: uuid.UUID | None = None
    target_id: uuid.UUID | None = None
    operator: admin.Operator = field(init=False)

    def __post_init__(self) -> None:
        self.operator = admin.Operator("api", self.key.id, self.key.name)

    def touched(self, row: dict[str, Any]) -> None:
        self.organization_id = row["organization_id"]
        self.target_id = row["id"]


@asynccontextmanager
async def _call(operation: str) -> AsyncIterator[Call]:
    """The system role's transaction (operator work crosses tenants; the app role never
    bypasses RLS), opened by checking the key and closed by logging the call."""
    credential = operator_caller()
    current = runtime.current()
    if not current.database.system_configured:
        raise Problem("service-unavailable", "The operator API is not configured on this server.")
    async with current.database.system() as tx:
        key = await operator_keys.authenticate(tx, credential.key, credential.required_scopes)
        current.limiter.known_operator_keys.remember(
            operator_keys.key_digest(credential.key), "operator"
        )
        call = Call(tx, key)
        yield call
        await tx.run(
            Q.record_operator_call,
            operator_key_id=key.id,
            operation=operation,
            organization_id=call.organization_id,
            target_id=call.target_id,
            request_id=context.request_id.get(),
        )


async def _once(
    call: Call,
    operation: str,
    target: str,
    body: Any,
    run: Callable[[], Awaitable[idempotency.Stored]],
) -> Response:
    """Runs `run` once per Idempotency-Key: a retry of the same request gets the stored result
    (and the header Idempotent-Replayed), a different request with the key a 422."""
    key = header(IDEMPOTENCY_KEY)
    if key is None:
        return _response(await run())
    sealer = runtime.current().sealer
    request = idempotency.fingerprint(operation, target, body)
    stored = await idempotency.claim(call.tx, sealer, call.key.id, key, request)
    if stored is not None:
        return _response(stored, replayed=True)
    result = await run()
    await idempotency.store(call.tx, sealer, call.key.id, key, result)
    return _response(result)


def _response(result: idempotency.Stored, *, replayed: bool = False) -> Response:
    headers = {REPLAYED: "true"} if replayed else {}
    if result.location is not None:
        headers["Location"] = result.location
    return Response(
        result.body, status_code=result.status, headers=headers, media_type=responses.JSON
    )


def _page(rows: list[dict[str, Any]], kind: str, limit: int) -> dict[str, Any]:
    codec = runtime.current().cursors
    return pagination.page(
        rows, limit, lambda row: codec.encode(kind, ACROSS_TENANTS, row["created_at"], row["id"])
    )


def _after(kind: str, cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    return runtime.current().cursors.decode(kind, ACROSS_TENANTS, cursor)


async def list_operator_organizations(
    limit: int = 20,
    cursor: str | None = None,
    slug: str | None = None,
    status: str | None = None,
) -> Response:
    kind = "operator-organizations"
    after = _after(kind, cursor)
    async with _call("listOperatorOrganizations") as call:
        rows = await call.tx.keyset(
            Q.list_operator_organizations_first,
            Q.list_operator_organizations_after,
            after_key=after,
            slug=slug,
            status=status,
            limit=limit + 1,
        )
    return responses.json(_page(rows, kind, limit))


async def list_operator_licenses(
    limit: int = 20,
    cursor: str | None = None,
    organization_id: str | None = None,
    status: str | None = None,
    tier: str | None = None,
    key_prefix: str | None = None,
) -> Response:
    kind = "operator-licenses"
    after = _after(kind, cursor)
    async with _call("listOperatorLicenses") as call:
        rows = await call.tx.keyset(
            Q.list_operator_licenses_first,
            Q.list_operator_licenses_after,
            after_key=after,
            organization_id=organization_id,
            status=status,
            tier=tier,
            key_prefix=key_prefix,
            limit=limit + 1,
        )
    return responses.json(_page(rows, kind, limit))


async def get_operator_license(license_id: str) -> Response:
    async with _call("getOperatorLicense") as call:
        found = await admin.current(call.tx, uuid.UUID(license_id))
        call.touched(found)
    return responses.json(found)


async def issue_operator_license(organization_id: str, body: dict[str, Any]) -> Response:
    async with _call("issueOperatorLicense") as call:

        async def run() -> idempotency.Stored:
            organization = await admin.find_organization(call.tx, organization_id)
            issued = await admin.issue(
                call.tx,
                call.operator,
                organization_id=organization["id"],
                tier=body["tier"],
                seats=body.get("seats"),
                name=body.get("name"),
                features=body.get("features"),
                starts_at=_instant(body.get("starts_at"), "starts_at"),
                expires_at=_instant(body.get("expires_at"), "expires_at"),
                machine_bound=body.get("machine_bound"),
                **{term: body.get(term) for term in admin.BOUNDED_TERMS},
            )
            call.touched(issued)
            location = f"/api/v1/operator/licenses/{issued['id']}"
            return idempotency.Stored(201, location, responses.encode(issued))

        return await _once(call, "issueOperatorLicense", organization_id, body, run)


async def update_operator_license(license_id: str, body: dict[str, Any]) -> Response:
    changes: dict[str, Any] = {
        name: body[name]
        for name in ("name", "tier", "seats", "features", *admin.BOUNDED_TERMS)
        if name in body
    }
    if "expires_at" in body:
        changes["expires_at"] = _instant(body["expires_at"], "expires_at")
    async with _call("updateOperatorLicense") as call:
        updated = await admin.change(
            call.tx, call.operator, uuid.UUID(license_id), reason=body.get("reason"), **changes
        )
        call.touched(updated)
    return responses.json(updated)


async def list_operator_license_machines(
    license_id: str, limit: int = 20, cursor: str | None = None
) -> Response:
    kind = f"operator-machines:{license_id}"
    after = _after(kind, cursor)
    async with _call("listOperatorLicenseMachines") as call:
        found, rows = await admin.machines(
            call.tx, uuid.UUID(license_id), after=after, limit=limit + 1
        )
        call.touched(found)
    return responses.json(_page(rows, kind, limit))


async def deactivate_operator_license_machine(
    license_id: str, machine_id: str, body: dict[str, Any] | None = None
) -> Response:
    body = body or {}
    operation = "deactivateOperatorLicenseMachine"
    async with _call(operation) as call:

        async def run() -> idempotency.Stored:
            found, machine = await admin.deactivate_machine(
                call.tx,
                call.operator,
                uuid.UUID(license_id),
                uuid.UUID(machine_id),
                body.get("reason"),
            )
            call.touched(found)
            return idempotency.Stored(200, None, responses.encode(machine))

        return await _once(call, operation, f"{license_id}/{machine_id}", body, run)


async def _transition(
    operation: str, command: str, license_id: str, body: dict[str, Any] | None
) -> Response:
    body = body or {}
    async with _call(operation) as call:

        async def run() -> idempotency.Stored:
            changed = await admin.transition(
                call.tx, call.operator, uuid.UUID(license_id), command, body.get("reason")
            )
            call.touched(changed)
            return idempotency.Stored(200, None, responses.encode(changed))

        return await _once(call, operation, license_id, body, run)


async def suspend_operator_license(license_id: str, body: dict[str, Any] | None = None) -> Response:
    return await _transition("suspendOperatorLicense", "suspend", license_id, body)


async def reinstate_operator_license(
    license_id: str, body: dict[str, Any] | None = None
) -> Response:
    return await _transition("reinstateOperatorLicense", "reinstate", license_id, body)


async def revoke_operator_license(license_id: str, body: dict[str, Any] | None = None) -> Response:
    return await _transition("revokeOperatorLicense", "revoke", license_id, body)


def _instant(value: str | None, field: str) -> datetime | None:
    """An RFC 3339 time of the body as a UTC-aware datetime. Years outside 1970-9998 are
    refused: RFC 3339 allows year 0 and leap seconds, which Python and PostgreSQL cannot
    both hold."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        in_utc = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc < LATEST:
        raise Problem(
            "validation-error",
            f"body.{field}: must be a time between 1970 and 9998",
            errors=[{"field": f"body.{field}", "message": "must be a time between 1970 and 9998"}],
        )
    return in_utc
