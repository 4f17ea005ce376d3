"""License certificates: compact JWS (EdDSA) that a client verifies offline with the JWKS."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import jwt

from app.auth.keys import SigningKey

TYPE = "coditect-license+jwt"
OFFLINE_WINDOW = timedelta(days=7)


def fingerprint_digest(fingerprint: str) -> bytes:
    """SHA-256 of the machine fingerprint: all the server stores, and the `fpr` claim (hex)."""
    return hashlib.sha256(fingerprint.encode()).digest()


def issue(
    key: SigningKey,
    *,
    issuer: str,
    license_id: uuid.UUID,
    organization_id: uuid.UUID,
    tier: str,
    features: Sequence[str],
    seats: int,
    fingerprint: bytes | None,
    nonce: str | None,
    now: datetime,
    expires_at: datetime | None,
    window: timedelta = OFFLINE_WINDOW,
    lease: timedelta | None = None,
) -> str:
    """The certificate of a valid license; `exp` is never after the license's expiry, and
    never further than its lease: offline use must not outlast the seat it was issued for."""
    iat = math.floor(now.timestamp())
    exp = iat + int(min(window, lease or window).total_seconds())
    if expires_at is not None:
        exp = min(exp, math.floor(expires_at.timestamp()))
    claims = {
        "iss": issuer,
        "sub": str(license_id),
        "org": str(organization_id),
        "tier": tier,
        "features": list(features),
        "seats": seats,
        "fpr": fingerprint.hex() if fingerprint is not None else None,
        "nonce": nonce,
        "iat": iat,
        "exp": exp,
    }
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": TYPE})
