"""Embedded PostgreSQL (the pip-installed pgserver binaries) for machines without a server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "coditect"


@dataclass(frozen=True)
class Cluster:
    """A running PostgreSQL reached through a unix socket with trust authentication."""

    socket_dir: str
    handle: object | None = None

    def dsn(self, user: str, dbname: str = DATABASE_NAME) -> str:
        return f"postgresql://{user}@/{dbname}?host={self.socket_dir}"

    def admin_dsn(self, dbname: str = DATABASE_NAME) -> str:
        return self.dsn("postgres", dbname)

    def ensure_database(self, dbname: str = DATABASE_NAME) -> None:
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (dbname,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))

    def drop_database(self, dbname: str) -> None:
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )

    def stop(self) -> None:
        cleanup = getattr(self.handle, "cleanup", None)
        if cleanup is not None:
            cleanup()


def start(pgdata: Path) -> Cluster:
    """Start (or attach to) the cluster in `pgdata`; its data survives restarts."""
    import pgserver  # imported lazily: only the embedded mode needs it

    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    host = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    log.info("embedded PostgreSQL running in %s (socket %s)", pgdata, host)
    return Cluster(socket_dir=host, handle=server)
