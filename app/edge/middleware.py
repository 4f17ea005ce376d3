"""Edge middleware that runs before routing: request context, header limits, wrong methods,
body limits."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Mapping
from itertools import chain

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import db
from app import context
from app.edge import responses
from app.edge.headers import relative_location, security_headers
from app.edge.metrics import Metrics
from app.edge.spec import AllowedMethods
from app.problems import Problem

_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Probers give a probe about a second (Kubernetes' timeoutSeconds defaults to 1): readiness
# waits at most this long for a database connection and reports the database unready, rather
# than leaving the prober to time out while the pool waits its full timeout.
PROBE_POOL_WAIT_S = 1.0
UNMATCHED: tuple[None, None] = (None, None)
# PASS_THROUGH: a layer that only looks at the scope before handing the request on is a plain
# callable returning the next layer's awaitable, not a coroutine of its own. Every coroutine
# in the stack is re-entered each time the request resumes after a database round trip, and
# a coroutine per layer made ~24 frames to the floor's ~8. For the five layers here: -1.0% of
# a getCurrentUser (1,332,930 -> 1,318,933 instructions), -0.4% of a license validation
# (1,460,412 -> 1,454,527), in process on uvloop, measured 2026-11-30. Anything raised still
# surfaces in the awaiting layer's `await`, where its handlers are.
access_log = logging.getLogger("coditect.access")


# The request id in one pass over the raw headers, a random one from os.urandom rather than
# uuid4 (the same 128 random bits as 32 hex digits, without UUID's Python arithmetic), and the
# response header appended raw instead of through MutableHeaders: -1.8% of a license
# validation (1,769,879 -> 1,738,133 instructions, measured 2026-11-30).
def _incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            return incoming if _ACCEPTABLE_ID.match(incoming) else None
    return None


class RequestContextMiddleware:
    """Outermost: says which application serves the request (its runtime), and adopts a sane
    incoming X-Request-Id or makes one; every response carries it and the security headers
    (Cache-Control: no-store unless the response says otherwise), and a redirect's Location
    never carries the Host header. Once the response is sent, counts it and writes its
    access-log line."""

    def __init__(
        self,
        app: ASGIApp,
        runtime: object,
        metrics: Metrics,
        operations: Mapping[str, tuple[str, str]],
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.metrics = metrics
        # The routed handler's name -> its operationId and path template: the log names the
        # template, never the raw path (ids in it, or whatever an unmatched request put there).
        self.operations = operations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serving = context.runtime.set(self.runtime)
        if scope["type"] != "http":
            try:
                await self.app(scope, receive, send)
            finally:
                context.runtime.reset(serving)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope["headers"]) or os.urandom(16).hex()
        token = context.request_id.set(request_id)
        raw_id = (b"x-request-id", request_id.encode())
        note = context.RequestNote()
        noting = context.note.set(note)
        # What the server answers when the application fails before starting a response.
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = message.get("headers") or []
                message["headers"] = [*(p for p in raw if p[0] != b"x-request-id"), raw_id]
                security_headers(message)
                relative_location(message, scope)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            operation_id, path = self.operations.get(note.operation_id or "", UNMATCHED)
            self.metrics.request_done(operation_id, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                self.log(scope, request_id, operation_id, path, note, status, seconds)
            context.note.reset(noting)
            context.request_id.reset(token)
            context.runtime.reset(serving)

    def log(
        self,
        scope: Scope,
        request_id: str,
        operation_id: str | None,
        path: str | None,
        note: context.RequestNote,
        status: int,
        seconds: float,
    ) -> None:
        """One line per request. Only what identifies the request and its outcome: never the
        query string, headers or bodies, where credentials and emails travel."""
        client = scope.get("client")
        duration_ms = round(seconds * 1000, 3)
        access_log.info(
            "%s %s %d %.1f ms",
            scope["method"],
            path or "-",
            status,
            duration_ms,
            extra={
                "request_id": request_id,
                "operation_id": operation_id,
                "method": scope["method"],
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "organization_id": note.organization_id,
                "client": client[0] if client else None,
            },
        )


class HeaderLimitMiddleware:
    """431 for a request whose header section is larger than `max_bytes` (each field counted
    as sent: name, value, ": " and CRLF) or has more than `max_count` fields: answered before
    anything reads a header (the rate limiter verifies bearer tokens), as a problem."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: see PASS_THROUGH.
        if scope["type"] == "http":
            fields = scope["headers"]
            if len(fields) > self.max_count:
                detail = f"The request has more than {self.max_count} header fields."
            # Summed in C, not by a generator: -0.8% of a validation (1,648,245 -> 1,634,639
            # instructions, measured 2026-11-30).
            elif sum(map(len, chain.from_iterable(fields))) + 4 * len(fields) > self.max_bytes:
                detail = f"The request header fields exceed {self.max_bytes} bytes."
            else:
                return self.app(scope, receive, send)
            problem = Problem("request-header-fields-too-large", detail)
            response = responses.problem(
                problem, instance=scope["path"], request_id=context.request_id.get()
            )
            return response(scope, receive, send)
        return self.app(scope, receive, send)


