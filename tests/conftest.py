"""Shared fixtures: an embedded PostgreSQL cluster and fresh, migrated databases on it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.config import PasswordHashing, Settings
from db import embedded

# argon2id at its smallest: the suite hashes hundreds of passwords.
CHEAP_HASHING = PasswordHashing(time_cost=1, memory_kib=8, parallelism=1)


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False  # not a test class, despite the name

    cluster: embedded.Cluster
    name: str

    @property
    def admin_dsn(self) -> str:
        return self.cluster.admin_dsn(self.name)

    @property
    def superuser_dsn(self) -> str:
        """For tests arranging and inspecting state across tenants (no role in production
        bypasses RLS; the embedded cluster's admin is a superuser)."""
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


@pytest.fixture(scope="session")
def app_settings(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The server as production runs it (app role, no admin URL), plus response validation,
    and passwords hashed at a test's cost (tests/app/test_passwords.py checks production's)."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": database.app_dsn,
            "DATABASE_SYSTEM_URL": database.system_dsn,
            "CODITECT_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "CODITECT_VALIDATE_RESPONSES": "true",
            "MAX_BODY_BYTES": "65536",
            # Generous limits: the rate-limit tests build their own app with the defaults.
            "RATE_LIMIT_ANONYMOUS": "100000/minute",
            "RATE_LIMIT_STANDARD": "100000/minute",
            "RATE_LIMIT_OPERATOR": "100000/minute",
        }
    )
    return dataclasses.replace(settings, password_hashing=CHEAP_HASHING)


@pytest.fixture(scope="session")
def client(app_settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(app_settings), raise_server_exceptions=False) as test_client:
        yield test_client
