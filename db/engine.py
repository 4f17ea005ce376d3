"""The pool and the transactions handlers run in: tenant, anonymous and system."""

from __future__ import annotations

import select
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol
from uuid import UUID

import orjson
import psycopg
from psycopg import AsyncConnection, AsyncCursor, pq
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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


class Unavailable(Exception):
    """The database cannot serve now: no pooled connection within the pool timeout, or the
    connection was lost (a client-side error with no SQLSTATE). Server-reported faults keep
    their psycopg error and SQLSTATE (class 08, 53, 57P01-57P03), mapped where SQLSTATEs are."""


class NotConnected(RuntimeError):
    """db.connect() has not run in this process."""


Row = dict[str, Any]

# A tighter bound on the pool wait for the work of one task than the pool's own timeout.
_pool_wait_bound: ContextVar[float | None] = ContextVar("pool_wait_bound", default=None)


@contextmanager
def pool_wait_at_most(seconds: float) -> Iterator[None]:
    """Within it, waiting for a pooled connection gives up (Unavailable) after `seconds` at
    most: for probes that must answer within their prober's own timeout whatever the
    database does."""
    token = _pool_wait_bound.set(seconds)
    try:
        yield
    finally:
        _pool_wait_bound.reset(token)


class Transaction:
    """One database transaction; runs named queries on the pooled psycopg connection."""

    def __init__(
        self,
        connection: AsyncConnection[Any],
        caller: Row | None = None,
        cursor: AsyncCursor[Row] | None = None,
    ):
        self._connection = connection
        self.caller = caller
        # One cursor for the transaction's statements, which run one after another (never
        # concurrently: one connection), where a cursor per statement cost psycopg a cursor
        # and an adapters map each time; with tenant() entering its connection and transaction
        # directly, -3.9% of a getCurrentUser (1,897,137 -> 1,822,357 instructions, measured
        # 2026-11-30).
        self._cursor = cursor

    def _rows(self) -> AsyncCursor[Row]:
        if self._cursor is None:
            self._cursor = self._connection.cursor(row_factory=dict_row)
        return self._cursor

    @property
    def role(self) -> str:
        """The caller's role as the database has it now (tenant transactions only)."""
        if self.caller is None:
            raise NotConnected("not a tenant transaction")
        return str(self.caller["role"])

    async def one(self, query: Query, **params: Any) -> Row | None:
        cur = self._rows()
        await cur.execute(query.sql, params)
        return await cur.fetchone()

    async def all(self, query: Query, **params: Any) -> list[Row]:
        cur = self._rows()
        await cur.execute(query.sql, params)
        return await cur.fetchall()

    async def keyset(
        self,
        first: Query,
        after: Query,
        *,
        after_key: tuple[Any, Any] | None,
        **params: Any,
    ) -> list[Row]:
        """One page of a keyset list: `first` starts it; `after` continues below `after_key`
        (the last row's (created_at, id)) and takes :after_created_at and :after_id."""
        if after_key is None:
            return await self.all(first, **params)
        created_at, row_id = after_key
        return await self.all(after, after_created_at=created_at, after_id=row_id, **params)

    async def run(self, query: Query, **params: Any) -> int:
        cur = self._rows()
        await cur.execute(query.sql, params)
        return cur.rowcount


