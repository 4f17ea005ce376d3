"""Apply, roll back and report the numbered SQL migrations in sql/migrations.

A small runner instead of Alembic: our migrations are plain SQL files with explicit rollbacks.

Layout: ``sql/roles.sql`` (cluster bootstrap: roles and database rights, idempotent, run by
the admin before every ``apply``) and ``sql/migrations/NNNN_name.up.sql`` with its
``NNNN_name.down.sql``. Each migration runs in its own transaction as ``coditect_owner``
(``SET LOCAL ROLE``), and is recorded in ``public.schema_migrations`` in that same
transaction. Concurrent migrators of one database serialize on an advisory lock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import psycopg

from db.resources import sql_dir

# pg_advisory_lock key held by whoever migrates or rolls back a database ("coditect").
_LOCK_KEY = 0x636F_6469_7465_6374

_FILE_NAME = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.(?P<way>up|down)\.sql$"
)

_CREATE_TABLE = b"""
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON public.schema_migrations TO coditect_app, coditect_system;
"""


class MigrationError(RuntimeError):
    """The migration files or the recorded history are inconsistent, or a migration failed."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    up_path: Path
    down_path: Path

    @cached_property
    def up_sql(self) -> bytes:
        return self.up_path.read_bytes()

    @cached_property
    def down_sql(self) -> bytes:
        return self.down_path.read_bytes()


@dataclass(frozen=True)
class MigrationStatus:
    current: str | None
    expected: str
    pending: tuple[str, ...]

    @property
    def is_current(self) -> bool:
        return not self.pending and self.current == self.expected


def discover() -> list[Migration]:
    """The migrations on disk, oldest first; every up file must have its down file."""
    directory = sql_dir() / "migrations"
    found: dict[str, dict[str, Path]] = {}
    names: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: not named NNNN_name.up.sql or NNNN_name.down.sql")
        version, name = match["version"], match["name"]
        if names.setdefault(version, name) != name:
            raise MigrationError(f"two migrations numbered {version}")
        found.setdefault(version, {})[match["way"]] = path
    migrations = []
    for version in sorted(found):
        ways = found[version]
        if set(ways) != {"up", "down"}:
            missing = ({"up", "down"} - set(ways)).pop()
            raise MigrationError(f"migration {version}_{names[version]} has no {missing} file")
        migrations.append(Migration(version, names[version], ways["up"], ways["down"]))
    if not migrations:
        raise MigrationError(f"no migrations in {directory}")
    return migrations


def expected_version() -> str:
    """The newest migration this code ships."""
    return discover()[-1].version


def apply(admin_dsn: str) -> list[str]:
    """Bootstrap roles, then apply every pending migration; returns the versions applied."""
    migrations = discover()
    roles = sql_dir() / "roles.sql"
    done: list[str] = []
    with _admin_connection(admin_dsn) as conn:
        with conn.transaction():
            _run(conn, roles.read_bytes(), roles)
        with conn.transaction():
            _as_owner(conn)
            conn.execute(_CREATE_TABLE, prepare=False)
        applied = _applied(conn)
        unknown = sorted(set(applied) - {m.version for m in migrations})
        if unknown:
            raise MigrationError(f"database has migrations this code does not know: {unknown}")
        pending = [m for m in migrations if m.version not in applied]
        if pending and applied and pending[0].version < max(applied):
            raise MigrationError(
                f"migration {pending[0].version} is older than the applied {max(applied)}"
            )
        for migration in pending:
            with conn.transaction():
                _as_owner(conn)
                _run(conn, migration.up_sql, migration.up_path)
                _as_owner(conn)
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            done.append(migration.version)
    return done


def rollback(admin_dsn: str) -> str | None:
    """Roll back the newest applied migration; returns its version, or None if none."""
    by_version = {m.version: m for m in discover()}
    with _admin_connection(admin_dsn) as conn:
        if not _table_exists(conn):
            return None
        applied = _applied(conn)
        if not applied:
            return None
        version = max(applied)
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(f"no down file for the applied migration {version}")
        with conn.transaction():
            _as_owner(conn)
            _run(conn, migration.down_sql, migration.down_path)
            _as_owner(conn)
            conn.execute("DELETE FROM public.schema_migrations WHERE version = %s", (version,))
    return version


def status(dsn: str) -> MigrationStatus:
    """Where the database stands; read-only, so the app role can ask (e.g. for /readyz)."""
    versions = [m.version for m in discover()]
    with psycopg.connect(dsn, autocommit=True) as conn:
        applied = _applied(conn) if _table_exists(conn) else []
    return MigrationStatus(
        current=max(applied) if applied else None,
        expected=versions[-1],
        pending=tuple(v for v in versions if v not in applied),
    )


def seed(admin_dsn: str) -> None:
    """Load the development seed data (sql/seeds/dev_seed_data.sql) in one transaction."""
    path = sql_dir() / "seeds" / "dev_seed_data.sql"
    with psycopg.connect(admin_dsn, autocommit=True) as conn, conn.transaction():
        _run(conn, path.read_bytes(), path)


@contextmanager
def _admin_connection(admin_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An admin connection holding the migration lock of its database."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_catalog.pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _as_owner(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("SET LOCAL ROLE coditect_owner", prepare=False)
    conn.execute("SET LOCAL search_path = pg_catalog, public", prepare=False)


def _run(conn: psycopg.Connection[tuple[object, ...]], text: bytes, path: Path) -> None:
    """Execute a whole SQL file (several statements: simple query protocol, no parameters)."""
    try:
        conn.execute(text, prepare=False)
    except psycopg.Error as e:
        raise MigrationError(f"{path.name}: {e}") from e


def _table_exists(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT pg_catalog.to_regclass('public.schema_migrations')").fetchone()
    return row is not None and row[0] is not None


def _applied(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute("SELECT version FROM public.schema_migrations ORDER BY version")
    return [str(row[0]) for row in rows]
