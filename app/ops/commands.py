"""Operator commands' common frame: one system-role transaction, JSON out, refusals as one line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import db
from app.problems import Problem
from db import Transaction


class CommandError(Exception):
    """The command cannot be done as asked; the message says why."""


def run_as_system(
    name: str, system_dsn: str | None, work: Callable[[Transaction], Awaitable[Any]]
) -> int:
    """Run `work` in one transaction as coditect_system and print its result as JSON; a
    refusal or a database error is one line on stderr and nothing changed. The exit status."""
    if not system_dsn:
        print(f"coditect-cloud: {name} commands need DATABASE_SYSTEM_URL", file=sys.stderr)
        return 2

    async def in_transaction() -> Any:
        async with db.system_transaction(system_dsn) as tx:
            return await work(tx)

    try:
        result = asyncio.run(in_transaction())
    except CommandError as e:
        print(f"coditect-cloud: {e}", file=sys.stderr)
        return 1
    except Problem as e:  # the same refusals the operator API answers with
        print(f"coditect-cloud: {e.detail or e.title}", file=sys.stderr)
        return 1
    except db.DatabaseError as e:  # unreachable, or a value the schema refuses: nothing changed
        print(f"coditect-cloud: database error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, default=_json_value, indent=2))
    return 0


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
