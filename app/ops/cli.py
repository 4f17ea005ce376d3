"""coditect-cloud: serve the API, and migrate, roll back or seed its database."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from app.config import ConfigError, Settings
from app.ops import database_setup, license_admin
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


def _license(settings: Settings, args: argparse.Namespace) -> int:
    """Operator commands run as the system role; they never need the admin URL."""
    dsns = database_setup.prepare(settings)
    try:
        return license_admin.run(args, dsns.system)
    finally:
        dsns.close()


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    from app import adapter
    from app.adapter import workers as uvicorn_workers

    try:
        # Before any worker starts, so an untested framework is one clear line, not a traceback
        # per worker.
        adapter.check_versions()
    except adapter.UntestedFramework as e:
        raise ConfigError(str(e)) from None
    dsns = database_setup.prepare(settings)
    # Workers inherit a ready, migrated database: they connect as the app role and never migrate.
    os.environ["DATABASE_URL"] = dsns.app
    if dsns.system:
        os.environ["DATABASE_SYSTEM_URL"] = dsns.system
    os.environ.pop("DATABASE_ADMIN_URL", None)
    try:
        uvicorn_workers.serve(
            "app.main:create_app",
            host=host,
            port=port,
            workers=workers,
            log_level=os.environ.get("LOG_LEVEL", "info").lower(),
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
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="apply pending migrations")
    commands.add_parser("rollback", help="roll back the newest migration")
    commands.add_parser("seed", help="load the development seed data")
    license_admin.register(commands)
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            serve(settings, args.host, args.port, args.workers)
            return 0
        if args.command == "license":
            return _license(settings, args)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
