"""Edge middleware that runs before routing: request context, header limits, wrong methods,
body limits."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import context
from app.edge import responses
from app.edge.headers import relative_location, security_headers
from app.edge.spec import AllowedMethods
from app.problems import Problem

_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Outermost: says which application serves the request (its runtime), and adopts a sane
    incoming X-Request-Id or makes one; every response carries it and the security headers
    (Cache-Control: no-store unless the response says otherwise), and a redirect's Location
    never carries the Host header."""

    def __init__(self, app: ASGIApp, runtime: object) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serving = context.runtime.set(self.runtime)
        if scope["type"] != "http":
            try:
                await self.app(scope, receive, send)
            finally:
                context.runtime.reset(serving)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _ACCEPTABLE_ID.match(incoming) else uuid.uuid4().hex
        token = context.request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
                security_headers(message)
                relative_location(message, scope)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            context.request_id.reset(token)
            context.runtime.reset(serving)


class HeaderLimitMiddleware:
    """431 for a request whose header section is larger than `max_bytes` (each field counted
    as sent: name, value, ": " and CRLF) or has more than `max_count` fields: answered before
    anything reads a header (the rate limiter verifies bearer tokens), as a problem."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fields = scope["headers"]
            if len(fields) > self.max_count:
                detail = f"The request has more than {self.max_count} header fields."
            elif sum(len(name) + len(value) + 4 for name, value in fields) > self.max_bytes:
                detail = f"The request header fields exceed {self.max_bytes} bytes."
            else:
                await self.app(scope, receive, send)
                return
            problem = Problem("request-header-fields-too-large", detail)
            response = responses.problem(
                problem, instance=scope["path"], request_id=context.request_id.get()
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class LiteralPathGuard:
    """405 for a wrong method on a fixed path that a templated path would otherwise capture
    (PATCH /licenses/validate must not be routed as PATCH /licenses/{license_id})."""

    def __init__(self, app: ASGIApp, allowed: AllowedMethods) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            methods = self.allowed.literal.get(scope["path"])
            if methods is not None and scope["method"] not in methods:
                raise HTTPException(405)
        await self.app(scope, receive, send)


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only these methods have request bodies in the spec; nothing reads any other body,
        # so it costs nothing and is not answered with a 413 the operation does not document.
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").partition(";")[0]
        if media_type != media_type.lower():
            scope = with_lowercase_media_type(scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # Raised here so the exception middleware renders it like every other problem.
            raise BodyTooLarge(self.max_bytes)
        if declared is None and "chunked" in headers.get("transfer-encoding", "").lower():
            # Connexion treats a body without Content-Length as missing: buffer it (bounded)
            # and replay it with its length.
            receive, scope = await self._buffered(scope, receive)
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

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
