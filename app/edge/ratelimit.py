"""Tiered rate limits at the edge (the `limits` library), before any database work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import orjson
from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.storage import storage_from_string
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import context
from app.auth import operator_keys
from app.auth.verifier import Principal, TokenVerifier, bearer_token
from app.config import Settings
from app.edge import responses
from app.edge.headers import security_headers
from app.edge.metrics import Metrics
from app.licensing import keys as license_keys
from app.problems import Problem

log = logging.getLogger(__name__)

MAX_VALIDATE_BODY = 16_384
STATE_KEY = "rate_limit_verdict"
KEY_CACHE_SIZE = 100_000
RATE_LIMIT_NAMES = frozenset({b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"})
# Where the limiter leaves (token, principal) once it has verified a bearer token, so the
# bearer check behind it does not verify the same signature again.
VERIFIED_STATE_KEY = "verified_bearer"
# What each key namespace counts, for the rejection metric's `bucket` label.
BUCKETS = {"anon": "address", "key?": "address", "user": "user", "key": "license_key"}

T = TypeVar("T")


class Verdict:
    """A rate-limit decision. A plain slotted class: a frozen dataclass sets each field
    through object.__setattr__, on every request. (With the bucket-key cache in
    RateLimiter.check, the one-message path of _peek_body and the verdict kept in the scope
    instead of a header dict: -1.5% of a validation, 1,698,630 -> 1,673,144 instructions,
    measured together 2026-11-30.)"""

    __slots__ = ("allowed", "limit", "remaining", "reset_after")

    def __init__(self, allowed: bool, limit: int, remaining: int, reset_after: int) -> None:
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.reset_after = reset_after

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset_after),
        ]

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }


class StoreSkipped(Exception):
    """The circuit breaker is open: the store is not asked."""


class ProcessCounters:
    """The `memory://` store: limits' fixed-window counting, kept in this process.

    limits' asyncio MemoryStorage starts an asyncio task (a sweep of every key) on each
    increment whose previous sweep has finished, and takes a per-key lock for a critical
    section with no await in it; counting here does the same arithmetic in two dict
    operations and sweeps expired windows at most every SWEEP_EVERY_S seconds (-3.0% of a
    license validation: 1,754,300 -> 1,702,006 instructions, measured 2026-11-30).
    """

    SWEEP_EVERY_S = 10.0

    def __init__(self) -> None:
        self._windows: dict[str, list[float]] = {}  # key -> [count, expires at (epoch s)]
        self._next_sweep = 0.0

    def hit(self, key: str, expiry: int, consume: bool) -> tuple[int, float]:
        """(count after this hit, end of the window): a window starts at its first hit."""
        now = time.time()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            if not consume:
                return 0, now
            if now >= self._next_sweep:
                self._sweep(now)
            window = self._windows[key] = [0, now + expiry]
        if consume:
            window[0] += 1
        return int(window[0]), window[1]

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_EVERY_S
        for key in [k for k, (_, ends) in self._windows.items() if ends <= now]:
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)


class CircuitBreaker:
    """Closed, calls go to the store. A failure or timeout opens it for `retry_after_s`, and
    calls skip the store; then it half-opens: one call probes the store (the others still
    skip it), and its success closes the breaker, its failure opens it again."""

    def __init__(self, retry_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._retry_at: float | None = None  # None: closed
        self._probing = False
        self.last_failure = ""

    @property
    def closed(self) -> bool:
        return self._retry_at is None

    def admit(self) -> bool:
        """Whether this call may go to the store (taking the probe when it is time for one)."""
        if self._retry_at is None:
            return True
        if self._probing or self._clock() < self._retry_at:
            return False
        self._probing = True
        return True

    def succeeded(self) -> bool:
        """Closes the breaker; True when it was open."""
        was_open = self._retry_at is not None
        self._retry_at, self._probing = None, False
        return was_open

    def failed(self, failure: str) -> bool:
        """Opens the breaker (again); True when it was closed."""
        was_closed = self._retry_at is None
        self._retry_at, self._probing = self._clock() + self.retry_after_s, False
        self.last_failure = failure
        return was_closed

    def abandoned(self) -> None:
        """The probe was cancelled before it could tell: the next call after it may probe."""
        self._probing = False


class RateLimiter:
    """Counts hits per bucket. Every call to the shared store is bounded by a short timeout
    and goes through a circuit breaker: when the store fails or hangs, requests fail open (and
    the limiter says so) without waiting for it, and a probe now and then finds it back."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        url = settings.rate_limit_storage_url
        # Logged when the store fails: without the password a Redis URL may carry.
        self.storage_url = without_password(url)
        self.metrics = metrics
        scheme = url if url.startswith("async+") else f"async+{url}"
        self.local: ProcessCounters | None = None
        self.storage: AsyncStorage | None = None
        if scheme.split("://")[0] == "async+memory":
            self.local = ProcessCounters()
        else:
            # redis-py's asyncio client: one Redis library for the whole product.
            options = {"implementation": "redispy"} if "redis" in scheme.split("://")[0] else {}
            # The async+ scheme always yields an asyncio storage.
            self.storage = cast(AsyncStorage, storage_from_string(scheme, **options))
        self.store_timeout_s = settings.rate_limit_store_timeout_ms / 1000
        self.breaker = CircuitBreaker(settings.rate_limit_store_retry_s)
        self.anonymous = parse(settings.rate_limit_anonymous)
        self.standard = parse(settings.rate_limit_standard)
        self.enterprise = parse(settings.rate_limit_enterprise)
        self.operator = parse(settings.rate_limit_operator)
        self.license_tiers = {
            "FREE": self.anonymous,
            "PRO": self.standard,
            "ENTERPRISE": self.enterprise,
        }
        self.tiers = {
            id(self.anonymous): "anonymous",
            id(self.standard): "standard",
            id(self.enterprise): "enterprise",
        }
        self.known_keys = KnownKeys()
        # Operator keys this process has authenticated: each has its own budget. An unknown
        # one (perhaps a guess) counts against the client address, like an anonymous call.
        self.known_operator_keys = KnownKeys()
        self._keys: dict[tuple[RateLimitItem, tuple[str, ...]], str] = {}

    @property
    def store_ok(self) -> bool:
        return self.breaker.closed

    @property
    def store_detail(self) -> str:
        if self.breaker.closed:
            return "ok"
        return (
            f"unavailable ({self.breaker.last_failure}): failing open, the circuit breaker"
            f" retries every {self.breaker.retry_after_s:g} s"
        )

    async def _ask_store(self, call: Callable[[], Awaitable[T]]) -> T:
        """One store call within the timeout, through the breaker (StoreSkipped when open)."""
        if not self.breaker.admit():
            raise StoreSkipped
        try:
            async with asyncio.timeout(self.store_timeout_s):
                result = await call()
        except Exception as e:  # a store outage must not take the API down with it
            failure = "timeout" if isinstance(e, TimeoutError) else type(e).__name__
            if self.breaker.failed(failure):
                log.error(
                    "rate-limit store %s unavailable (%s), failing open; retrying every %g s",
                    self.storage_url,
                    e or failure,
                    self.breaker.retry_after_s,
                )
            raise
        except BaseException:  # cancelled from outside: the store has not answered either way
            self.breaker.abandoned()
            raise
        if self.breaker.succeeded():
            log.warning("rate-limit store %s is back: counting again", self.storage_url)
        return result

    async def check(self, item: RateLimitItem, *keys: str, consume: bool = True) -> Verdict:
        # limits' fixed window, with the count the increment returns instead of reading it
        # back: two store calls (two Redis round trips) per request rather than three.
        # limits' key for the bucket, built once per caller (key_for is seven Python calls).
        key = self._keys.get((item, keys))
        if key is None:
            if len(self._keys) >= KEY_CACHE_SIZE:
                self._keys.clear()
            key = self._keys[(item, keys)] = item.key_for(*keys)
        if self.local is not None:
            count, reset_time = self.local.hit(key, item.get_expiry(), consume)
            return self._verdict(item, keys, count, reset_time, consume)
        storage = self.storage
        assert storage is not None

        async def count_and_expiry() -> tuple[int, float]:
            if consume:
                count = await storage.incr(key, item.get_expiry(), amount=1)
            else:
                count = await storage.get(key)
            return count, await storage.get_expiry(key)

        try:
            count, reset_time = await self._ask_store(count_and_expiry)
        except Exception:  # failing open: the store is down, hung, or skipped by the breaker
            return Verdict(True, item.amount, item.amount, item.get_expiry())
        return self._verdict(item, keys, count, reset_time, consume)

    def _verdict(
        self,
        item: RateLimitItem,
        keys: tuple[str, ...],
        count: int,
        reset_time: float,
        consume: bool,
    ) -> Verdict:
        reset_after = max(0, math.ceil(reset_time - time.time()))
        allowed = count <= item.amount or not consume
        if not allowed:
            self.metrics.rejected(self.tiers.get(id(item), "other"), BUCKETS.get(keys[0], "other"))
        return Verdict(allowed, item.amount, max(0, item.amount - count), reset_after)

    async def healthy(self) -> bool:
        """Whether the store counts, for readiness: a ping within the store timeout, or, while
        the breaker is open, what the breaker knows (readiness never waits on a hung store)."""
        storage = self.storage
        if storage is None:  # counted in this process: nothing to reach
            return True

        async def ping() -> None:
            if not await storage.check():
                raise ConnectionError("the store did not answer its health check")

        # A failure is reported through store_ok and store_detail (and logged by _ask_store).
        with contextlib.suppress(Exception):
            await self._ask_store(ping)
        return self.store_ok


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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


