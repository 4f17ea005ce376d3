"""create_app(): the composition root, building the runtime and the application serving it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from app import adapter
from app.config import Settings
from app.edge import docs, spec
from app.mail import delivery
from app.ops import database_setup
from app.runtime import Runtime
from db import Database


def lifespan_for(runtime: Runtime) -> Any:
    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        settings = runtime.settings
        dsns = await asyncio.to_thread(database_setup.prepare, settings)
        database = Database(
            dsns.app,
            system_dsn=dsns.system,
            pool_size=settings.pool_size,
            pool_timeout_s=settings.pool_timeout_s,
            statement_timeout_ms=settings.statement_timeout_ms,
        )
        await database.open()
        runtime.attach(database)
        metrics = runtime.metrics
        metrics.watch_pool(runtime, database.pool_stats)
        sampler = (
            asyncio.create_task(metrics.sample_pool_forever()) if metrics.multiprocess_dir else None
        )
        runtime.passwords.warm_up()
        worker = delivery.OutboxWorker(
            database,
            delivery.transport_for(settings.smtp_url, settings.mail_from),
            poll_interval_s=settings.mail_poll_interval_ms / 1000,
        )
        # What start-up built (the resolved spec, compiled validators, routes) lives as long as
        # the process: freezing it keeps the cyclic collector from walking it again and again,
        # which otherwise shows as latency spikes under load.
        gc.collect()
        gc.freeze()
        try:
            async with delivery.running(worker):
                yield
        finally:
            gc.unfreeze()
            if sampler is not None:
                sampler.cancel()
            metrics.watch_pool(runtime, None)
            metrics.process_exited()
            runtime.attach(None)
            await database.dispose()
            runtime.passwords.close()
            dsns.close()

    return lifespan


def create_app(settings: Settings | None = None) -> adapter.App:
    """One application and its runtime; several can live in one process."""
    settings = settings or Settings.from_env()
    adapter.install()
    document = spec.load()
    api_spec, service_spec = spec.split(document)
    base = api_spec["servers"][0]["url"]
    allowed = spec.AllowedMethods([(base, api_spec), ("/", service_spec)])
    runtime = Runtime.build(settings, allowed)
    served = docs.Docs(base, document, spec.source(), swagger_ui=settings.swagger_ui)
    with adapter.spec_checked_elsewhere(settings.spec_validated_sha256 == spec.sha256()):
        return adapter.build_app(runtime, api_spec, service_spec, served, lifespan_for(runtime))
