"""Issuing licenses and changing their terms or status: the one code the CLI and the operator
API both run, each call a function of one system-role transaction that also writes the audit
entry in the license's organization (no actor: the vendor, not a user of the organization)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from app.licensing import keys as license_keys
from app.licensing.tiers import (
    DEFAULT_FEATURES,
    DEFAULTS,
    FLOATING_LEASE_SECONDS,
    MAX_CHURN_LIMIT,
    MAX_CHURN_WINDOW_SECONDS,
    MAX_LEASE_SECONDS,
    MIN_CHURN_LIMIT,
    MIN_CHURN_WINDOW_SECONDS,
    MIN_LEASE_SECONDS,
)
from app.problems import Problem
from app.rules import audit
from db import Jsonb, Row, Transaction, queries

Q = queries("licenses")
# command: (statuses it may start from, status it sets, audit action). REVOKED is final.
TRANSITIONS = {
    "suspend": (("ACTIVE",), "SUSPENDED", "license.suspended"),
    "reinstate": (("SUSPENDED",), "ACTIVE", "license.reinstated"),
    "revoke": (("ACTIVE", "SUSPENDED"), "REVOKED", "license.revoked"),
}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
# The license terms a null sets to "none" (lease) or "the tier's" (churn limits), each with
# its bounds: the same the request bodies of the operator API declare.
BOUNDED_TERMS: Final = {
    "lease_seconds": (MIN_LEASE_SECONDS, MAX_LEASE_SECONDS),
    "activation_limit": (MIN_CHURN_LIMIT, MAX_CHURN_LIMIT),
    "deactivation_limit": (MIN_CHURN_LIMIT, MAX_CHURN_LIMIT),
    "churn_window_seconds": (MIN_CHURN_WINDOW_SECONDS, MAX_CHURN_WINDOW_SECONDS),
}


@dataclass(frozen=True)
class Operator:
    """Who acts for the vendor: the CLI (whoever holds the system role's login) or an
    operator API key, named in every audit entry."""

    via: str
    key_id: uuid.UUID | None = None
    key_name: str | None = None

    def detail(self) -> dict[str, Any]:
        if self.key_id is None:
            return {"via": self.via}
        return {"via": self.via, "operator_key": self.key_name, "operator_key_id": str(self.key_id)}


CLI = Operator("cli")


def not_live_organization(organization: object) -> Problem:
    return Problem("not-found", f"no live organization {organization}")


def not_live_license(license_id: object) -> Problem:
    return Problem("not-found", f"no live license {license_id}")


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        "validation-error",
        f"{field}: {message}",
        errors=[{"field": f"body.{field}", "message": message}],
    )


def _check_bounds(terms: dict[str, int | None]) -> None:
    for field, value in terms.items():
        low, high = BOUNDED_TERMS[field]
        if value is not None and not low <= value <= high:
            raise _invalid(field, f"must be between {low} and {high}")


def _bad_dates() -> Problem:
    return Problem(
        "validation-error",
        "the license must expire after it starts",
        errors=[{"field": "body.expires_at", "message": "must be after starts_at"}],
    )


async def _audit(
    tx: Transaction, who: Operator, row: Row, action: str, detail: dict[str, Any]
) -> None:
    await audit.record(
        tx,
        organization_id=row["organization_id"],
        actor_id=None,
        action=action,
        target_type="license",
        target_id=row["id"],
        detail={**detail, **who.detail()},
    )


async def find_organization(tx: Transaction, organization: str) -> Row:
    """A live organization by id or slug."""
    found = await tx.one(Q.admin_find_organization, organization=organization)
    if found is None:
        raise not_live_organization(organization)
    return found


async def issue(
    tx: Transaction,
    who: Operator,
    *,
    organization_id: uuid.UUID,
    tier: str,
    seats: int | None = None,
    name: str | None = None,
    features: Sequence[str] | None = None,
    starts_at: datetime | None = None,
    expires_at: datetime | None = None,
    machine_bound: bool | None = None,
    lease_seconds: int | None = None,
    activation_limit: int | None = None,
    deactivation_limit: int | None = None,
    churn_window_seconds: int | None = None,
) -> Row:
    """A new license with its key: the only time the key exists outside its holder. What is
    not given is the tier's (tiers.DEFAULTS); a floating license (not machine-bound) gets
    FLOATING_LEASE_SECONDS unless given a lease, a machine-bound one no lease."""
    starts_at = starts_at or datetime.now(UTC)
    if expires_at is not None and expires_at <= starts_at:
        raise _bad_dates()
    defaults = DEFAULTS[tier]
    seats = defaults.seats if seats is None else seats
    machine_bound = defaults.machine_bound if machine_bound is None else machine_bound
    if lease_seconds is None and not machine_bound:
        lease_seconds = FLOATING_LEASE_SECONDS
    churn = {
        "activation_limit": activation_limit,
        "deactivation_limit": deactivation_limit,
        "churn_window_seconds": churn_window_seconds,
    }
    _check_bounds({"lease_seconds": lease_seconds, **churn})
    key = license_keys.new_license_key()
    created = await tx.one(
        Q.admin_issue_license,
        organization_id=organization_id,
        name=name or f"{tier.title()} license",
        key_prefix=license_keys.key_prefix(key),
        key_digest=license_keys.key_digest(key),
        tier=tier,
        seats=seats,
        machine_bound=machine_bound,
        lease_seconds=lease_seconds,
        **churn,
        features=list(defaults.features if features is None else features),
        starts_at=starts_at,
        expires_at=expires_at,
        metadata=Jsonb({}),
    )
    assert created is not None
    issued = await current(tx, created["id"])
    overrides = {field: value for field, value in churn.items() if value is not None}
    await _audit(
        tx,
        who,
        issued,
        "license.issued",
        {
            "tier": tier,
            "seats": seats,
            "lease_seconds": lease_seconds,
            "expires_at": _text(expires_at),
            **overrides,
        },
    )
    return {**issued, "license_key": key}


async def locked(tx: Transaction, license_id: uuid.UUID) -> Row:
    """The live license, locked for this transaction (validations taking a seat wait)."""
    found = await tx.one(Q.admin_lock_license, license_id=license_id)
    if found is None:
        raise not_live_license(license_id)
    return found


async def transition(
    tx: Transaction, who: Operator, license_id: uuid.UUID, command: str, reason: str | None
) -> Row:
    """suspend, reinstate or revoke; a license already past the transition is a conflict."""
    sources, target, action = TRANSITIONS[command]
    found = await locked(tx, license_id)
    if found["status"] not in sources:
        raise Problem(
            "conflict",
            f"cannot {command} a {found['status']} license (only {' or '.join(sources)})",
        )
    await tx.run(Q.admin_set_status, license_id=license_id, status=target)
    await _audit(tx, who, found, action, {"from": found["status"], "to": target, "reason": reason})
    return await current(tx, license_id)


async def change(
    tx: Transaction,
    who: Operator,
    license_id: uuid.UUID,
    *,
    tier: str | None = None,
    seats: int | None = None,
    features: Sequence[str] | None = None,
    expires_at: datetime | _Unset | None = UNSET,
    lease_seconds: int | _Unset | None = UNSET,
    activation_limit: int | _Unset | None = UNSET,
    deactivation_limit: int | _Unset | None = UNSET,
    churn_window_seconds: int | _Unset | None = UNSET,
    name: str | None = None,
    reason: str | None = None,
    action: str = "license.changed",
) -> Row:
    """Changes the terms of a live, unrevoked license. A new tier without `features` brings
    that tier's default features. A null lease means none (refused on a floating license,
    which always has one); a null churn limit means the tier's. Seats below the machines
    holding one (app.holds_seat, under the new lease) are refused (409): the vendor decides
    which machines go, never this function."""
    found = await locked(tx, license_id)
    if found["status"] == "REVOKED":
        raise Problem("conflict", "cannot change a REVOKED license")
    if tier is not None and features is None and tier != found["tier"]:
        features = DEFAULT_FEATURES[tier]
    if isinstance(expires_at, datetime) and expires_at <= found["starts_at"]:
        raise _bad_dates()
    terms = {
        "lease_seconds": lease_seconds,
        "activation_limit": activation_limit,
        "deactivation_limit": deactivation_limit,
        "churn_window_seconds": churn_window_seconds,
    }
    given: dict[str, int | None] = {
        field: value for field, value in terms.items() if not isinstance(value, _Unset)
    }
    _check_bounds(given)
    if "lease_seconds" in given and given["lease_seconds"] is None and not found["machine_bound"]:
        raise _invalid("lease_seconds", "a floating (not machine-bound) license always has a lease")
    wanted = {
        "name": name,
        "tier": tier,
        "seats": seats,
        "features": list(features) if features is not None else None,
    }
    changes = {
        field: {"from": found[field], "to": value}
        for field, value in wanted.items()
        if value is not None and value != found[field]
    }
    changes.update(
        {
            field: {"from": found[field], "to": value}
            for field, value in given.items()
            if value != found[field]
        }
    )
    if not isinstance(expires_at, _Unset) and expires_at != found["expires_at"]:
        changes["expires_at"] = {"from": _text(found["expires_at"]), "to": _text(expires_at)}
    await tx.run(
        Q.admin_set_terms,
        license_id=license_id,
        name=name,
        tier=tier,
        seats=seats,
        features=wanted["features"],
        set_expiry=not isinstance(expires_at, _Unset),
        expires_at=None if isinstance(expires_at, _Unset) else expires_at,
        set_lease="lease_seconds" in given,
        lease_seconds=given.get("lease_seconds"),
        set_activation_limit="activation_limit" in given,
        activation_limit=given.get("activation_limit"),
        set_deactivation_limit="deactivation_limit" in given,
        deactivation_limit=given.get("deactivation_limit"),
        set_churn_window="churn_window_seconds" in given,
        churn_window_seconds=given.get("churn_window_seconds"),
    )
    changed = await current(tx, license_id)
    # Counted after the change, under the new lease (the license stays locked): a raised
    # problem rolls the change back with the transaction.
    if seats is not None and changed["seats_used"] > seats:
        raise Problem(
            "conflict",
            f"{changed['seats_used']} machines hold seats of this license: deactivate"
            f" {changed['seats_used'] - seats} of them before reducing it to {seats} seats",
        )
    if action == "license.extended":
        detail: dict[str, Any] = {
            "from": _text(found["expires_at"]),
            "to": _text(None if isinstance(expires_at, _Unset) else expires_at),
        }
    else:
        detail = {"changes": changes}
    await _audit(tx, who, found, action, {**detail, "reason": reason})
    return changed


async def machines(
    tx: Transaction,
    license_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[Row, list[Row]]:
    """The live license and up to `limit` of its machines after the keyset `after`, newest
    first: the queries of listLicenseMachines, in the license's organization."""
    found = await current(tx, license_id)
    rows = await tx.keyset(
        Q.list_license_machines_first,
        Q.list_license_machines_after,
        after_key=after,
        organization_id=found["organization_id"],
        license_id=license_id,
        limit=limit,
    )
    return found, rows


