"""Embedded PostgreSQL (the pip-installed pgserver binaries) for machines without a server."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "coditect"
# Machine-wide, like the system user pgserver creates: in the system temp directory.
START_LOCK = Path(tempfile.gettempdir()) / "coditect-embedded-postgres.lock"


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
    with _starting_alone():
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    host = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    log.info("embedded PostgreSQL running in %s (socket %s)", pgdata, host)
    return Cluster(socket_dir=host, handle=server)


@contextmanager
def _starting_alone() -> Iterator[None]:
    """Holds a machine-wide file lock while pgserver starts a server. As root, pgserver creates
    its system user `pgserver` with useradd before taking any lock of its own (two first
    starts race: one useradd fails), then chowns and chmods the data and socket directories;
    its own lock lives under XDG_RUNTIME_DIR, which differs between sessions. Other starts
    wait seconds at most (initdb and pg_ctl start), and the kernel releases the lock of a
    process that dies."""
    if os.name != "posix":  # no system user to create, no fcntl
        yield
        return
    import fcntl

    # Read-only is enough for flock, so a lock file root created stays usable by anyone.
    fd = os.open(START_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