class Database:
    """Connection pools for the app role (RLS applies) and, for jobs, the system role."""

    def __init__(
        self,
        app_dsn: str,
        *,
        system_dsn: str | None = None,
        pool_size: int = 10,
        pool_timeout_s: float = 5.0,
        statement_timeout_ms: int = 10_000,
    ) -> None:
        # Autocommit connections: a single-statement call is its own transaction (one round
        # trip), and multi-statement work opens an explicit one. A connection that cannot be
        # made again gives up after the pool timeout (reconnect_timeout), not psycopg_pool's
        # 5 minutes of ever longer waits (1, 2, 4... s: the pool stayed empty for as long as
        # the outage had lasted after the database was back); a request that then finds the
        # pool short starts a new attempt at once. A fixed-size pool: overflow
        # connections that open and close under load cost a backend start each (~ms of CPU).
        self._pool = AsyncConnectionPool(
            app_dsn,
            min_size=pool_size,
            max_size=pool_size,
            max_lifetime=1800,
            open=False,
            kwargs=_connect_options(statement_timeout_ms),
            configure=_prepare_and_warm_up,
            # A pooled connection is checked before it is handed out: one the server closed
            # meanwhile (restart, failover, pg_terminate_backend) is replaced instead of
            # failing a request.
            check=check_idle_connection,
            timeout=pool_timeout_s,
            reconnect_timeout=pool_timeout_s,
            name="app",
        )
        self._pool_timeout_s = pool_timeout_s
        self._system_dsn = system_dsn
        self._statement_timeout_ms = statement_timeout_ms
        self._system_pool: AsyncConnectionPool[Any] | None = None

    async def open(self, *, wait: bool = True) -> None:
        """Open the pool; by default wait until it holds its connections (start-up fails
        when the database cannot be reached)."""
        await self._pool.open(wait=wait)

    @asynccontextmanager
    async def _connection(
        self, pool: AsyncConnectionPool[Any]
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection within the pool timeout; the faults that mean the database cannot
        serve now (rather than that this request is wrong) raised as Unavailable."""
        bound = _pool_wait_bound.get()
        timeout = self._pool_timeout_s if bound is None else min(bound, self._pool_timeout_s)
        try:
            async with pool.connection(timeout=timeout) as conn:
                yield conn
        except PoolTimeout as e:
            raise Unavailable(f"no database connection within {timeout:g} s") from e
        except psycopg.OperationalError as e:
            if e.sqlstate is not None:
                raise  # the server said what happened: mapped by its SQLSTATE
            raise Unavailable("the database connection was lost") from e

    @asynccontextmanager
    async def _transaction(
        self, pool: AsyncConnectionPool[Any]
    ) -> AsyncIterator[AsyncConnection[Any]]:
        async with self._connection(pool) as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def tenant(self, principal: Principal) -> AsyncIterator[Transaction]:
        # begin_request sets the context transaction-locally (it can never leak to the next
        # user of this pooled connection) and loads the caller's current role. Pipelining it
        # with BEGIN saves a round trip but not CPU (in process, listProjects: 1,199 µs
        # pipelined vs 1,155 µs plain, medians of 3), so the plain form stays.
        async with self._connection(self._pool) as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
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
            yield Transaction(conn, caller, cur)

    @asynccontextmanager
    async def anonymous(self) -> AsyncIterator[Transaction]:
        """No tenant context: only the pre-tenant SECURITY DEFINER functions see any rows."""
        async with self._transaction(self._pool) as conn:
            yield Transaction(conn)

    async def anonymous_statement(self, query: Query, **params: Any) -> Row | None:
        """One statement, its own transaction (no BEGIN/COMMIT round trips), no tenant context."""
        async with self._connection(self._pool) as conn:
            return await Transaction(conn).one(query, **params)

    @property
    def system_configured(self) -> bool:
        return self._system_dsn is not None

    @asynccontextmanager
    async def system(self) -> AsyncIterator[Transaction]:
        """The BYPASSRLS role, for operator commands and background jobs only."""
        if self._system_pool is None:
            if self._system_dsn is None:
                raise NotConnected("no system database URL configured")
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                self._system_dsn,
                min_size=0,
                max_size=2,
                open=False,
                kwargs=_connect_options(self._statement_timeout_ms),
                configure=_prepare,
                check=check_idle_connection,
                timeout=self._pool_timeout_s,
                reconnect_timeout=self._pool_timeout_s,
                name="system",
            )
            await pool.open()
            # Two first calls may race here: the first pool opened is kept.
            if self._system_pool is None:
                self._system_pool = pool
            else:
                await pool.close()
        async with self._transaction(self._system_pool) as conn:
            yield Transaction(conn)

    def pool_stats(self) -> dict[str, int]:
        """The request pool's numbers (psycopg_pool's get_stats()), for metrics."""
        return self._pool.get_stats()

    async def dispose(self) -> None:
        await self._pool.close()
        if self._system_pool is not None:
            await self._system_pool.close()


async def check_idle_connection(conn: AsyncConnection[Any]) -> None:
    """psycopg_pool's check (an empty query) only when the connection may be broken: an idle
    connection has nothing to read, while one the server closed has its FATAL error and the
    end of the stream waiting on the socket. A poll of the socket costs no round trip, where
    the empty query would double the round trips of a one-statement request
    (validateLicense). Raises for a broken connection, so the pool replaces it."""
    if conn.closed or conn.pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError("the connection is closed")
    poll = getattr(select, "poll", None)
    if poll is not None:
        poller = poll()
        poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        if not poller.poll(0):
            return  # nothing waiting: an idle, live connection
    await AsyncConnectionPool.check_connection(conn)


def _connect_options(statement_timeout_ms: int) -> dict[str, Any]:
    # TimeZone: timestamps (and jsonb text) come back in UTC whatever the server's default,
    # as the spec promises.
    options = f"-c statement_timeout={int(statement_timeout_ms)} -c TimeZone=UTC"
    return {"autocommit": True, "options": options}


def _stored_json(data: bytes | bytearray | memoryview | str) -> orjson.Fragment:
    # Stored JSON goes back to the caller as it is: PostgreSQL's jsonb text is valid JSON, so
    # a Fragment is embedded in the response without being parsed and re-encoded (51 times
    # per 50-row page), and numbers of any size come back exactly.
    return orjson.Fragment(data.encode() if isinstance(data, str) else bytes(data))


async def _prepare(conn: AsyncConnection[Any]) -> None:
    set_json_loads(_stored_json, conn)


async def _prepare_and_warm_up(conn: AsyncConnection[Any]) -> None:
    await _prepare(conn)
    # A backend's first begin_request compiles the plpgsql and fills its caches (~4 ms); pay
    # that when the pool connects, not in some caller's request. No context: no row, no effect.
    async with conn.transaction(force_rollback=True):
        await conn.execute(
            _BEGIN_REQUEST.sql, {"organization_id": None, "user_id": None, "session_id": None}
        )


@asynccontextmanager
async def system_transaction(
    system_dsn: str, statement_timeout_ms: int = 10_000
) -> AsyncIterator[Transaction]:
    """One transaction as the system role on a connection of its own, for operator commands
    run outside a server (stored JSON comes back parsed, not as response fragments)."""
    conn = await AsyncConnection.connect(system_dsn, **_connect_options(statement_timeout_ms))
    async with conn, conn.transaction():
        yield Transaction(conn)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, None for anything else."""
    return exc.sqlstate if isinstance(exc, psycopg.Error) else None


DatabaseError = psycopg.Error
_BEGIN_REQUEST = queries("session").begin_request
