"""Operator commands: `coditect-cloud license issue|suspend|reinstate|revoke|extend`.

They run as coditect_system, each in one transaction, through app/licensing/admin.py: the
code the operator API runs too (the tenant API never issues or changes licenses).
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.licensing import admin
from app.licensing.admin import TRANSITIONS
from app.licensing.tiers import FLOATING_LEASE_SECONDS, TIERS
from app.ops.commands import CommandError, run_as_system
from db import Row, Transaction


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


def _bounded(field: str) -> Any:
    """An argparse type: a whole number within the bounds the API holds the term to."""
    low, high = admin.BOUNDED_TERMS[field]

    def parse(text: str) -> int:
        value = _positive(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


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
        type=_bounded("lease_seconds"),
        help="a machine that has not validated within this holds no seat"
        f" (default: none, or {FLOATING_LEASE_SECONDS} for a floating license)",
    )
    for term, what in (
        ("activation-limit", "new machine activations per churn window"),
        ("deactivation-limit", "machine deactivations per churn window"),
        ("churn-window-seconds", "the rolling window of the churn limits"),
    ):
        issue.add_argument(
            f"--{term}",
            type=_bounded(term.replace("-", "_")),
            help=f"{what} (default: the tier's)",
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
    return run_as_system("license", system_dsn, lambda tx: _run(args, tx))


async def _run(args: argparse.Namespace, tx: Transaction) -> Row:
    if args.license_command == "issue":
        return await issue(tx, args)
    if args.license_command == "extend":
        return await extend(tx, args)
    return await admin.transition(tx, admin.CLI, args.license_id, args.license_command, args.reason)


async def issue(tx: Transaction, args: argparse.Namespace) -> Row:
    organization = await admin.find_organization(tx, args.organization)
    starts_at = args.starts_at or datetime.now(UTC)
    expires_at = args.expires_at
    if args.days is not None:
        expires_at = starts_at + timedelta(days=args.days)
    return await admin.issue(
        tx,
        admin.CLI,
        organization_id=organization["id"],
        tier=args.tier,
        seats=args.seats,
        name=args.name,
        features=args.features,
        starts_at=starts_at,
        expires_at=expires_at,
        machine_bound=args.machine_bound,
        lease_seconds=args.lease_seconds,
        activation_limit=args.activation_limit,
        deactivation_limit=args.deactivation_limit,
        churn_window_seconds=args.churn_window_seconds,
    )


async def extend(tx: Transaction, args: argparse.Namespace) -> Row:
    current = await admin.locked(tx, args.license_id)
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
    return await admin.change(
        tx,
        admin.CLI,
        args.license_id,
        expires_at=expires_at,
        reason=args.reason,
        action="license.extended",
    )
