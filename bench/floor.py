"""The floor: a bare Starlette app doing the work of validateLicense, listProjects, getCurrentUser.

Same SQL (db.queries), same EdDSA signing (app.licensing.certificates), same JWT check, same
signed cursors and orjson, on a psycopg AsyncConnectionPool: no Connexion, no middleware. Served
the way the product is (uvicorn workers, one SO_REUSEPORT socket each), so the comparison is
of the application code only.
Run: DATABASE_URL=... CODITECT_DATA_DIR=... python -m bench.floor --workers 2 --port 8001
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.auth.keys import KeySet
from app.auth.verifier import Principal, TokenVerifier
from app.licensing import certificates
from app.licensing import keys as licensing
from app.problems import Problem
from app.rules.pagination import CursorCodec
from db import queries

LICENSES = queries("licenses")
PROJECTS = queries("projects")
BEGIN = queries("session").begin_request
USERS = queries("users")
ORGS = queries("organizations")
ISSUER = "https://api.coditect.ai"
SEEN_GRANULARITY = timedelta(seconds=60)  # as handlers/licenses.py


class Floor:
    def __init__(self) -> None:
        dsn = os.environ["DATABASE_URL"]
        keys = KeySet.load(Path(os.environ["CODITECT_DATA_DIR"]), None, None)
        self.keys = keys
        self.verifier = TokenVerifier(keys, issuer=ISSUER, audience="coditect-cloud")
        self.cursors = CursorCodec(keys.cursor_secret())
        size = int(os.environ.get("DATABASE_POOL_SIZE", "10"))
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=size,
            max_size=size,
            open=False,
            # As the product's pool: autocommit, so a single statement is one round trip and
            # the list opens its own transaction.
            kwargs={"options": "-c statement_timeout=10000 -c TimeZone=UTC", "autocommit": True},
        )


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app() -> Starlette:
    floor = Floor()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await floor.pool.open()
        try:
            yield
        finally:
            await floor.pool.close()

    async def validate(request: Request) -> Response:
        body = orjson.loads(await request.body())
        fingerprint = body.get("fingerprint")
        fpr = certificates.fingerprint_digest(fingerprint) if fingerprint is not None else None
        async with floor.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                LICENSES.validate_license.sql,
                {
                    "key_digest": licensing.key_digest(body["license_key"]),
                    "fingerprint_digest": fpr,
                    "hostname": body.get("hostname"),
                    "seen_granularity": SEEN_GRANULARITY,
                    # the floor records no address or request id in its audit entries
                    "client_ip": None,
                    "request_id": None,
                },
            )
            row = await cur.fetchone()
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
                floor.keys.license_key,
                issuer=ISSUER,
                license_id=row["license_id"],
                organization_id=row["organization_id"],
                tier=row["tier"],
                features=row["features"],
                seats=row["seats"],
                fingerprint=fpr,
                nonce=body.get("nonce"),
                now=row["checked_at"],
                expires_at=row["expires_at"],
            )
            if valid
            else None,
            "nonce": body.get("nonce"),
            "ts": row["checked_at"],
        }
        return _json(result)

    def verified(request: Request) -> Principal | None:
        auth = request.headers.get("authorization", "")
        try:
            return floor.verifier.verify(auth.removeprefix("Bearer "))
        except Problem:
            return None

    async def list_projects(request: Request) -> Response:
        principal = verified(request)
        if principal is None:
            return _json({"title": "unauthorized"}, 401)
        org = principal.organization_id
        limit = int(request.query_params.get("limit", "20"))
        cursor = request.query_params.get("cursor")
        async with (
            floor.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(
                BEGIN.sql,
                {
                    "organization_id": org,
                    "user_id": principal.user_id,
                    "session_id": principal.session_id,
                },
            )
            if await cur.fetchone() is None:
                return _json({"title": "unauthorized"}, 401)
            if cursor is None:
                await cur.execute(
                    PROJECTS.list_projects_first.sql, {"organization_id": org, "limit": limit + 1}
                )
            else:
                after_created_at, after_id = floor.cursors.decode("projects", org, cursor)
                await cur.execute(
                    PROJECTS.list_projects_after.sql,
                    {
                        "organization_id": org,
                        "after_created_at": after_created_at,
                        "after_id": after_id,
                        "limit": limit + 1,
                    },
                )
            rows = await cur.fetchall()
        data = rows[:limit]
        more = len(rows) > limit
        next_cursor = (
            floor.cursors.encode("projects", org, data[-1]["created_at"], data[-1]["id"])
            if more and data
            else None
        )
        return _json({"data": data, "next_cursor": next_cursor})

    async def get_current_user(request: Request) -> Response:
        principal = verified(request)
        if principal is None:
            return _json({"title": "unauthorized"}, 401)
        org = principal.organization_id
        async with (
            floor.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(
                BEGIN.sql,
                {
                    "organization_id": org,
                    "user_id": principal.user_id,
                    "session_id": principal.session_id,
                },
            )
            if await cur.fetchone() is None:
                return _json({"title": "unauthorized"}, 401)
            await cur.execute(
                USERS.get_user.sql, {"organization_id": org, "user_id": principal.user_id}
            )
            user = await cur.fetchone()
            await cur.execute(ORGS.get_organization.sql, {"organization_id": org})
            organization = await cur.fetchone()
        if user is None or organization is None:
            return _json({"title": "not found"}, 404)
        return _json({"user": user, "organization": organization})

    return Starlette(
        routes=[
            Route("/api/v1/licenses/validate", validate, methods=["POST"]),
            Route("/api/v1/projects", list_projects, methods=["GET"]),
            Route("/api/v1/auth/me", get_current_user, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    import argparse

    import uvicorn

    from app.adapter.workers import ReusePortMultiprocess, reuse_port_supported

    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = uvicorn.Config(
        "bench.floor:create_app",
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
