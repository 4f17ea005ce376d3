"""The FastAPI peer: validateLicense, listProjects and getCurrentUser written the FastAPI way.

pydantic v2 request models with the spec's constraints (LicenseValidationRequest, the Limit and
Cursor parameters), a bearer dependency on the product's TokenVerifier, the product's database
layer (db.engine.Database: the same SQL, pool settings and tenant transaction), the same EdDSA
certificate and signed cursors, and orjson responses returned directly (what FastAPI's
deprecated ORJSONResponse did, skipping its response-model serialization as the product skips
response validation in the benchmark). `create_limited_app` adds the rate limit FastAPI users
add: a dependency calling `limits` (fixed window, asyncio memory storage), per client address
for validations and per user for authenticated calls. Served like the product (uvicorn
workers, one SO_REUSEPORT socket each).
No `from __future__ import annotations`: FastAPI reads the dependencies' annotations at run time.
Run: DATABASE_URL=... CODITECT_DATA_DIR=... python -m bench.fastapi_peer --workers 2 --port 8002
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter
from pydantic import BaseModel, ConfigDict, StringConstraints

from app.auth.keys import KeySet
from app.auth.verifier import Principal, TokenVerifier
from app.licensing import certificates
from app.licensing import keys as licensing
from app.problems import Problem
from app.rules.pagination import CursorCodec
from db import queries
from db.engine import Database, SessionNotLive

LICENSES = queries("licenses")
PROJECTS = queries("projects")
USERS = queries("users")
ORGS = queries("organizations")
ISSUER = "https://api.coditect.ai"
SEEN_GRANULARITY = timedelta(seconds=60)  # as handlers/licenses.py
NUL_FREE = r"^[^\x00]*$"


class LicenseValidationRequest(BaseModel):
    """openapi.yaml's LicenseValidationRequest."""

    model_config = ConfigDict(extra="forbid")

    license_key: Annotated[str, StringConstraints(min_length=16, max_length=128, pattern=NUL_FREE)]
    fingerprint: (
        Annotated[str, StringConstraints(min_length=16, max_length=512, pattern=NUL_FREE)] | None
    ) = None
    hostname: (
        Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=NUL_FREE)] | None
    ) = None
    nonce: (
        Annotated[str, StringConstraints(min_length=8, max_length=128, pattern=NUL_FREE)] | None
    ) = None


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Peer:
    def __init__(self) -> None:
        keys = KeySet.load(Path(os.environ["CODITECT_DATA_DIR"]), None, None)
        self.keys = keys
        self.verifier = TokenVerifier(keys, issuer=ISSUER, audience="coditect-cloud")
        self.cursors = CursorCodec(keys.cursor_secret())
        self.database = Database(
            os.environ["DATABASE_URL"], pool_size=int(os.environ.get("DATABASE_POOL_SIZE", "10"))
        )
        limit = os.environ.get("RATE_LIMIT_STANDARD", "100000000/minute")
        self.limit = parse(limit)
        self.limiter = FixedWindowRateLimiter(MemoryStorage())


