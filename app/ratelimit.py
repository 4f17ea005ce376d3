"""Tiered rate limits at the edge (the `limits` library), before any database work."""

from __future__ import annotations

import inspect
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.middleware import request_id_var
from app.problems import Problem

log = logging.getLogger(__name__)

SERVICE_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"})
STATE_KEY = "rate_limit_headers"


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
        self.storage = storage_from_string(scheme, **options)
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.anonymous = parse(settings.rate_limit_anonymous)
        self.standard = parse(settings.rate_limit_standard)
        self.enterprise = parse(settings.rate_limit_enterprise)
        self.store_ok = True
        self.store_detail = "ok"

    async def check(self, item: RateLimitItem, *keys: str, consume: bool = True) -> Verdict:
        try:
            allowed = await self.strategy.hit(item, *keys) if consume else True
            stats = await self.strategy.get_window_stats(item, *keys)
            self.store_ok, self.store_detail = True, "ok"
        except Exception as e:  # a store outage must not take the API down with it
            if self.store_ok:
                log.error("rate-limit store %s unavailable, failing open: %s", self.storage_url, e)
            self.store_ok, self.store_detail = False, type(e).__name__
            return Verdict(True, item.amount, item.amount, item.get_expiry())
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, item.amount, max(0, stats.remaining), reset_after)

    async def healthy(self) -> bool:
        try:
            checked = self.storage.check()
            ok = bool(await checked if inspect.isawaitable(checked) else checked)
        except Exception:
            ok = False
        self.store_ok = ok
        if not ok:
            self.store_detail = "unreachable"
        return ok


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """Chooses the bucket for a request, answers 429 when it is spent, and stamps the headers."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, identify: object) -> None:
        self.app = app
        self.limiter = limiter
        # identify(authorization_header) -> (bucket key, is_enterprise) or None; no database.
        self.identify = identify

    async def verdict(self, scope: Scope) -> Verdict:
        path: str = scope["path"]
        address = client_address(scope)
        if path in SERVICE_PATHS:
            # Probes are not counted, but still see where the caller's budget stands.
            return await self.limiter.check(self.limiter.anonymous, "anon", address, consume=False)
        authorization = Headers(scope=scope).get("authorization")
        who = self.identify(authorization) if authorization else None  # type: ignore[operator]
        if who is not None:
            key, enterprise = who
            item = self.limiter.enterprise if enterprise else self.limiter.standard
            return await self.limiter.check(item, "user", key)
        return await self.limiter.check(self.limiter.anonymous, "anon", address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = await self.verdict(scope)
        headers = verdict.headers()
        if not verdict.allowed:
            problem = Problem(
                "rate-limited",
                f"The limit of {verdict.limit} requests is spent;"
                f" retry in {verdict.reset_after} s.",
                headers={**headers, "Retry-After": str(max(1, verdict.reset_after))},
            )
            response = problem.to_response(instance=scope["path"], request_id=request_id_var.get())
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
        request_id = request_id_var.get()
        if request_id:
            headers["X-Request-Id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
