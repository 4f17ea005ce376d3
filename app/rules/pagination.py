"""Opaque keyset cursors: (created_at, id) of the last row, bound to one list and tenant."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.problems import Problem
from db import Query, Transaction

_MAC_BYTES = 16
_LAYOUT = struct.Struct(">16sq16s")  # organization id, created_at in microseconds, row id
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CursorCodec:
    """Signs cursors so a forged, truncated or foreign one is refused instead of trusted."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, kind: str, payload: bytes) -> bytes:
        return hmac.new(self._secret, kind.encode() + b"\0" + payload, hashlib.sha256).digest()[
            :_MAC_BYTES
        ]

    def encode(
        self, kind: str, organization_id: uuid.UUID, created_at: datetime, row_id: uuid.UUID
    ) -> str:
        # Integer arithmetic: a float timestamp would round away microseconds and skip rows.
        micros = (created_at - _EPOCH) // timedelta(microseconds=1)
        payload = _LAYOUT.pack(organization_id.bytes, micros, row_id.bytes)
        return base64.urlsafe_b64encode(payload + self._mac(kind, payload)).rstrip(b"=").decode()

    def decode(
        self, kind: str, organization_id: uuid.UUID, cursor: str
    ) -> tuple[datetime, uuid.UUID]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise invalid_cursor() from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(payload) != _LAYOUT.size or not hmac.compare_digest(mac, self._mac(kind, payload)):
            raise invalid_cursor()
        org, micros, row = _LAYOUT.unpack(payload)
        if org != organization_id.bytes:
            raise invalid_cursor()
        created_at = _EPOCH + timedelta(microseconds=micros)
        return created_at, uuid.UUID(bytes=row)


def invalid_cursor() -> Problem:
    return Problem(
        "invalid-cursor",
        "The cursor is not one this list issued; start again without a cursor.",
        errors=[{"field": "query.cursor", "message": "is not a valid cursor"}],
    )


def page(rows: list[dict[str, Any]], limit: int, next_cursor: Any) -> dict[str, Any]:
    """`rows` was fetched with limit + 1: the extra row only says that another page exists."""
    more = len(rows) > limit
    data = rows[:limit]
    return {"data": data, "next_cursor": next_cursor(data[-1]) if more and data else None}


async def keyset_page(
    tx: Transaction,
    codec: CursorCodec,
    first: Query,
    after: Query,
    *,
    kind: str,
    organization_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    **params: Any,
) -> dict[str, Any]:
    """One page of a list ordered by (created_at, id) descending: `first` starts the list,
    `after` continues below the cursor's row; both take :organization_id, :limit and
    `params` (a list's own filters)."""
    after_key = codec.decode(kind, organization_id, cursor) if cursor is not None else None
    rows = await tx.keyset(
        first,
        after,
        after_key=after_key,
        organization_id=organization_id,
        limit=limit + 1,
        **params,
    )
    return page(
        rows, limit, lambda row: codec.encode(kind, organization_id, row["created_at"], row["id"])
    )