def create_app(rate_limited: bool = False) -> FastAPI:
    peer = Peer()
    bearer_scheme = HTTPBearer()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await peer.database.open()
        try:
            yield
        finally:
            await peer.database.dispose()

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer_scheme)],
    ) -> Principal:
        try:
            return peer.verifier.verify(credentials.credentials)
        except Problem:
            raise HTTPException(401, "Invalid or expired token.") from None

    async def limit_address(request: Request) -> None:
        if rate_limited:
            address = request.client.host if request.client else "unknown"
            if not await peer.limiter.hit(peer.limit, "anon", address):
                raise HTTPException(429, "Rate limit exceeded.")

    async def caller(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if rate_limited and not await peer.limiter.hit(peer.limit, "user", str(who.user_id)):
            raise HTTPException(429, "Rate limit exceeded.")
        return who

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/api/v1/licenses/validate", dependencies=[Depends(limit_address)])
    async def validate_license(body: LicenseValidationRequest) -> Response:
        fpr = (
            certificates.fingerprint_digest(body.fingerprint)
            if body.fingerprint is not None
            else None
        )
        row = await peer.database.anonymous_statement(
            LICENSES.validate_license,
            key_digest=licensing.key_digest(body.license_key),
            fingerprint_digest=fpr,
            hostname=body.hostname,
            seen_granularity=SEEN_GRANULARITY,
            # like the floor, the peer records no address or request id in its audit entries
            client_ip=None,
            request_id=None,
        )
        assert row is not None
        code = row["code"]
        valid = code == "VALID"
        result: dict[str, Any] = {
            "valid": valid,
            "code": code,
            "detail": "License is valid." if valid else code,
            "license": None
            if code == "NOT_FOUND"
            else {
                k: row[k]
                for k in ("tier", "status", "seats", "seats_used", "features", "expires_at")
            }
            | {"id": row["license_id"], "machine_bound": row["machine_bound"]},
            "activation": None
            if row["activation_id"] is None
            else {
                "id": row["activation_id"],
                "activated_at": row["activated_at"],
                "last_seen_at": row["last_seen_at"],
                "new": row["activation_new"],
            },
            "certificate": certificates.issue(
                peer.keys.license_key,
                issuer=ISSUER,
                license_id=row["license_id"],
                organization_id=row["organization_id"],
                tier=row["tier"],
                features=row["features"],
                seats=row["seats"],
                fingerprint=fpr,
                nonce=body.nonce,
                now=row["checked_at"],
                expires_at=row["expires_at"],
            )
            if valid
            else None,
            "nonce": body.nonce,
            "ts": row["checked_at"],
        }
        return OrjsonResponse(result)

    @app.get("/api/v1/projects")
    async def list_projects(
        who: Annotated[Principal, Depends(caller)],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[
            str | None, Query(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_-]+$")
        ] = None,
    ) -> Response:
        org = who.organization_id
        try:
            after = peer.cursors.decode("projects", org, cursor) if cursor is not None else None
        except Problem:
            raise HTTPException(400, "Invalid cursor.") from None
        try:
            async with peer.database.tenant(who) as tx:
                rows = await tx.keyset(
                    PROJECTS.list_projects_first,
                    PROJECTS.list_projects_after,
                    after_key=after,
                    organization_id=org,
                    limit=limit + 1,
                )
        except SessionNotLive:
            raise HTTPException(401, "The session has ended.") from None
        data = rows[:limit]
        more = len(rows) > limit
        next_cursor = (
            peer.cursors.encode("projects", org, data[-1]["created_at"], data[-1]["id"])
            if more and data
            else None
        )
        return OrjsonResponse({"data": data, "next_cursor": next_cursor})

    @app.get("/api/v1/auth/me")
    async def get_current_user(who: Annotated[Principal, Depends(caller)]) -> Response:
        try:
            async with peer.database.tenant(who) as tx:
                user = await tx.one(
                    USERS.get_user, organization_id=who.organization_id, user_id=who.user_id
                )
                organization = await tx.one(
                    ORGS.get_organization, organization_id=who.organization_id
                )
        except SessionNotLive:
            raise HTTPException(401, "The session has ended.") from None
        if user is None or organization is None:
            raise HTTPException(404, "Not found.")
        return OrjsonResponse({"user": user, "organization": organization})

    return app


def create_limited_app() -> FastAPI:
    return create_app(rate_limited=True)


def main() -> None:
    import argparse

    import uvicorn

    from app.adapter.workers import ReusePortMultiprocess, reuse_port_supported

    parser = argparse.ArgumentParser(prog="python -m bench.fastapi_peer")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate-limit", action="store_true", help="the `limits` dependency")
    args = parser.parse_args()
    factory = "create_limited_app" if args.rate_limit else "create_app"
    config = uvicorn.Config(
        f"bench.fastapi_peer:{factory}",
        factory=True,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        server_header=False,
    )
    if args.workers > 1 and reuse_port_supported(args.port):
        ReusePortMultiprocess(config).run()
    else:
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
