"""Access tokens verified: EdDSA JWTs checked against the server's own key set (no database)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import jwt

from app.auth.keys import KeySet
from app.problems import unauthorized

REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "org", "exp", "iat", "jti"]
CLOCK_SKEW_S = 30
# Clients reuse one access token for many calls; remembering the tokens already verified
# (the exact bytes, until they expire) saves an EdDSA check and a JWT parse per call.
# Whether the session is still live is never cached: begin_request reads it every time.
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Principal:
    """Identity proven by the token. Role and status are always read from the database."""

    user_id: uuid.UUID
    organization_id: uuid.UUID
    session_id: uuid.UUID
    enterprise: bool = False  # only sizes the rate limit; never an authorization input

    @cached_property
    def subject(self) -> str:
        """The user id as the token's `sub` writes it. Kept: verified principals are reused
        for a token's life, and the rate limiter and the bearer check each need it per
        request (UUID's str() is Python arithmetic: -1.0% of a getCurrentUser, 1,274,934 ->
        1,261,725 instructions, measured 2026-11-30)."""
        return str(self.user_id)


class TokenVerifier:
    def __init__(self, keys: KeySet, *, issuer: str, audience: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        hit = self._verified.get(token)
        if hit is not None:
            principal, usable_until = hit
            if time.time() < usable_until:
                return principal
            del self._verified[token]
        principal, expires = self._verify(token)
        self._verified[token] = (principal, expires + CLOCK_SKEW_S)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            key = self.keys.token_verifier(kid) if isinstance(kid, str) else None
            if key is None or header.get("alg") != "EdDSA":
                raise unauthorized()
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": REQUIRED_CLAIMS},
            )
            principal = Principal(
                user_id=uuid.UUID(str(claims["sub"])),
                organization_id=uuid.UUID(str(claims["org"])),
                session_id=uuid.UUID(str(claims["sid"])),
                enterprise=claims.get("tier") == "ENTERPRISE",
            )
            return principal, float(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
            raise unauthorized() from None


def bearer_token(authorization: str) -> str | None:
    """The token of a `Bearer` Authorization header value, or None for any other scheme."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
