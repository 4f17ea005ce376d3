"""Operator commands: `coditect-cloud license issue|suspend|reinstate|revoke|extend`.

The only way to issue a license or to change its tier, seats, status or dates: the tenant
API never can. They run as coditect_system, each in one transaction that also writes the
audit entry (no actor: an operator, not a user of the organization). Each command is an
async function of a transaction, so a server can run the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import db
from app.licensing import keys as license_keys
from app.licensing.tiers import (
    DEFAULTS,
    FLOATING_LEASE_SECONDS,
    MAX_LEASE_SECONDS,
    MIN_LEASE_SECONDS,
    TIERS,
)
from app.rules import audit
from db import Jsonb, Row, Transaction, queries

Q = queries("licenses")
# command: (statuses it may start from, status it sets, audit action). REVOKED is final.
TRANSITIONS = {
    "suspend": (("ACTIVE",), "SUSPENDED", "license.suspended"),
    "reinstate": (("SUSPENDED",), "ACTIVE", "license.reinstated"),
    "revoke": (("ACTIVE", "SUSPENDED"), "REVOKED", "license.revoked"),
}


class CommandError(Exception):
    """The command cannot be done as asked; the message says why."""


def _instant(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 instant; a bare date or a time without offset means UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _lease(text: str) -> int:
    value = _positive(text)
    if not MIN_LEASE_SECONDS <= value <= MAX_LEASE_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_LEASE_SECONDS} and {MAX_LEASE_SECONDS} seconds"
        )
    return value


def register(subparsers: Any) -> None:
    """Add `license` and its subcommands to the CLI's subparsers."""
    license_cmd = subparsers.add_parser(
        "license", help="issue licenses and change their status or dates (system role)"
    )
    commands = license_cmd.add_subparsers(dest="license_command", required=True)

    issue = commands.add_parser("issue", help="issue a license; prints it with its key, once")
    issue.add_argument("--organization", required=True, help="organization id or slug")
    issue.add_argument("--tier", required=True, choices=TIERS, type=str.upper)
    issue.add_argument("--seats", type=_positive, help="default: the tier's")
    issue.add_argument("--name", help="display name (default: '<Tier> license')")
    issue.add_argument(
        "--feature",
        action="append",
        dest="features",
        metavar="FEATURE",
        help="a feature flag (repeat; default: the tier's standard features)",
    )
    issue.add_argument("--starts-at", type=_instant, help="ISO 8601 (default: now)")
    ends = issue.add_mutually_exclusive_group()
    ends.add_argument("--expires-at", type=_instant, help="ISO 8601 (default: perpetual)")
    ends.add_argument("--days", type=_positive, help="expires this many days after it starts")
    issue.add_argument(
        "--machine-bound",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a seat is held until deactivated (default: the tier's); --no-machine-bound:"
        " floating, a seat is held only within the lease",
    )
    issue.add_argument(
        "--lease-seconds",
        type=_lease,
        help="a machine that has not validated within this holds no seat"
        f" (default: none, or {FLOATING_LEASE_SECONDS} for a floating license)",
    )

    for name, (sources, target, _action) in TRANSITIONS.items():
        cmd = commands.add_parser(
            name, help=f"set the status to {target} (from {' or '.join(sources)})"
        )
        cmd.add_argument("license_id", type=uuid.UUID)
        cmd.add_argument("--reason", help="recorded in the audit log")

    extend = commands.add_parser("extend", help="change when a license expires")
    extend.add_argument("license_id", type=uuid.UUID)
    until = extend.add_mutually_exclusive_group(required=True)
    until.add_argument("--expires-at", type=_instant, help="the new expiry, ISO 8601")
    until.add_argument(
        "--days", type=_positive, help="add days to the current expiry (or to now, if past)"
    )
    until.add_argument("--perpetual", action="store_true", help="never expires")
    extend.add_argument("--reason", help="recorded in the audit log")


def run(args: argparse.Namespace, system_dsn: str | None) -> int:
    """Run a parsed `license` command; prints the license as JSON. Returns the exit status."""
    if not system_dsn:
        print("coditect-cloud: license commands need DATABASE_SYSTEM_URL", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_run(args, system_dsn))
    except CommandError as e:
        print(f"coditect-cloud: {e}", file=sys.stderr)
        return 1
    except db.DatabaseError as e:  # unreachable, or a value the schema refuses: nothing changed
        print(f"coditect-cloud: database error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, default=_json_value, indent=2))
    return 0


async def _run(args: argparse.Namespace, system_dsn: str) -> Row:
    async with db.system_transaction(system_dsn) as tx:
        if args.license_command == "issue":
            return await issue(tx, args)
        if args.license_command == "extend":
            return await extend(tx, args)
        return await transition(tx, args)


async def _audit(tx: Transaction, row: Row, action: str, detail: dict[str, Any]) -> None:
    await audit.record(
        tx,
        organization_id=row["organization_id"],
        actor_id=None,
        action=action,
        target_type="license",
        target_id=row["id"],
        detail=detail,
    )


async def issue(tx: Transaction, args: argparse.Namespace) -> Row:
    organization = await tx.one(Q.admin_find_organization, organization=args.organization)
    if organization is None:
        raise CommandError(f"no live organization {args.organization!r}")
    starts_at = args.starts_at or datetime.now(UTC)
    expires_at = args.expires_at
    if args.days is not None:
        expires_at = starts_at + timedelta(days=args.days)
    if expires_at is not None and expires_at <= starts_at:
        raise CommandError("the license must expire after it starts")
    key = license_keys.new_license_key()
    defaults = DEFAULTS[args.tier]
    features: Sequence[str] = args.features or defaults.features
    seats = args.seats or defaults.seats
    machine_bound = defaults.machine_bound if args.machine_bound is None else args.machine_bound
    lease_seconds = args.lease_seconds
    if lease_seconds is None and not machine_bound:
        lease_seconds = FLOATING_LEASE_SECONDS
    created = await tx.one(
        Q.admin_issue_license,
        organization_id=organization["id"],
        name=args.name or f"{args.tier.title()} license",
        key_prefix=license_keys.key_prefix(key),
        key_digest=license_keys.key_digest(key),
        tier=args.tier,
        seats=seats,
        machine_bound=machine_bound,
        lease_seconds=lease_seconds,
        features=list(features),
        starts_at=starts_at,
        expires_at=expires_at,
        metadata=Jsonb({}),
    )
    assert created is not None
    issued = await _current(tx, created["id"])
    await _audit(
        tx,
        issued,
        "license.issued",
        {
            "tier": args.tier,
            "seats": seats,
            "lease_seconds": lease_seconds,
            "expires_at": _text(expires_at),
        },
    )
    return {**issued, "license_key": key}


async def _locked(tx: Transaction, license_id: uuid.UUID) -> Row:
    found = await tx.one(Q.admin_lock_license, license_id=license_id)
    if found is None:
        raise CommandError(f"no live license {license_id}")
    return found


async def transition(tx: Transaction, args: argparse.Namespace) -> Row:
    sources, target, action = TRANSITIONS[args.license_command]
    current = await _locked(tx, args.license_id)
    if current["status"] not in sources:
        raise CommandError(
            f"cannot {args.license_command} a {current['status']} license"
            f" (only {' or '.join(sources)})"
        )
    await tx.run(Q.admin_set_status, license_id=args.license_id, status=target)
    await _audit(
        tx, current, action, {"from": current["status"], "to": target, "reason": args.reason}
    )
    return await _current(tx, args.license_id)


async def extend(tx: Transaction, args: argparse.Namespace) -> Row:
    current = await _locked(tx, args.license_id)
    if current["status"] == "REVOKED":
        raise CommandError("cannot extend a REVOKED license")
    expires_at: datetime | None
    if args.perpetual:
        expires_at = None
    elif args.expires_at is not None:
        expires_at = args.expires_at
    else:
        if current["expires_at"] is None:
            raise CommandError("the license is perpetual; use --expires-at to set an expiry")
        expires_at = max(current["expires_at"], datetime.now(UTC)) + timedelta(days=args.days)
    if expires_at is not None and expires_at <= current["starts_at"]:
        raise CommandError("the license must expire after it starts")
    await tx.run(Q.admin_set_expiry, license_id=args.license_id, expires_at=expires_at)
    await _audit(
        tx,
        current,
        "license.extended",
        {"from": _text(current["expires_at"]), "to": _text(expires_at), "reason": args.reason},
    )
    return await _current(tx, args.license_id)


async def _current(tx: Transaction, license_id: uuid.UUID) -> Row:
    found = await tx.one(Q.admin_get_license, license_id=license_id)
    assert found is not None
    return found


def _text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