async def deactivate_machine(
    tx: Transaction,
    who: Operator,
    license_id: uuid.UUID,
    machine_id: uuid.UUID,
    reason: str | None = None,
) -> tuple[Row, Row]:
    """Frees the seat a machine of the license holds, under the lock validation takes, and
    returns (the license, the machine). The vendor's deactivation is not held to the license's
    deactivation limit and does not count against it (audit detail by: operator, which the
    limit's counts leave out); a machine already holding no seat is returned unchanged."""
    found = await locked(tx, license_id)
    keys = {
        "organization_id": found["organization_id"],
        "license_id": license_id,
        "machine_id": machine_id,
    }
    machine = await tx.one(Q.get_license_machine, **keys)
    if machine is None:
        raise Problem("not-found", f"no machine {machine_id} of license {license_id}")
    if not machine["holds_seat"]:
        return found, machine
    await tx.run(Q.deactivate_license_machine, **keys)
    await _audit(
        tx,
        who,
        found,
        "license.machine_deactivated",
        {
            "machine_id": str(machine["id"]),
            "hostname": machine["hostname"],
            "fingerprint": machine["fingerprint_label"],
            "by": "operator",
            "reason": reason,
        },
    )
    released = await tx.one(Q.get_license_machine, **keys)
    assert released is not None
    return found, released


async def current(tx: Transaction, license_id: uuid.UUID) -> Row:
    found = await tx.one(Q.admin_get_license, license_id=license_id)
    if found is None:
        raise not_live_license(license_id)
    return found


def _text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
