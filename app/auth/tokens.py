"""Issuing credentials: EdDSA access tokens and opaque refresh tokens kept only as digests."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from app import context
from app.auth.keys import SigningKey


def new_secret(prefix: str = "") -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def access_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    session_id: uuid.UUID,
    ttl_s: int,
    tier: str | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "org": str(organization_id),
        "sid": str(session_id),
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if tier:
        claims["tier"] = tier
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})


class TokenIssuer:
    """Signs the access tokens of this server's sessions: current key, issuer, audience, TTL."""

    def __init__(self, key: SigningKey, *, issuer: str, audience: str, ttl_s: int) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    def pair(
        self,
        *,
        user_id: uuid.UUID,
        organization_id: uuid.UUID,
        session_id: uuid.UUID,
        refresh_token: str,
        tier: str | None = None,
    ) -> TokenPair:
        """An access token for a session whose refresh token the caller just stored."""
        # Signup, login and refresh learn the caller's organization only here.
        context.note_organization(organization_id)
        token = access_token(
            self.key,
            issuer=self.issuer,
            audience=self.audience,
            user_id=user_id,
            organization_id=organization_id,
            session_id=session_id,
            ttl_s=self.ttl_s,
            tier=tier,
        )
        return TokenPair(token, refresh_token, self.ttl_s)