class LiteralPathGuard:
    """405 for a wrong method on a fixed path that a templated path would otherwise capture
    (PATCH /licenses/validate must not be routed as PATCH /licenses/{license_id})."""

    def __init__(self, app: ASGIApp, allowed: AllowedMethods) -> None:
        self.app = app
        self.allowed = allowed

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine (see PASS_THROUGH): the 405 is raised inside the awaiting layer's
        # own `await`, where the exception middleware catches it as before.
        if scope["type"] == "http":
            methods = self.allowed.literal.get(scope["path"])
            if methods is not None and scope["method"] not in methods:
                raise HTTPException(405)
        return self.app(scope, receive, send)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__("payload-too-large", f"The request body exceeds {limit} bytes.")


def with_lowercase_media_type(scope: Scope) -> Scope:
    """Media types are case-insensitive (RFC 9110), but Connexion picks a body validator by
    a case-sensitive match: `Application/JSON` passed its 415 check, skipped validation,
    and reached the handler as bytes (a 500). Parameters are left as sent."""
    headers = []
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type, semicolon, parameters = value.partition(b";")
            value = media_type.lower() + semicolon + parameters
        headers.append((name, value))
    return {**scope, "headers": headers}


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed; the
    body's media type in lower case, as Connexion expects it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: see PASS_THROUGH.
        # Only these methods have request bodies in the spec; nothing reads any other body,
        # so it costs nothing and is not answered with a 413 the operation does not document.
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return self.app(scope, receive, send)
        # The three headers in one pass (Headers.get scans the list once per name): -0.6% of a
        # validation, 1,769,879 -> 1,759,212 instructions, measured 2026-11-30.
        content_type = declared_bytes = transfer_encoding = None
        for name, value in scope["headers"]:
            if name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and declared_bytes is None:
                declared_bytes = value
            elif name == b"transfer-encoding" and transfer_encoding is None:
                transfer_encoding = value
        media_type = (content_type or b"").partition(b";")[0]
        if media_type != media_type.lower():
            scope = with_lowercase_media_type(scope)
        declared = declared_bytes.decode("latin-1") if declared_bytes is not None else None
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # Raised here so the exception middleware renders it like every other problem.
            raise BodyTooLarge(self.max_bytes)
        if declared is None and b"chunked" in (transfer_encoding or b"").lower():
            # Connexion treats a body without Content-Length as missing: buffer it (bounded)
            # and replay it with its length.
            return self._buffered_app(scope, receive, send)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        return self.app(scope, limited_receive, send)

    async def _buffered_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        receive, scope = await self._buffered(scope, receive)
        await self.app(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive) -> tuple[Receive, Scope]:
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            more = message.get("more_body", False)
        scope = dict(scope)
        raw = [
            (k, v)
            for k, v in scope["headers"]
            if k not in (b"transfer-encoding", b"content-length")
        ]
        scope["headers"] = [*raw, (b"content-length", str(len(body)).encode())]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return replay, scope


class ProbeMiddleware:
    """Bounds the database pool wait of the probes' requests (readiness) by PROBE_POOL_WAIT_S."""

    def __init__(self, app: ASGIApp, paths: frozenset[str]) -> None:
        self.app = app
        self.paths = paths

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: see PASS_THROUGH.
        if scope["type"] == "http" and scope["path"] in self.paths:
            return self._probe(scope, receive, send)
        return self.app(scope, receive, send)

    async def _probe(self, scope: Scope, receive: Receive, send: Send) -> None:
        with db.pool_wait_at_most(PROBE_POOL_WAIT_S):
            await self.app(scope, receive, send)
