"""Service endpoints outside /api/v1: liveness, readiness, public keys, metrics."""

from __future__ import annotations

import time

from starlette.responses import Response

from app import runtime
from app.edge import responses
from db import migrations, queries

Q = queries("service")

_STARTED = time.time()
# The newest migration this code ships: it cannot change while the process runs, and reading
# the migrations folder took ~0.2 ms per readiness probe.
_EXPECTED_SCHEMA = migrations.expected_version()


async def get_health() -> Response:
    return responses.json({"status": "ok"})


async def get_readiness() -> Response:
    database = {"ok": True, "detail": "reachable"}
    migration = {"ok": False, "current": None, "expected": _EXPECTED_SCHEMA}
    try:
        row = await runtime.current().database.anonymous_statement(Q.schema_version)
        current = row["current"] if row else None
        migration = {
            "ok": current == _EXPECTED_SCHEMA,
            "current": current,
            "expected": _EXPECTED_SCHEMA,
        }
    except Exception as e:  # readiness reports the failure instead of raising it
        database = {"ok": False, "detail": type(e).__name__}
    limiter = runtime.current().limiter
    await limiter.healthy()
    store = {"ok": limiter.store_ok, "detail": limiter.store_detail}
    # A rate-limit store outage is reported but does not make the API unready: it fails open.
    ready = database["ok"] and migration["ok"]
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {
            "database": database,
            "migrations": migration,
            "rate_limit_store": store,
        },
    }
    return responses.json(body, status=200 if ready else 503)


async def get_jwks() -> Response:
    return responses.json(
        runtime.current().keys.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


async def get_metrics() -> Response:
    lines = [
        "# HELP coditect_up Whether the API process is serving.",
        "# TYPE coditect_up gauge",
        "coditect_up 1",
        "# HELP coditect_process_start_time_seconds Start time of the process since the epoch.",
        "# TYPE coditect_process_start_time_seconds gauge",
        f"coditect_process_start_time_seconds {_STARTED:.3f}",
        "",
    ]
    return responses.text("\n".join(lines))
