"""Bearer tokens: EdDSA JWTs verified against the server's own key set (no database)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from connexion.context import context
from connexion.security import BearerSecurityHandler

from app.keys import KeySet
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


_verifier: TokenVerifier | None = None


def configure(verifier: TokenVerifier) -> None:
    global _verifier
    _verifier = verifier


def verify_bearer(token: str, request: Any = None) -> dict[str, Any]:
    if _verifier is None:
        raise RuntimeError("security.configure() has not run")
    # The edge rate limiter already verified this very token for this request: reuse it
    # rather than checking the EdDSA signature a second time.
    state = getattr(request, "scope", {}).get("state") or {}
    verified = state.get(VERIFIED_STATE_KEY)
    if verified is not None and verified[0] == token:
        principal = verified[1]
    else:
        principal = _verifier.verify(token)
    return {"sub": str(principal.user_id), "principal": principal}


VERIFIED_STATE_KEY = "verified_bearer"


def identify(authorization: str) -> tuple[str, Principal] | None:
    """The verified principal of an Authorization header, for the rate limiter's bucket."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or _verifier is None:
        return None
    token = token.strip()
    try:
        return token, _verifier.verify(token)
    except Exception:
        return None


class BearerHandler(BearerSecurityHandler):
    """Connexion's bearer handler, wired to verify_bearer without naming it in the spec."""

    @staticmethod
    @cache
    def _accepts_kwarg(func: Any, keyword: str) -> bool:
        # Stock Connexion inspects the check function's signature twice on every request.
        return BearerSecurityHandler._accepts_kwarg(func, keyword)

    def _resolve_func(self, security_scheme: dict[str, Any]) -> Any:
        return verify_bearer


SECURITY_MAP = {"bearer": BearerHandler}


def caller() -> Principal:
    """The principal of the request being handled (set by the bearer check)."""
    info = context.get("token_info") or {}
    principal = info.get("principal")
    if not isinstance(principal, Principal):
        raise unauthorized()
    return principal