def _authorization(scope: Scope) -> str | None:
    # The first Authorization field, as Headers(scope=scope).get() finds it, without building
    # the Headers object for every request (-0.3% of a getCurrentUser, measured 2026-11-30).
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


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
        liveness_path: str,
        key_paths: frozenset[str],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.verifier = verifier
        # All read from the spec and the app's configuration, so they follow them.
        self.uncounted_paths = uncounted_paths
        self.liveness_path = liveness_path
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
        authorization = _authorization(scope)
        token = bearer_token(authorization) if authorization else None
        if token and operator_keys.looks_like_key(token):
            digest = operator_keys.key_digest(token)
            if self.limiter.known_operator_keys.tier(digest) is not None:
                return await self.limiter.check(self.limiter.operator, "operator", digest.hex())
            return await self.limiter.check(self.limiter.anonymous, "anon", address)
        who = self.identify(authorization)
        if who is not None:
            token, principal = who
            context.note_organization(principal.organization_id)
            scope.setdefault("state", {})[VERIFIED_STATE_KEY] = (token, principal)
            item = self.limiter.enterprise if principal.enterprise else self.limiter.standard
            return await self.limiter.check(item, "user", principal.subject)
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
        if scope["type"] != "http" or scope["path"] == self.liveness_path:
            # Liveness depends on nothing but the process: it never touches the store, so it
            # carries no RateLimit headers either.
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.key_paths and scope["method"] == "POST":
            # The key is the credential: read the (small) body to find its bucket, then
            # replay it to the application.
            body, receive = await _peek_body(receive, MAX_VALIDATE_BODY)
            verdict = await self.license_verdict(scope, body)
        else:
            verdict = await self.verdict(scope)
        if not verdict.allowed:
            headers = verdict.headers()
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
        scope.setdefault("state", {})[STATE_KEY] = verdict
        stamped = verdict.raw_headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Raw pairs replacing any of the same name: MutableHeaders re-encoded and
                # re-scanned the response's headers once per header (-1.1% of a validation:
                # 1,769,879 -> 1,751,017 instructions, measured 2026-11-30).
                raw = message.get("headers") or []
                message["headers"] = [
                    *(pair for pair in raw if pair[0] not in RATE_LIMIT_NAMES),
                    *stamped,
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class EdgeHeadersMiddleware:
    """Stamps the edge headers again deep in the stack, where Connexion's response validation
    checks that the spec's required headers are present (the outer stamp covers every other
    response, including errors rendered above this point)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verdict = scope.get("state", {}).get(STATE_KEY)
        headers = verdict.headers() if verdict is not None else {}
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
    first = await receive()
    if first["type"] == "http.request" and not first.get("more_body", False):
        # The usual case, the whole body in one message: replayed once, then the real channel.
        replayed = False

        async def replay_one() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return first

        return first.get("body", b""), replay_one
    messages: list[Message] = [first]
    more = first["type"] == "http.request"  # and more_body, as the usual case returned
    body = first.get("body", b"") if more else b""
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
