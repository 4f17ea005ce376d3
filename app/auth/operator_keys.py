"""Operator API keys: the vendor's credentials for the operator API, stored only as digests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.auth.tokens import digest, new_secret
from app.problems import Problem, forbidden, unauthorized
from db import Transaction, queries

KEY_PREFIX = "cdt_op_"
VISIBLE_CHARS = 12
READ = "licenses:read"
WRITE = "licenses:write"
SCOPES = (READ, WRITE)
# What each scope grants: writing licenses includes reading them.
GRANTS = {READ: frozenset({READ}), WRITE: frozenset({READ, WRITE})}

Q = queries("operator")


@dataclass(frozen=True)
class OperatorKey:
    """A live operator key, as the database has it at the start of the call."""

    id: uuid.UUID
    name: str
    scopes: tuple[str, ...]


def new_key() -> str:
    return new_secret(KEY_PREFIX)


def key_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def key_digest(key: str) -> bytes:
    return digest(key)


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def invalid_key() -> Problem:
    return unauthorized("The operator key is missing, unknown or revoked.")


def granted(scopes: tuple[str, ...] | list[str]) -> frozenset[str]:
    return frozenset().union(*(GRANTS.get(s, frozenset()) for s in scopes))


async def authenticate(tx: Transaction, key: str, required: tuple[str, ...]) -> OperatorKey:
    """The live key `key` is, if it holds every scope in `required`; 401 or 403 otherwise."""
    row = await tx.one(Q.find_operator_key, key_digest=key_digest(key))
    if row is None:
        raise invalid_key()
    found = OperatorKey(row["id"], row["name"], tuple(row["scopes"]))
    missing = set(required) - granted(found.scopes)
    if missing:
        raise forbidden(f"The operator key lacks the scope {', '.join(sorted(missing))}.")
    return found
