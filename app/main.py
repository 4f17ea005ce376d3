"""create_app(): the Connexion AsyncApp serving openapi.yaml, with problems for every error."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import connexion.exceptions
from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from starlette.exceptions import HTTPException

import db
from app import database_setup, openapi31, operations, passwords, security, spec
from app.config import Settings
from app.errors import render_problem, use_allowed_methods
from app.keys import load_keyset
from app.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.pagination import CursorCodec
from app.problems import Problem
from app.ratelimit import EdgeHeadersMiddleware, RateLimiter, RateLimitMiddleware
from app.resolver import TagResolver
from app.routing import LiteralRoutes, SpecRoutesOnly
from app.runtime import Runtime, set_current


def lifespan_for(settings: Settings, limiter: RateLimiter) -> Any:
    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        dsns = await asyncio.to_thread(database_setup.prepare, settings)
        keys = await asyncio.to_thread(
            load_keyset,
            settings.data_dir,
            settings.jwt_private_key_file,
            settings.license_signing_key_file,
            settings.jwt_previous_key_files,
        )
        security.configure(
            security.TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        )
        await db.connect(
            dsns.app,
            system_dsn=dsns.system,
            pool_size=settings.pool_size,
            statement_timeout_ms=settings.statement_timeout_ms,
        )
        set_current(
            Runtime(
                settings=settings,
                keys=keys,
                cursors=CursorCodec(keys.cursor_secret()),
                limiter=limiter,
            )
        )
        passwords.warm_up()
        # What start-up built (the resolved spec, compiled validators, routes) lives as long as
        # the process: freezing it keeps the cyclic collector from walking it again and again,
        # which otherwise shows as latency spikes under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            set_current(None)
            await db.disconnect()
            dsns.close()

    return lifespan


def middlewares_for(settings: Settings) -> list[Any]:
    """Connexion's stack, without the response validator when it would only pass through."""
    return [
        m
        for m in ConnexionMiddleware.default_middlewares
        if settings.validate_responses or m is not ResponseValidationMiddleware
    ]


def create_app(settings: Settings | None = None) -> AsyncApp:
    settings = settings or Settings.from_env()
    openapi31.install()
    api_spec, service_spec = spec.split(spec.load())
    limiter = RateLimiter(settings)
    allowed = spec.AllowedMethods([(api_spec["servers"][0]["url"], api_spec), ("/", service_spec)])
    use_allowed_methods(allowed)
    app = AsyncApp(
        __name__,
        lifespan=lifespan_for(settings, limiter),
        middlewares=middlewares_for(settings),
        validator_map=openapi31.VALIDATOR_MAP,
        security_map=security.SECURITY_MAP,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        resolver=TagResolver(),
    )
    operations.use_prepared_operations(app)
    # The root-mounted service API goes first: mounted after, it would shadow /api/v1.
    app.add_api(
        service_spec,
        name="service",
        swagger_ui_options=SwaggerUIOptions(swagger_ui=False, serve_spec=False),
    )
    app.add_api(
        api_spec,
        name="api",
        swagger_ui_options=SwaggerUIOptions(
            swagger_ui=settings.swagger_ui, spec_path="/openapi.json"
        ),
    )
    for error in (Exception, HTTPException, connexion.exceptions.ProblemException, Problem):
        app.add_error_handler(error, render_problem)
    app.add_middleware(RequestIdMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(
        RateLimitMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        limiter=limiter,
        identify=security.identify,
        service_paths=frozenset(service_spec["paths"]),
        validate_path=spec.operation_url_path(api_spec, "validateLicense"),
    )
    app.add_middleware(
        spec.LiteralPathGuard, position=MiddlewarePosition.BEFORE_SWAGGER, allowed=allowed
    )
    if settings.validate_responses:
        # Only response validation looks inside the stack for the edge headers.
        app.add_middleware(EdgeHeadersMiddleware, position=MiddlewarePosition.BEFORE_CONTEXT)
    app.add_middleware(
        BodyLimitMiddleware,
        position=MiddlewarePosition.BEFORE_SWAGGER,
        max_bytes=settings.max_body_bytes,
    )
    # Swapped in last: add_middleware finds BEFORE_SWAGGER by the stock class itself.
    swaps = {SwaggerUIMiddleware: SpecRoutesOnly, RoutingMiddleware: LiteralRoutes}
    app.middleware.middlewares = [swaps.get(m, m) for m in app.middleware.middlewares]
    return app
