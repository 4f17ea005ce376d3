"""CPU µs per request with no HTTP server: direct ASGI calls into the app object, one process."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

ASGIApp = Callable[..., Any]


class Lifespan:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.state: dict[str, Any] = {}

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        msg = await self.outbox.get()
        if msg["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan startup failed: {msg}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        await self.task


async def call(
    app: ASGIApp,
    state: dict[str, Any],
    method: str,
    path: str,
    *,
    query: str = "",
    token: str | None = None,
    body: Any = None,
) -> tuple[int, bytes]:
    raw = orjson.dumps(body) if body is not None else b""
    headers = [(b"host", b"bench.local"), (b"user-agent", b"bench")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if body is not None:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def measure(
    app: ASGIApp, state: dict[str, Any], request: Callable[[int], dict[str, Any]], n: int
) -> dict[str, Any]:
    """Warm up, then n sequential requests; CPU of this whole process (all threads) per request."""
    for i in range(max(5, n // 10)):
        await call(app, state, **request(-i - 1))
    bad = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        status, _ = await call(app, state, **request(i))
        bad += not 200 <= status < 300
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        "n": n,
        "cpu_us_per_request": round(cpu / n * 1e6, 1),
        "wall_us_per_request": round(wall / n * 1e6, 1),
        "errors": bad,
    }


def requests_for(ctx: dict[str, Any]) -> dict[str, Callable[[int], dict[str, Any]]]:
    run = uuid.uuid4().hex[:8]
    counter = itertools.count()
    huge = ctx["huge_keys"]
    return {
        "validate_activated": lambda i: {
            "method": "POST",
            "path": "/api/v1/licenses/validate",
            "body": ctx["validate_body"],
        },
        "validate_new_fingerprint": lambda i: {
            "method": "POST",
            "path": "/api/v1/licenses/validate",
            "body": {
                "license_key": huge[i % len(huge)],
                "fingerprint": f"inproc-{run}-{next(counter)}",
                "hostname": "bench-new",
            },
        },
        "list_projects_page1": lambda i: {
            "method": "GET",
            "path": "/api/v1/projects",
            "query": "limit=50",
            "token": ctx["token"],
        },
        "list_projects_deep": lambda i: {
            "method": "GET",
            "path": "/api/v1/projects",
            "query": f"limit=50&cursor={ctx['deep_cursor']}",
            "token": ctx["token"],
        },
        "get_current_user": lambda i: {
            "method": "GET",
            "path": "/api/v1/auth/me",
            "token": ctx["token"],
        },
        "login": lambda i: {
            "method": "POST",
            "path": "/api/v1/auth/login",
            "body": ctx["login_body"],
        },
    }


async def run_all(
    make_app: Callable[[], ASGIApp], ctx: dict[str, Any], scenarios: list[str], n: int
) -> dict[str, Any]:
    app = make_app()
    out: dict[str, Any] = {}
    reqs = requests_for(ctx)
    async with Lifespan(app) as life:
        for name in scenarios:
            count = max(10, n // 50) if name == "login" else n
            out[name] = await measure(app, life.state, reqs[name], count)
    return out
