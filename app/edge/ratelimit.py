"""Tiered rate limits at the edge (the `limits` library), before any database work."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

import orjson
from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.storage import storage_from_string
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import context
from app.auth import operator_keys
from app.auth.verifier import Principal, TokenVerifier, bearer_token
from app.config import Settings
from app.edge import responses
from app.edge.headers import security_headers
from app.licensing import keys as license_keys
from app.problems import Problem

log = logging.getLogger(__name__)

MAX_VALIDATE_BODY = 16_384
STATE_KEY = "rate_limit_headers"
# Where the limiter leaves (token, principal) once it has verified a bearer token, so the
# bearer check behind it does not verify the same signature again.
VERIFIED_STATE_KEY = "verified_bearer"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }


class RateLimiter:
    """Counts hits per bucket; fails open (and says so) when the shared store is down."""

    def __init__(self, settings: Settings) -> None:
        url = settings.rate_limit_storage_url
        self.storage_url = url
        scheme = url if url.startswith("async+") else f"async+{url}"
        # redis-py's asyncio client: one Redis library for the whole product.
        options = {"implementation": "redispy"} if "redis" in scheme.split("://")[0] else {}
        # The async+ scheme always yields an asyncio storage.
        self.storage = cast(AsyncStorage, storage_from_string(scheme, **options))
        self.anonymous = parse(settings.rate_limit_anonymous)
        self.standard = parse(settings.rate_limit_standard)
        self.enterprise = parse(settings.rate_limit_enterprise)
        self.operator = parse(settings.rate_limit_operator)
        self.license_tiers = {
            "FREE": self.anonymous,
            "PRO": self.standard,
            "ENTERPRISE": self.enterprise,
        }
        self.store_ok = True
        self.store_detail = "ok"
        self.known_keys = KnownKeys()
        # Operator keys this process has authenticated: each has its own budget. An unknown
        # one (perhaps a guess) counts against the client address, like an anonymous call.
        self.known_operator_keys = KnownKeys()

    async def check(self, item: RateLimitItem, *keys: str, consume: bool = True) -> Verdict:
        # limits' fixed window, with the count the increment returns instead of reading it
        # back: two store calls (two Redis round trips) per request rather than three.
        key = item.key_for(*keys)
        try:
            if consume:
                count = await self.storage.incr(key, item.get_expiry(), amount=1)
            else:
                count = await self.storage.get(key)
            reset_time = await self.storage.get_expiry(key)
            self.store_ok, self.store_detail = True, "ok"
        except Exception as e:  # a store outage must not take the API down with it
            if self.store_ok:
                log.error("rate-limit store %s unavailable, failing open: %s", self.storage_url, e)
            self.store_ok, self.store_detail = False, type(e).__name__
            return Verdict(True, item.amount, item.amount, item.get_expiry())
        reset_after = max(0, math.ceil(reset_time - time.time()))
        allowed = count <= item.amount or not consume
        return Verdict(allowed, item.amount, max(0, item.amount - count), reset_after)

    async def healthy(self) -> bool:
        try:
            ok = bool(await self.storage.check())
        except Exception:
            ok = False
        self.store_ok, self.store_detail = ok, "ok" if ok else "unreachable"
        return ok


class KnownKeys:
    """License-key digest -> tier, learnt from validations, so the limiter can size a key's
    budget without touching the database. Bounded, and forgotten after a while so a tier
    change is picked up; an unknown key is limited per client address instead."""

    def __init__(self, capacity: int = 100_000, ttl_s: float = 300.0) -> None:
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._capacity = capacity
        self._ttl_s = ttl_s

    def remember(self, digest: bytes, tier: str) -> None:
        self._entries[digest] = (tier, time.monotonic() + self._ttl_s)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def tier(self, digest: bytes) -> str | None:
        entry = self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]


def license_key_digest(body: bytes) -> bytes | None:
    try:
        key = orjson.loads(body).get("license_key")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    # The digest the validation stores and looks up: KnownKeys is keyed by it.
    return license_keys.key_digest(key) if isinstance(key, str) else None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """Chooses the bucket for a request, answers 429 when it is spent, and stamps the headers."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        verifier: TokenVerifier,
        uncounted_paths: frozenset[str],
        key_paths: frozenset[str],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.verifier = verifier
        # Both read from the spec and the app's configuration, so they follow them.
        self.uncounted_paths = uncounted_paths
        # The operations whose credential is a license key in the body (validateLicense,
        # deactivateLicense): limited per key, like each other.
        self.key_paths = key_paths

    async def license_verdict(self, scope: Scope, body: bytes) -> Verdict:
        digest = license_key_digest(body)
        tier = self.limiter.known_keys.tier(digest) if digest else None
        if digest is not None and tier is not None:
            return await self.limiter.check(self.limiter.license_tiers[tier], "key", digest.hex())
        return await self.limiter.check(self.limiter.anonymous, "key?", client_address(scope))

    async def verdict(self, scope: Scope) -> Verdict:
        path: str = scope["path"]
        address = client_address(scope)
        if path in self.uncounted_paths:
            # Probes, the contract and the UI are not counted, but still see where the
            # caller's budget stands.
            return await self.limiter.check(self.limiter.anonymous, "anon", address, consume=False)
        authorization = Headers(scope=scope).get("authorization")
        token = bearer_token(authorization) if authorization else None
        if token and operator_keys.looks_like_key(token):
            digest = operator_keys.key_digest(token)
            if self.limiter.known_operator_keys.tier(digest) is not None:
                return await self.limiter.check(self.limiter.operator, "operator", digest.hex())
            return await self.limiter.check(self.limiter.anonymous, "anon", address)
        who = self.identify(authorization)
        if who is not None:
            token, principal = who
            scope.setdefault("state", {})[VERIFIED_STATE_KEY] = (token, principal)
            item = self.limiter.enterprise if principal.enterprise else self.limiter.standard
            return await self.limiter.check(item, "user", str(principal.user_id))
        return await self.limiter.check(self.limiter.anonymous, "anon", address)

    def identify(self, authorization: str | None) -> tuple[str, Principal] | None:
        """The verified principal of an Authorization header, for the bucket; no database."""
        token = bearer_token(authorization) if authorization else None
        if not token:
            return None
        try:
            return token, self.verifier.verify(token)
        except Exception:  # an invalid token is anonymous here; the bearer check answers 401
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.key_paths and scope["method"] == "POST":
            # The key is the credential: read the (small) body to find its bucket, then
            # replay it to the application.
            body, receive = await _peek_body(receive, MAX_VALIDATE_BODY)
            verdict = await self.license_verdict(scope, body)
        else:
            verdict = await self.verdict(scope)
        headers = verdict.headers()
        if not verdict.allowed:
            problem = Problem(
                "rate-limited",
                f"The limit of {verdict.limit} requests is spent;"
                f" retry in {verdict.reset_after} s.",
                headers={**headers, "Retry-After": str(max(1, verdict.reset_after))},
            )
            response = responses.problem(
                problem, instance=scope["path"], request_id=context.request_id.get()
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class EdgeHeadersMiddleware:
    """Stamps the edge headers again deep in the stack, where Connexion's response validation
    checks that the spec's required headers are present (the outer stamp covers every other
    response, including errors rendered above this point)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("state", {}).get(STATE_KEY, {}))
        request_id = context.request_id.get()
        if request_id:
            headers["X-Request-Id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
                security_headers(message)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _peek_body(receive: Receive, limit: int) -> tuple[bytes, Receive]:
    """Reads up to `limit` bytes of the body and returns a receive that replays them first."""
    messages: list[Message] = []
    body = b""
    more = True
    while more and len(body) <= limit:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    pending = iter(messages)

    async def replay() -> Message:
        for message in pending:
            return message
        return await receive()

    return body, replay
