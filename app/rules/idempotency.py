"""Idempotent POSTs of the operator API: the first result stored, sealed, and replayed."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.problems import Problem
from db import Transaction, queries

# How long a key's first result is kept (Stripe's figure): a retry after that runs again.
RETENTION = timedelta(hours=24)
_NONCE_BYTES = 12
Q = queries("operator")


@dataclass(frozen=True)
class Stored:
    status: int
    location: str | None
    body: bytes


class Sealer:
    """AES-256-GCM under keys derived from the server's signing keys: the newest seals, all
    open, so a result sealed before a rotation still replays. A stored result may hold a
    license key, which must be no easier to read from the database than its digest."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("at least one sealing secret")
        self._keys = [AESGCM(s) for s in secrets]

    def seal(self, plain: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._keys[0].encrypt(nonce, plain, context)

    def open(self, sealed: bytes, context: bytes) -> bytes | None:
        nonce, cipher = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        for key in self._keys:
            try:
                return key.decrypt(nonce, cipher, context)
            except InvalidTag:
                continue
        return None


def fingerprint(operation: str, target: str, body: Any) -> bytes:
    """The request a key was first used for: the operation, its target and its body."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{operation}\0{target}\0".encode() + canonical).digest()


def _context(operator_key_id: uuid.UUID, key: str) -> bytes:
    # Binds a sealed body to its row: a body copied to another key's row does not open.
    return operator_key_id.bytes + key.encode()


async def claim(
    tx: Transaction, sealer: Sealer, operator_key_id: uuid.UUID, key: str, request: bytes
) -> Stored | None:
    """None when this request is the key's first (its result is to be stored with `store`
    in the same transaction); the stored result when it is a retry of the same request."""
    claimed = await tx.one(
        Q.claim_idempotency_key,
        operator_key_id=operator_key_id,
        idempotency_key=key,
        fingerprint=request,
        retention_s=RETENTION.total_seconds(),
    )
    if claimed is not None:
        return None
    row = await tx.one(
        Q.stored_idempotent_result, operator_key_id=operator_key_id, idempotency_key=key
    )
    assert row is not None  # the conflicting row is committed and live
    if bytes(row["fingerprint"]) != request:
        raise Problem(
            "idempotency-key-reused",
            "This Idempotency-Key was first used for a different request; use a new key"
            " for a new request.",
            errors=[{"field": "header.Idempotency-Key", "message": "was used for another request"}],
        )
    body = sealer.open(bytes(row["sealed_body"]), _context(operator_key_id, key))
    if body is None:
        raise Problem(
            "conflict",
            "The first result of this Idempotency-Key was sealed with a key this server no"
            " longer has; look the result up with the list operations.",
        )
    return Stored(row["status"], row["location"], body)


async def store(
    tx: Transaction,
    sealer: Sealer,
    operator_key_id: uuid.UUID,
    key: str,
    result: Stored,
) -> None:
    await tx.run(
        Q.store_idempotent_result,
        operator_key_id=operator_key_id,
        idempotency_key=key,
        status=result.status,
        location=result.location,
        sealed_body=sealer.seal(result.body, _context(operator_key_id, key)),
    )
