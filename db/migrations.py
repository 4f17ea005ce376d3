"""Apply, roll back and report the numbered SQL migrations and the function files they require.

A small runner instead of Alembic: our migrations are plain SQL files with explicit rollbacks.

Layout: ``sql/roles.sql`` (cluster bootstrap: roles and database rights, idempotent, run by the
admin before every ``apply``; the admin is a superuser or, on managed PostgreSQL, a ``LOGIN
CREATEROLE CREATEDB`` role owning the database); ``sql/migrations/NNNN_name.up.sql`` with its
``NNNN_name.down.sql``: the schema (types, tables, triggers, policies, table and schema
grants); and ``sql/functions/<schema>.<function>.sql``: each function of schemas app and
pretenant, kept once, whole (CREATE OR REPLACE, then its owner and EXECUTE privileges), so that
changing a function is a diff of its one file. These are repeatable migrations, as Flyway calls
them:

* A function file starts with ``-- requires: NNNN``. It is applied in the transaction of
  migration NNNN, right after its up file, so it may use anything up to NNNN and every later
  migration may use it (policies, triggers, CHECKs). Files requiring the same version apply
  in file-name order. Rolling NNNN back drops the function (every overload of the name the
  file is named for) before running the down file, in the same transaction.
* Afterwards a file is applied again, in a transaction of its own, whenever its checksum
  (sha256 of the file) differs from the one recorded in ``public.schema_functions``: before
  any pending migration, which may rely on the new definition. A database migrated before
  function files existed has no checksums, so each file is applied once over its function.
* A function whose definition needs what a new migration adds must require that migration:
  it is then created there on every database, so no earlier migration may use it.

Each migration and each function file runs in its own transaction as ``coditect_owner``
(``SET LOCAL ROLE``) and is recorded, in ``public.schema_migrations`` or
``public.schema_functions``, in that same transaction. Concurrent migrators of one database
serialize on an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql

from db.resources import sql_dir

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# pg_advisory_lock key held by whoever migrates or rolls back a database ("coditect").
_LOCK_KEY = 0x636F_6469_7465_6374

_FILE_NAME = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.(?P<way>up|down)\.sql$"
)
_FUNCTION_FILE_NAME = re.compile(
    r"^(?P<schema>[a-z][a-z0-9_]*)\.(?P<function>[a-z][a-z0-9_]*)\.sql$"
)
_REQUIRES = re.compile(rb"\A-- requires: (?P<version>\d{4})\n")

_CREATE_TABLES = b"""
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON public.schema_migrations TO coditect_app, coditect_system;
CREATE TABLE IF NOT EXISTS public.schema_functions (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON public.schema_functions TO coditect_app, coditect_system;
"""


class MigrationError(RuntimeError):
    """The migration files or the recorded history are inconsistent, or a migration failed."""


@dataclass(frozen=True)
class FunctionFile:
    """sql/functions/<schema>.<function>.sql: one function, applied with the version it requires."""

    schema: str
    function: str
    requires: str
    path: Path
    sql: bytes

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.function}"

    @cached_property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    up_path: Path
    down_path: Path
    functions: tuple[FunctionFile, ...] = ()  # the function files that require this version

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
    # Function files of applied migrations whose checksum is not the one recorded.
    stale_functions: tuple[str, ...] = ()

    @property
    def is_current(self) -> bool:
        return not self.pending and not self.stale_functions and self.current == self.expected


def discover() -> list[Migration]:
    """The migrations on disk, oldest first, each with the function files that require it."""
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
    if not found:
        raise MigrationError(f"no migrations in {directory}")
    functions = _discover_functions(set(found))
    migrations = []
    for version in sorted(found):
        ways = found[version]
        if set(ways) != {"up", "down"}:
            missing = ({"up", "down"} - set(ways)).pop()
            raise MigrationError(f"migration {version}_{names[version]} has no {missing} file")
        requiring = tuple(f for f in functions if f.requires == version)
        migrations.append(Migration(version, names[version], ways["up"], ways["down"], requiring))
    return migrations


def _discover_functions(versions: set[str]) -> list[FunctionFile]:
    """The function files on disk, in file-name order (the order they apply in)."""
    found = []
    for path in sorted((sql_dir() / "functions").glob("*.sql")):
        match = _FUNCTION_FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: not named <schema>.<function>.sql")
        text = path.read_bytes()
        header = _REQUIRES.match(text)
        if header is None:
            raise MigrationError(f"{path.name}: does not start with a line '-- requires: NNNN'")
        requires = header["version"].decode()
        if requires not in versions:
            raise MigrationError(f"{path.name}: requires {requires}, which is not a migration")
        found.append(FunctionFile(match["schema"], match["function"], requires, path, text))
    return found


def expected_version() -> str:
    """The newest migration this code ships."""
    return discover()[-1].version


def apply(admin_dsn: str) -> list[str]:
    """Bootstrap roles, bring the function files of applied migrations up to date, then apply
    every pending migration with its function files; returns the versions applied."""
    migrations = discover()
    roles = sql_dir() / "roles.sql"
    done: list[str] = []
    with _admin_connection(admin_dsn) as conn:
        with conn.transaction():
            _run(conn, roles.read_bytes(), roles)
        _create_tables(conn)
        applied = _as_owner_read(conn, _applied)
        unknown = sorted(set(applied) - {m.version for m in migrations})
        if unknown:
            raise MigrationError(f"database has migrations this code does not know: {unknown}")
        pending = [m for m in migrations if m.version not in applied]
        if pending and applied and pending[0].version < max(applied):
            raise MigrationError(
                f"migration {pending[0].version} is older than the applied {max(applied)}"
            )
        with conn.transaction():
            # A file that is gone must not be taken for applied if it comes back: its function
            # may have been dropped since (a migration drops a function whose file it removes).
            _as_owner(conn)
            conn.execute(
                "DELETE FROM public.schema_functions WHERE name <> ALL(%s)",
                ([f.name for m in migrations for f in m.functions],),
            )
        recorded = _as_owner_read(conn, _recorded)
        for migration in migrations:
            if migration.version not in applied:
                continue
            for function in migration.functions:
                if recorded.get(function.name) != function.checksum:
                    with conn.transaction():
                        _apply_function(conn, function)
                    log.info("applied %s (not applied at this checksum before)", function.path.name)
        for migration in pending:
            with conn.transaction():
                _as_owner(conn)
                _run(conn, migration.up_sql, migration.up_path)
                # Applied whatever their recorded checksum: this version's rollback dropped
                # them, or they never existed.
                for function in migration.functions:
                    _apply_function(conn, function)
                _as_owner(conn)
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            done.append(migration.version)
    return done


def rollback(admin_dsn: str) -> str | None:
    """Roll back the newest applied migration and drop the functions that require it;
    returns its version, or None if none."""
    by_version = {m.version: m for m in discover()}
    with _admin_connection(admin_dsn) as conn:
        if not _table_exists(conn, "schema_migrations"):
            return None
        _create_tables(conn)  # schema_functions, for databases migrated before it existed
        applied = _as_owner_read(conn, _applied)
        if not applied:
            return None
        version = max(applied)
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(f"no down file for the applied migration {version}")
        with conn.transaction():
            # Before the down file, which drops what the functions are declared with (types,
            # schemas). Everything that uses them belongs to later versions, rolled back already.
            for function in reversed(migration.functions):
                _drop_function(conn, function)
            _as_owner(conn)
            _run(conn, migration.down_sql, migration.down_path)
            _as_owner(conn)
            conn.execute("DELETE FROM public.schema_migrations WHERE version = %s", (version,))
    return version


def status(dsn: str) -> MigrationStatus:
    """Where the database stands; read-only, so the app role can ask (e.g. for /readyz)."""
    migrations = discover()
    with psycopg.connect(dsn, autocommit=True) as conn:
        applied = _applied(conn) if _table_exists(conn, "schema_migrations") else []
        recorded = _recorded(conn) if _table_exists(conn, "schema_functions") else {}
    return MigrationStatus(
        current=max(applied) if applied else None,
        expected=migrations[-1].version,
        pending=tuple(m.version for m in migrations if m.version not in applied),
        stale_functions=tuple(
            f.name
            for m in migrations
            if m.version in applied
            for f in m.functions
            if recorded.get(f.name) != f.checksum
        ),
    )


def seed(admin_dsn: str) -> None:
    """Load the development seed data (sql/seeds/dev_seed_data.sql) in one transaction, as
    coditect_system: the admin bypasses RLS only when it is a superuser, which a managed
    PostgreSQL's admin is not (it reaches the system role through coditect_owner)."""
    path = sql_dir() / "seeds" / "dev_seed_data.sql"
    with psycopg.connect(admin_dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL ROLE coditect_system", prepare=False)
        conn.execute("SET LOCAL search_path = pg_catalog, public", prepare=False)
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


def _as_owner_read(
    conn: psycopg.Connection[tuple[object, ...]],
    read: Callable[[psycopg.Connection[tuple[object, ...]]], _T],
) -> _T:
    """A read of the runner's tables as their owner: a managed admin has no rights on them."""
    with conn.transaction():
        _as_owner(conn)
        return read(conn)


def _create_tables(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with conn.transaction():
        _as_owner(conn)
        conn.execute(_CREATE_TABLES, prepare=False)


def _run(conn: psycopg.Connection[tuple[object, ...]], text: bytes, path: Path) -> None:
    """Execute a whole SQL file (several statements: simple query protocol, no parameters)."""
    try:
        conn.execute(text, prepare=False)
    except psycopg.Error as e:
        raise MigrationError(f"{path.name}: {e}") from e


def _apply_function(conn: psycopg.Connection[tuple[object, ...]], function: FunctionFile) -> None:
    """Run a function file and record its checksum, in the caller's transaction."""
    _as_owner(conn)
    _run(conn, function.sql, function.path)
    _as_owner(conn)
    # Rollback finds the function by the file's name: a file must define the function it is
    # named for, or its function would outlive the rollback.
    if not _overloads(conn, function):
        raise MigrationError(f"{function.path.name}: creates no function {function.name}")
    conn.execute(
        "INSERT INTO public.schema_functions (name, checksum) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE"
        " SET checksum = EXCLUDED.checksum, applied_at = EXCLUDED.applied_at",
        (function.name, function.checksum),
    )


def _drop_function(conn: psycopg.Connection[tuple[object, ...]], function: FunctionFile) -> None:
    """Drop every overload of the file's function (an argument list changed in the file
    leaves the old one behind) and forget its checksum, in the caller's transaction."""
    _as_owner(conn)
    for signature in _overloads(conn, function):
        # regprocedure's text is the catalog's own quoting of the name and argument types.
        conn.execute(sql.SQL("DROP FUNCTION {}").format(sql.SQL(signature)), prepare=False)
    conn.execute("DELETE FROM public.schema_functions WHERE name = %s", (function.name,))


def _overloads(conn: psycopg.Connection[tuple[object, ...]], function: FunctionFile) -> list[str]:
    rows = conn.execute(
        "SELECT p.oid::pg_catalog.regprocedure::text"
        "  FROM pg_catalog.pg_proc AS p"
        "  JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname = %s",
        (function.schema, function.function),
    )
    return [str(row[0]) for row in rows]


def _table_exists(conn: psycopg.Connection[tuple[object, ...]], table: str) -> bool:
    row = conn.execute("SELECT pg_catalog.to_regclass(%s)", (f"public.{table}",)).fetchone()
    return row is not None and row[0] is not None


def _applied(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute("SELECT version FROM public.schema_migrations ORDER BY version")
    return [str(row[0]) for row in rows]


def _recorded(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    rows = conn.execute("SELECT name, checksum FROM public.schema_functions")
    return {str(row[0]): str(row[1]) for row in rows}
