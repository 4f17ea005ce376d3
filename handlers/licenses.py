"""Operations of the `licenses` tag: the organization's licenses, and validation by key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from app import context, runtime
from app.adapter import request
from app.adapter.bearer import caller
from app.edge import responses
from app.licensing import certificates
from app.licensing import keys as license_keys
from app.problems import Problem, not_found
from app.rules import audit, pagination, roles
from db import Jsonb, Row, queries

Q = queries("licenses")
# A known machine's last_seen_at is written at most this often, not on every validation.
SEEN_GRANULARITY = timedelta(seconds=60)


async def list_licenses(limit: int = 20, cursor: str | None = None) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        body = await pagination.keyset_page(
            tx,
            runtime.current().cursors,
            Q.list_licenses_first,
            Q.list_licenses_after,
            kind="licenses",
            organization_id=principal.organization_id,
            limit=limit,
            cursor=cursor,
        )
    return responses.json(body)


async def get_license(license_id: str) -> Response:
    principal = caller()
    async with runtime.current().database.tenant(principal) as tx:
        found = await tx.one(
            Q.get_license, organization_id=principal.organization_id, license_id=license_id
        )
    if found is None:
        raise not_found("license")
    return responses.json(found)


async def update_license(license_id: str, body: dict[str, Any]) -> Response:
    principal = caller()
    org = principal.organization_id
    metadata = body.get("metadata")
    async with runtime.current().database.tenant(principal) as tx:
        if await tx.one(Q.get_license, organization_id=org, license_id=license_id) is None:
            raise not_found("license")
        roles.require(tx.role, "ADMIN", "change licenses")
        updated = await tx.one(
            Q.update_license,
            organization_id=org,
            license_id=license_id,
            name=body.get("name"),
            metadata=Jsonb(metadata) if metadata is not None else None,
        )
        if updated is None:  # deleted by an operator since the read above
            raise not_found("license")
        await audit.by_caller(
            tx, principal, "license.updated", "license", updated["id"], {"fields": sorted(body)}
        )
    return responses.json(updated)


async def list_license_machines(
    license_id: str, limit: int = 20, cursor: str | None = None
) -> Response:
    principal = caller()
    org = principal.organization_id
    async with runtime.current().database.tenant(principal) as tx:
        if await tx.one(Q.get_license, organization_id=org, license_id=license_id) is None:
            raise not_found("license")
        body = await pagination.keyset_page(
            tx,
            runtime.current().cursors,
            Q.list_license_machines_first,
            Q.list_license_machines_after,
            kind=f"machines:{license_id}",
            organization_id=org,
            limit=limit,
            cursor=cursor,
            license_id=license_id,
        )
    return responses.json(body)


async def deactivate_license_machine(license_id: str, machine_id: str) -> Response:
    principal = caller()
    org = principal.organization_id
    async with runtime.current().database.tenant(principal) as tx:
        machine = await tx.one(
            Q.get_license_machine, organization_id=org, license_id=license_id, machine_id=machine_id
        )
        if machine is None:
            raise not_found("machine")
        roles.require(tx.role, "ADMIN", "deactivate machines")
        # The lock validation takes before changing seats: the limit below stays exact.
        terms = await tx.one(
            Q.lock_license_for_machines, organization_id=org, license_id=license_id
        )
        if terms is None:  # deleted by an operator since the read above
            raise not_found("license")
        machine = await tx.one(
            Q.get_license_machine, organization_id=org, license_id=license_id, machine_id=machine_id
        )
        assert machine is not None
        if not machine["holds_seat"]:
            return responses.json(machine)  # already released: nothing to do, not counted
        recent = await tx.one(
            Q.count_recent_deactivations,
            organization_id=org,
            license_id=license_id,
            churn_window_seconds=terms["churn_window_seconds"],
        )
        assert recent is not None
        if recent["recent"] >= terms["deactivation_limit"]:
            raise Problem(
                "conflict",
                f"This license's limit of {terms['deactivation_limit']} deactivations per"
                f" {_duration(terms['churn_window_seconds'])} is reached; try again later.",
            )
        await tx.run(
            Q.deactivate_license_machine,
            organization_id=org,
            license_id=license_id,
            machine_id=machine_id,
        )
        await audit.by_caller(
            tx,
            principal,
            "license.machine_deactivated",
            "license",
            license_id,
            {
                "machine_id": str(machine["id"]),
                "hostname": machine["hostname"],
                "fingerprint": machine["fingerprint_label"],
                "by": "admin",
            },
        )
        machine = await tx.one(
            Q.get_license_machine, organization_id=org, license_id=license_id, machine_id=machine_id
        )
    return responses.json(machine)


async def deactivate_license(body: dict[str, Any]) -> Response:
    key_digest = license_keys.key_digest(body["license_key"])
    # One statement (pretenant.deactivate_machine), so it runs as its own transaction.
    row = await runtime.current().database.anonymous_statement(
        Q.deactivate_machine_by_key,
        key_digest=key_digest,
        fingerprint_digest=certificates.fingerprint_digest(body["fingerprint"]),
        client_ip=request.client_ip(),
        request_id=context.request_id.get(),
    )
    assert row is not None
    code: str = row["code"]
    if code != "NOT_FOUND":
        runtime.current().limiter.known_keys.remember(key_digest, row["tier"])
    deactivated = code == "DEACTIVATED"
    result = {
        "deactivated": deactivated,
        "code": code,
        "detail": _deactivation_detail(row),
        "license": None if code == "NOT_FOUND" else _summary(row),
        "machine": {
            "id": row["machine_id"],
            "activated_at": row["activated_at"],
            "deactivated_at": row["deactivated_at"],
        }
        if deactivated
        else None,
        "nonce": body.get("nonce"),
        "ts": row["checked_at"],
    }
    return responses.json(result)


async def validate_license(body: dict[str, Any]) -> Response:
    key_digest = license_keys.key_digest(body["license_key"])
    fingerprint = body.get("fingerprint")
    fpr = certificates.fingerprint_digest(fingerprint) if fingerprint is not None else None
    # One statement (pretenant.validate_license), so it runs as its own transaction.
    row = await runtime.current().database.anonymous_statement(
        Q.validate_license,
        key_digest=key_digest,
        fingerprint_digest=fpr,
        hostname=body.get("hostname"),
        seen_granularity=SEEN_GRANULARITY,
        client_ip=request.client_ip(),
        request_id=context.request_id.get(),
    )
    assert row is not None
    code: str = row["code"]
    runtime.current().metrics.license_validated(row)
    if code != "NOT_FOUND":
        # Teaches the edge rate limiter this key's tier, so later calls count against the key.
        runtime.current().limiter.known_keys.remember(key_digest, row["tier"])
    valid = code == "VALID"
    result = {
        "valid": valid,
        "code": code,
        "detail": _detail(row),
        "license": None if code == "NOT_FOUND" else _summary(row),
        "activation": _activation(row),
        "certificate": _certificate(row, fpr, body.get("nonce")) if valid else None,
        "nonce": body.get("nonce"),
        "ts": row["checked_at"],
    }
    return responses.json(result)


def _summary(row: Row) -> dict[str, Any]:
    return {
        "id": row["license_id"],
        "tier": row["tier"],
        "status": row["status"],
        "seats": row["seats"],
        "seats_used": row["seats_used"],
        "features": row["features"],
        "expires_at": row["expires_at"],
        "machine_bound": row["machine_bound"],
        "lease_seconds": row["lease_seconds"],
    }


def _activation(row: Row) -> dict[str, Any] | None:
    if row["activation_id"] is None:
        return None
    return {
        "id": row["activation_id"],
        "activated_at": row["activated_at"],
        "last_seen_at": row["last_seen_at"],
        "new": row["activation_new"],
    }


def _certificate(row: Row, fingerprint: bytes | None, nonce: str | None) -> str:
    current = runtime.current()
    return certificates.issue(
        current.keys.license_key,
        issuer=current.settings.jwt_issuer,
        license_id=row["license_id"],
        organization_id=row["organization_id"],
        tier=row["tier"],
        features=row["features"],
        seats=row["seats"],
        fingerprint=fingerprint,
        nonce=nonce,
        now=row["checked_at"],
        expires_at=row["expires_at"],
        lease=timedelta(seconds=row["lease_seconds"]) if row["lease_seconds"] else None,
    )


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _detail(row: Row) -> str:
    code = row["code"]
    if code == "VALID":
        if row["activation_new"]:
            return "License is valid; this machine now holds a seat."
        return "License is valid."
    if code == "NOT_FOUND":
        return "No license matches this key."
    if code == "REVOKED":
        return "The license was revoked."
    if code == "SUSPENDED":
        if row["status"] != "SUSPENDED" and row["organization_suspended"]:
            return "The organization holding this license is suspended."
        return "The license is suspended."
    if code == "NOT_YET_VALID":
        return f"The license starts at {_instant(row['starts_at'])}."
    if code == "EXPIRED":
        return f"The license expired at {_instant(row['expires_at'])}."
    if code == "FINGERPRINT_REQUIRED":
        return "Every seat is held by a machine; send this machine's fingerprint."
    if code == "ACTIVATION_LIMIT_EXCEEDED":
        return (
            f"This license's limit of {row['activation_limit']} new machine activations per"
            f" {_duration(row['churn_window_seconds'])} is reached; try again later."
        )
    return f"All {row['seats']} seats are in use; deactivate a machine or add seats."


def _deactivation_detail(row: Row) -> str:
    code = row["code"]
    if code == "DEACTIVATED":
        return "This machine no longer holds a seat."
    if code == "NOT_FOUND":
        return "No license matches this key."
    if code == "NOT_ACTIVATED":
        return "This machine holds no seat of this license."
    return (
        f"This license's limit of {row['deactivation_limit']} deactivations per"
        f" {_duration(row['churn_window_seconds'])} is reached; try again later."
    )


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"
