"""The Connexion application: the whole middleware stack in order, both APIs, error handlers."""

from __future__ import annotations

from functools import partial
from typing import Any

import connexion.exceptions
from connexion import AsyncApp
from connexion.middleware.response_validation import ResponseValidationMiddleware
from starlette.exceptions import HTTPException

from app.adapter import openapi31
from app.adapter.bearer import SECURITY_MAP
from app.adapter.errors import LeanExceptionMiddleware, ServerErrorProblems, render_problem
from app.adapter.operations import use_prepared_operations
from app.adapter.passthrough import PassThroughContext, PassThroughLifespan, PassThroughSecurity
from app.adapter.resolver import TagResolver, handler_name
from app.adapter.routing import LiteralRoutes
from app.adapter.validation import PreparedValidationMiddleware
from app.edge import spec
from app.edge.docs import Docs, DocsMiddleware
from app.edge.middleware import (
    BodyLimitMiddleware,
    HeaderLimitMiddleware,
    LiteralPathGuard,
    ProbeMiddleware,
    RequestContextMiddleware,
)
from app.edge.ratelimit import EdgeHeadersMiddleware, RateLimitMiddleware
from app.problems import Problem
from app.runtime import Runtime


class App(AsyncApp):
    """Connexion's AsyncApp, holding the runtime it serves with."""

    runtime: Runtime


def middlewares(
    runtime: Runtime, api_spec: dict[str, Any], service_spec: dict[str, Any], docs: Docs
) -> list[Any]:
    """Connexion's stack with ours in it, outermost first. Connexion's routing is replaced by a
    faster subclass (app.adapter.routing); its spec/UI middleware is left out (the edge serves
    the contract as authored, and Swagger UI 5: app.edge.docs); the response validator is left
    out when it would only pass responses through."""
    settings = runtime.settings
    stack: list[Any] = [
        partial(
            RequestContextMiddleware,
            runtime=runtime,
            metrics=runtime.metrics,
            operations=operations(api_spec, service_spec),
        ),
        # Inside the request context: a 500 for a fault above the exception middleware has the
        # request id and the edge's headers too.
        ServerErrorProblems,
        partial(
            HeaderLimitMiddleware,
            max_bytes=settings.max_header_bytes,
            max_count=settings.max_header_count,
        ),
        partial(
            RateLimitMiddleware,
            limiter=runtime.limiter,
            verifier=runtime.verifier,
            # Probes, the contract and the UI's files are not counted.
            uncounted_paths=frozenset(service_spec["paths"]) | docs.paths,
            liveness_path=spec.operation_url_path(service_spec, "getHealth"),
            key_paths=frozenset(
                spec.operation_url_path(api_spec, operation)
                for operation in ("validateLicense", "deactivateLicense")
            ),
        ),
        partial(
            ProbeMiddleware,
            paths=frozenset({spec.operation_url_path(service_spec, "getReadiness")}),
        ),
        LeanExceptionMiddleware,
        partial(LiteralPathGuard, allowed=runtime.allowed),
        partial(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        partial(DocsMiddleware, docs=docs),
        LiteralRoutes,
        PassThroughSecurity,
        PreparedValidationMiddleware,
    ]
    if settings.validate_responses:
        stack.append(ResponseValidationMiddleware)
    stack.append(PassThroughLifespan)
    if settings.validate_responses:
        # Only response validation looks inside the stack for the edge headers.
        stack.append(EdgeHeadersMiddleware)
    stack.append(PassThroughContext)
    return stack


def operations(*documents: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The handler name Connexion routes by -> the spec's operationId and path template."""
    return {
        handler_name(op["tags"][0], op["operationId"]): (op["operationId"], base + path)
        for document in documents
        for base in [document["servers"][0]["url"].rstrip("/")]
        for path, _method, op in spec.operations(document)
    }


def build_app(
    runtime: Runtime,
    api_spec: dict[str, Any],
    service_spec: dict[str, Any],
    docs: Docs,
    lifespan: Any,
) -> App:
    settings = runtime.settings
    app = App(
        __name__,
        lifespan=lifespan,
        middlewares=middlewares(runtime, api_spec, service_spec, docs),
        validator_map=openapi31.validator_map(),
        security_map=SECURITY_MAP,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        resolver=TagResolver(),
    )
    app.runtime = runtime
    use_prepared_operations(app)
    # The root-mounted service API goes first: mounted after, it would shadow /api/v1.
    app.add_api(service_spec, name="service")
    app.add_api(api_spec, name="api")
    for error in (Exception, HTTPException, connexion.exceptions.ProblemException, Problem):
        app.add_error_handler(error, render_problem)
    return app
