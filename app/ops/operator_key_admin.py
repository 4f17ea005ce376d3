"""`coditect-cloud operator-key create|list|revoke`: the operator API's keys (system role)."""

from __future__ import annotations

import argparse
from typing import Any

from app.auth import operator_keys
from app.ops.commands import CommandError, run_as_system
from db import Transaction, queries

Q = queries("operator")


def register(subparsers: Any) -> None:
    """Add `operator-key` and its subcommands to the CLI's subparsers."""
    command = subparsers.add_parser(
        "operator-key", help="create, list and revoke operator API keys (system role)"
    )
    commands = command.add_subparsers(dest="operator_key_command", required=True)
    create = commands.add_parser("create", help="create a key; prints it once")
    create.add_argument("--name", required=True, help="unique for ever; named in the audit log")
    create.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        required=True,
        choices=operator_keys.SCOPES,
        help="repeat for several (licenses:write includes licenses:read)",
    )
    commands.add_parser("list", help="every key, revoked ones included (never the keys)")
    revoke = commands.add_parser("revoke", help="revoke a key at once (by id or name)")
    revoke.add_argument("key", help="the key's id or name")


def run(args: argparse.Namespace, system_dsn: str | None) -> int:
    """Run a parsed `operator-key` command; prints JSON. Returns the exit status."""
    return run_as_system("operator-key", system_dsn, lambda tx: _run(args, tx))


async def _run(args: argparse.Namespace, tx: Transaction) -> Any:
    if args.operator_key_command == "create":
        return await create(tx, args.name, sorted(set(args.scopes)))
    if args.operator_key_command == "list":
        return await tx.all(Q.list_operator_keys)
    revoked = await tx.one(Q.revoke_operator_key, key=args.key)
    if revoked is None:
        raise CommandError(f"no live operator key {args.key!r}")
    return revoked


async def create(tx: Transaction, name: str, scopes: list[str]) -> dict[str, Any]:
    """A new key, returned with its secret: the only time it is shown."""
    key = operator_keys.new_key()
    created = await tx.one(
        Q.create_operator_key,
        name=name,
        key_prefix=operator_keys.key_prefix(key),
        key_digest=operator_keys.key_digest(key),
        scopes=scopes,
    )
    assert created is not None
    return {**created, "key": key}
