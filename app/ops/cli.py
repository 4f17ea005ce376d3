"""coditect-cloud: serve the API, and migrate, roll back or seed its database."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from app.config import SPEC_VALIDATED, ConfigError, Settings
from app.ops import database_setup, license_admin, logs, operator_key_admin
from db import migrations

log = logging.getLogger("coditect")


def _admin_dsns(settings: Settings) -> database_setup.Dsns:
    if settings.database_url is None:
        return database_setup.start_embedded(settings)
    if settings.database_admin_url is None:
        raise ConfigError("DATABASE_ADMIN_URL is required to change an external database's schema")
    return database_setup.Dsns(
        app=settings.database_url,
        system=settings.database_system_url,
        admin=settings.database_admin_url,
    )


def _operator(settings: Settings, args: argparse.Namespace) -> int:
    """Operator commands run as the system role; they never need the admin URL."""
    dsns = database_setup.prepare(settings)
    try:
        if args.command == "operator-key":
            return operator_key_admin.run(args, dsns.system)
        return license_admin.run(args, dsns.system)
    finally:
        dsns.close()


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory() -> Iterator[Path]:
    """Where the workers write their metrics for each other's scrapes: the operator's
    PROMETHEUS_MULTIPROC_DIR emptied of a previous run's files, or a temporary directory
    removed at exit. Always, not only with several workers: one worker or many, /metrics
    reads the same way. Set before anything imports prometheus_client, which reads it once."""
    given = os.environ.get(MULTIPROCESS_DIR)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        # Counters of processes that are gone would otherwise be summed into this run's.
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="coditect-metrics-"))
    os.environ[MULTIPROCESS_DIR] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        shutil.rmtree(path, ignore_errors=True)


def validate_contract_for_workers() -> None:
    """Validate openapi.yaml here, once, and tell the workers which bytes were validated:
    each would otherwise import the OpenAPI validator and check the same document again."""
    from app import adapter
    from app.edge import spec

    adapter.install()
    try:
        adapter.validate_documents(*spec.split(spec.load()))
    except adapter.InvalidContract as e:
        raise ConfigError(f"openapi.yaml is not a valid OpenAPI document: {e}") from None
    os.environ[SPEC_VALIDATED] = spec.sha256()


def _stop(signum: int, _frame: FrameType | None) -> None:
    # uvicorn catches SIGTERM, drains, restores this handler and raises the signal again:
    # here that becomes an orderly exit, so serve()'s cleanup (the embedded database) runs.
    raise SystemExit(0)


def serve(
    settings: Settings, host: str, port: int, workers: int, log_config: dict[str, Any]
) -> None:
    signal.signal(signal.SIGTERM, _stop)
    with metrics_directory():
        from app import adapter
        from app.adapter import workers as uvicorn_workers

        try:
            # Before any worker starts, so an untested framework is one clear line, not a
            # traceback per worker.
            adapter.check_versions()
        except adapter.UntestedFramework as e:
            raise ConfigError(str(e)) from None
        validate_contract_for_workers()
        dsns = database_setup.prepare(settings)
        try:
            # Workers inherit a ready, migrated database: they connect as the app role and
            # never migrate.
            os.environ["DATABASE_URL"] = dsns.app
            if dsns.system:
                os.environ["DATABASE_SYSTEM_URL"] = dsns.system
            os.environ.pop("DATABASE_ADMIN_URL", None)
            uvicorn_workers.serve(
                "app.main:create_app",
                host=host,
                port=port,
                workers=workers,
                log_level=settings.log_level,
                log_config=log_config,
                forwarded_allow_ips=settings.forwarded_allow_ips,
                shutdown_grace_s=settings.shutdown_grace_s,
                max_header_bytes=settings.max_header_bytes,
            )
        finally:
            dsns.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coditect-cloud", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser(
        "serve", help="run the API (embedded PostgreSQL without DATABASE_URL)"
    )
    serve_cmd.add_argument("--host", help="default: HOST, else 127.0.0.1")
    serve_cmd.add_argument("--port", type=int, help="default: PORT, else 8000")
    serve_cmd.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="apply pending migrations")
    commands.add_parser("rollback", help="roll back the newest migration")
    commands.add_parser("seed", help="load the development seed data")
    license_admin.register(commands)
    operator_key_admin.register(commands)
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
        log_config = logs.configure(settings.log_level, settings.log_format, settings.access_log)
        if args.command == "serve":
            serve(
                settings,
                args.host or settings.host,
                args.port or settings.port,
                args.workers,
                log_config,
            )
            return 0
        if args.command in ("license", "operator-key"):
            return _operator(settings, args)
        dsns = _admin_dsns(settings)
        assert dsns.admin is not None
        try:
            if args.command == "migrate":
                applied = migrations.apply(dsns.admin)
                print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
            elif args.command == "rollback":
                rolled = migrations.rollback(dsns.admin)
                print(f"rolled back: {rolled or 'nothing'}")
            elif args.command == "seed":
                migrations.apply(dsns.admin)
                migrations.seed(dsns.admin)
                print("seed data loaded")
        finally:
            dsns.close()
    except ConfigError as e:
        print(f"coditect-cloud: {e}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as e:
        # migrate, rollback, seed: the database is unreachable or refused the login. libpq's
        # message names the host, port and user, never a password.
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"coditect-cloud: cannot use the database: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
