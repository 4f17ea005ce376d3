"""Service endpoints outside /api/v1: liveness, readiness, public keys, metrics."""

from __future__ import annotations

from starlette.responses import Response

from app import runtime
from app.edge import metrics as prometheus
from app.edge import responses
from db import migrations, queries

Q = queries("service")

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
    # prometheus_client's exposition of every worker's values (app.edge.metrics).
    exposition = runtime.current().metrics.exposition()
    return responses.text(exposition.decode(), media_type=prometheus.CONTENT_TYPE)
