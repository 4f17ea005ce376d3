"""Shared fixtures: an embedded PostgreSQL cluster and fresh, migrated databases on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from db import embedded


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False  # not a test class, despite the name

    cluster: embedded.Cluster
    name: str

    @property
    def admin_dsn(self) -> str:
        return self.cluster.admin_dsn(self.name)

    @property
    def owner_dsn(self) -> str:
        return self.cluster.dsn("coditect_owner", self.name)

    @property
    def app_dsn(self) -> str:
        return self.cluster.dsn("coditect_app", self.name)

    @property
    def system_dsn(self) -> str:
        return self.cluster.dsn("coditect_system", self.name)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.Cluster]:
    cluster = embedded.start(Path(tmp_path_factory.mktemp("pgdata")))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def make_database(pg_cluster: embedded.Cluster) -> Iterator[Callable[[], TestDatabase]]:
    """A factory of new, empty databases (not migrated), dropped at the end of the session."""
    created: list[str] = []

    def make() -> TestDatabase:
        name = f"test_{uuid.uuid4().hex[:12]}"
        pg_cluster.ensure_database(name)
        created.append(name)
        return TestDatabase(pg_cluster, name)

    yield make
    for name in created:
        pg_cluster.drop_database(name)


@pytest.fixture(scope="session")
def database(make_database: Callable[[], TestDatabase]) -> TestDatabase:
    """One freshly migrated database shared by the session; tests keep their data to themselves."""
    from db import migrations

    fresh = make_database()
    migrations.apply(fresh.admin_dsn)
    return fresh
