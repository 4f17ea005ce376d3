"""The pool and the transactions handlers run in: tenant, anonymous and system."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.queries import Query, queries


class Principal(Protocol):
    """Who is calling, as proven by their token: identity only, never their role."""

    @property
    def organization_id(self) -> UUID: ...
    @property
    def user_id(self) -> UUID: ...
    @property
    def session_id(self) -> UUID: ...


class SessionNotLive(Exception):
    """The caller's session is revoked or expired, or the user or organization is gone."""


class NotConnected(RuntimeError):
    """db.connect() has not run in this process."""


Row = dict[str, Any]


class Transaction:
    """One database transaction; runs named queries on the pooled psycopg connection."""

    def __init__(self, connection: AsyncConnection[Any], caller: Row | None = None):
        self._connection = connection
        self.caller = caller

    @property
    def role(self) -> str:
        """The caller's role as the database has it now (tenant transactions only)."""
        if self.caller is None:
            raise NotConnected("not a tenant transaction")
        return str(self.caller["role"])

    async def one(self, query: Query, **params: Any) -> Row | None:
        async with self._connection.cursor(row_factory=dict_row) as cur:
            await cur.execute(query.sql, params)
            return await cur.fetchone()

    async def all(self, query: Query, **params: Any) -> list[Row]:
        async with self._connection.cursor(row_factory=dict_row) as cur:
            await cur.execute(query.sql, params)
            return await cur.fetchall()

    async def run(self, query: Query, **params: Any) -> int:
        async with self._connection.cursor() as cur:
            await cur.execute(query.sql, params)
            return cur.rowcount


def sqlalchemy_url(dsn: str) -> str:
    """psycopg 3 through SQLAlchemy, from a libpq URL."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("database URLs must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


class Database:
    """Engines for the app role (RLS applies) and, for jobs, the system role."""

    def __init__(
        self,
        app_dsn: str,
        *,
        system_dsn: str | None = None,
        pool_size: int = 10,
        statement_timeout_ms: int = 10_000,
    ) -> None:
        options = {"options": f"-c statement_timeout={int(statement_timeout_ms)}"}
        self.app_dsn = app_dsn
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(app_dsn),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            connect_args=options,
        )
        self._system_dsn = system_dsn
        self._system_engine: AsyncEngine | None = None

    @asynccontextmanager
    async def _transaction(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection[Any]]:
        async with engine.connect() as conn, conn.begin():
            raw = await conn.get_raw_connection()
            driver: AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            yield driver

    @asynccontextmanager
    async def tenant(self, principal: Principal) -> AsyncIterator[Transaction]:
        # begin_request sets the context transaction-locally (it can never leak to the next
        # user of this pooled connection) and loads the caller's current role in one round trip.
        async with self._transaction(self.engine) as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    _BEGIN_REQUEST.sql,
                    {
                        "organization_id": principal.organization_id,
                        "user_id": principal.user_id,
                        "session_id": principal.session_id,
                    },
                )
                caller = await cur.fetchone()
            if caller is None:
                raise SessionNotLive
            yield Transaction(conn, caller)

    @asynccontextmanager
    async def anonymous(self) -> AsyncIterator[Transaction]:
        """No tenant context: only the pre-tenant SECURITY DEFINER functions see any rows."""
        async with self._transaction(self.engine) as conn:
            yield Transaction(conn)

    @asynccontextmanager
    async def system(self) -> AsyncIterator[Transaction]:
        """The BYPASSRLS role, for operator commands and background jobs only."""
        if self._system_engine is None:
            if self._system_dsn is None:
                raise NotConnected("no system database URL configured")
            self._system_engine = create_async_engine(
                sqlalchemy_url(self._system_dsn), pool_size=2, max_overflow=0
            )
        async with self._transaction(self._system_engine) as conn:
            yield Transaction(conn)

    async def ping(self) -> None:
        async with self._transaction(self.engine) as conn:
            await conn.execute("select 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._system_engine is not None:
            await self._system_engine.dispose()


_BEGIN_REQUEST = queries("session").begin_request
_current: Database | None = None


def connect(app_dsn: str, **options: Any) -> Database:
    global _current
    _current = Database(app_dsn, **options)
    return _current


async def disconnect() -> None:
    global _current
    if _current is not None:
        await _current.dispose()
        _current = None


def current() -> Database:
    if _current is None:
        raise NotConnected("db.connect() has not been called")
    return _current


def tenant(principal: Principal) -> Any:
    return current().tenant(principal)


def anonymous() -> Any:
    return current().anonymous()


def system() -> Any:
    return current().system()
