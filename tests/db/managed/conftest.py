"""Managed PostgreSQL as on Cloud SQL: an admin with only LOGIN CREATEROLE CREATEDB migrates.

Roles are cluster-wide and the suite's own cluster (pg_cluster) had its coditect_* roles
created by a superuser, which a CREATEROLE admin cannot manage on PostgreSQL 16. So each
server here is one where the admin creates them itself, as on a new Cloud SQL instance: a
cluster of our own from the pgserver binaries (PostgreSQL 16, with its ADMIN-only grants to
a role's creator), and the PostgreSQL at 127.0.0.1:5432 if one answers (Debian 12's is 15,
whose CREATEROLE may grant any role). The tests of this folder run on both, each against a
database created and owned by the admin and migrated up, down to nothing and up again.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from db import embedded, migrations
from tests.conftest import TestDatabase

# The second server: Debian's PostgreSQL, as CI machines have it (trust auth on loopback).
LOCAL_SERVER = "127.0.0.1"


@dataclass(frozen=True)
class ManagedServer:
    cluster: embedded.Cluster
    admin: str  # LOGIN CREATEROLE CREATEDB, nothing more
    version: int

    def admin_dsn(self, dbname: str) -> str:
        return self.cluster.dsn(self.admin, dbname)


@dataclass(frozen=True)
class ManagedDatabase(TestDatabase):
    """A database owned by the managed admin; admin_dsn is that admin, not a superuser."""

    admin: str = ""

    @property
    def admin_dsn(self) -> str:
        return self.cluster.dsn(self.admin, self.name)


def _own_cluster() -> Iterator[embedded.Cluster]:
    with tempfile.TemporaryDirectory(prefix="coditect-managed-") as pgdata:
        cluster = embedded.start(Path(pgdata))
        try:
            yield cluster
        finally:
            cluster.stop()


def _local_server() -> Iterator[embedded.Cluster]:
    cluster = embedded.Cluster(socket_dir=LOCAL_SERVER)
    try:
        psycopg.connect(cluster.admin_dsn("postgres"), connect_timeout=3).close()
    except psycopg.OperationalError as e:
        pytest.skip(f"no PostgreSQL with trust auth at {LOCAL_SERVER}:5432 ({e})")
    yield cluster


@pytest.fixture(scope="session", params=["own-cluster", "local-server"])
def managed_server(request: pytest.FixtureRequest) -> Iterator[ManagedServer]:
    clusters = _own_cluster() if request.param == "own-cluster" else _local_server()
    cluster = next(clusters)
    admin = f"managed_admin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.admin_dsn("postgres"), autocommit=True) as su:
        version = int(su.execute("show server_version_num").fetchone()[0]) // 10000  # type: ignore[index]
        su.execute(
            sql.SQL("create role {} login createrole createdb").format(sql.Identifier(admin))
        )
    try:
        yield ManagedServer(cluster, admin, version)
    finally:
        if request.param == "local-server":  # a shared server: leave no database or admin
            _drop_admin(cluster, admin)
        next(clusters, None)


def _drop_admin(cluster: embedded.Cluster, admin: str) -> None:
    with psycopg.connect(cluster.admin_dsn("postgres"), autocommit=True) as su:
        databases = su.execute(
            "select datname from pg_database where datdba = %s::regrole", (admin,)
        ).fetchall()
        for (name,) in databases:
            su.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
        # The memberships it granted go with it; the coditect_* roles it created stay, as
        # they would on an instance.
        su.execute(sql.SQL("drop owned by {}").format(sql.Identifier(admin)))
        su.execute(sql.SQL("drop role {}").format(sql.Identifier(admin)))


def create_managed_database(server: ManagedServer) -> ManagedDatabase:
    """A new database created by the managed admin (so owned by it), not migrated."""
    name = f"managed_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return ManagedDatabase(server.cluster, name, admin=server.admin)


@pytest.fixture(scope="session")
def database(managed_server: ManagedServer) -> Iterator[ManagedDatabase]:
    """Overrides the suite's database for this folder: migrated by the managed admin, up,
    down to nothing and up again, so the tests see what a round trip leaves."""
    db = create_managed_database(managed_server)
    migrations.apply(db.admin_dsn)
    while migrations.rollback(db.admin_dsn) is not None:
        pass
    migrations.apply(db.admin_dsn)
    yield db
    managed_server.cluster.drop_database(db.name)
