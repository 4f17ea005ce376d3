"""db.Database: the app pool sees nothing without a tenant, the system pool sees every tenant,
and both hand stored JSON back as it was written."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg

from db import Database, Query
from tests.db.conftest import Tenant

_ORGS = Query(
    "orgs",
    "select id, metadata from organizations where id = any(:ids) order by id",
    "select id, metadata from organizations where id = any(%(ids)s) order by id",
)
_ONE = Query("one", "select 1 as one", "select 1 as one")
_NOW = Query(
    "now",
    "select current_setting('TimeZone') as tz, now() as now",
    "select current_setting('TimeZone') as tz, now() as now",
)


async def test_system_sees_every_tenant_and_anonymous_sees_none(
    database: Any, tenants: tuple[Tenant, Tenant]
) -> None:
    db = Database(database.app_dsn, system_dsn=database.system_dsn, pool_size=1)
    await db.open()
    try:
        first, second = tenants
        async with db.system() as tx:
            rows = await tx.all(_ORGS, ids=[first.org, second.org])
        assert len(rows) == 2
        assert all(isinstance(row["metadata"], orjson.Fragment) for row in rows)
        assert orjson.loads(orjson.dumps(rows[0]["metadata"])) == {}
        async with db.anonymous() as tx:
            assert await tx.all(_ORGS, ids=[first.org, second.org]) == []
        assert (await db.anonymous_statement(_ONE)) == {"one": 1}
    finally:
        await db.dispose()


async def test_sessions_run_in_utc_whatever_the_role_default(database: Any) -> None:
    with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
        admin.execute("alter role coditect_app set timezone = 'America/Sao_Paulo'")
        try:
            db = Database(database.app_dsn, pool_size=1)
            await db.open()
            try:
                row = await db.anonymous_statement(_NOW)
            finally:
                await db.dispose()
        finally:
            admin.execute("alter role coditect_app reset timezone")
    assert row is not None
    assert row["tz"] == "UTC"
    assert row["now"].utcoffset().total_seconds() == 0


async def test_a_transaction_runs_its_statements_on_one_cursor(
    database: Any, monkeypatch: Any
) -> None:
    made: list[object] = []
    original = psycopg.AsyncConnection.cursor

    def counting(self: psycopg.AsyncConnection[Any], *args: Any, **kwargs: Any) -> Any:
        made.append(self)  # any connection of the process: the count below is of this one's
        return original(self, *args, **kwargs)

    db = Database(database.app_dsn, system_dsn=database.system_dsn, pool_size=1)
    await db.open()
    try:
        monkeypatch.setattr(psycopg.AsyncConnection, "cursor", counting)
        async with db.system() as tx:
            connection = tx._connection
            assert await tx.one(_ONE) == {"one": 1}
            assert await tx.all(_ONE) == [{"one": 1}]
            assert await tx.run(_ONE) == 1
            # Each statement's rows are its own, not the previous statement's.
            assert await tx.one(_NOW) is not None
            assert await tx.one(_ONE) == {"one": 1}
        assert [c for c in made if c is connection] == [connection]
    finally:
        await db.dispose()
