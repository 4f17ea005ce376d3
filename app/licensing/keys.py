"""License keys: high-entropy secrets with a recognisable prefix, stored only as digests."""

from __future__ import annotations

from app.auth.tokens import digest, new_secret

KEY_PREFIX = "cdt_live_"
VISIBLE_CHARS = 12


def new_license_key() -> str:
    return new_secret(KEY_PREFIX)


def key_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def key_digest(key: str) -> bytes:
    return digest(key)
