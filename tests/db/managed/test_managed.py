"""Migrations, rollback, seed and the system role on managed PostgreSQL (no superuser)."""

from __future__ import annotations

import argparse
import json
from contextlib import redirect_stdout
from io import StringIO
from typing import Any

import psycopg
import pytest

from app.ops import license_admin
from db import migrations
from tests.db.managed.conftest import ManagedDatabase, ManagedServer, create_managed_database

# The isolation and pre-tenant suites, run again here against the managed database (this
# folder's `database` fixture): RLS as the app role, the pre-tenant functions as the system
# role through its policies, and the catalog's security properties.
from tests.db.test_catalog import *  # noqa: F403
from tests.db.test_pretenant import *  # noqa: F403
from tests.db.test_rls import *  # noqa: F403

# A second cluster and a shared server, three migrations each: kept out of the fast loop.
pytestmark = pytest.mark.slow


def test_the_admin_is_no_superuser_and_bypasses_nothing(database: ManagedDatabase) -> None:
    with psycopg.connect(database.admin_dsn) as conn:
        row = conn.execute(
            "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles"
            " where rolname = current_user"
        ).fetchone()
        owner = conn.execute(
            "select datdba::regrole::text from pg_database where datname = current_database()"
        ).fetchone()
    assert row == (False, False, True, True)
    assert owner == (database.admin,)


def test_no_role_of_ours_bypasses_rls(database: ManagedDatabase) -> None:
    with psycopg.connect(database.admin_dsn) as conn:
        rows = conn.execute(
            "select rolname, rolsuper, rolbypassrls from pg_roles"
            " where rolname like 'coditect\\_%' order by 1"
        ).fetchall()
    assert rows == [
        ("coditect_app", False, False),
        ("coditect_owner", False, False),
        ("coditect_system", False, False),
    ]


def test_up_down_up_round_trip_by_the_managed_admin(managed_server: ManagedServer) -> None:
    db = create_managed_database(managed_server)
    try:
        expected = [m.version for m in migrations.discover()]
        assert migrations.apply(db.admin_dsn) == expected
        rolled = []
        while (version := migrations.rollback(db.admin_dsn)) is not None:
            rolled.append(version)
        assert rolled == expected[::-1]
        assert migrations.status(db.app_dsn).current is None
        assert migrations.apply(db.admin_dsn) == expected
        assert migrations.apply(db.admin_dsn) == []  # and again: nothing to do, no error
        assert migrations.status(db.app_dsn).is_current
    finally:
        managed_server.cluster.drop_database(db.name)


def test_seed_loads_as_the_system_role(managed_server: ManagedServer) -> None:
    db = create_managed_database(managed_server)
    try:
        migrations.apply(db.admin_dsn)
        migrations.seed(db.admin_dsn)
        migrations.seed(db.admin_dsn)  # idempotent
        with psycopg.connect(db.superuser_dsn) as conn:
            counts = conn.execute(
                "select (select count(*) from organizations), (select count(*) from projects),"
                " (select count(*) from audit_log)"
            ).fetchone()
        assert counts == (2, 7, 8)
    finally:
        managed_server.cluster.drop_database(db.name)


def test_operator_commands_run_as_the_system_role(
    database: ManagedDatabase, make_tenant: Any
) -> None:
    tenant = make_tenant()
    parser = argparse.ArgumentParser()
    license_admin.register(parser.add_subparsers(dest="command"))
    out = StringIO()
    args = parser.parse_args(
        ["license", "issue", "--organization", str(tenant.org), "--tier", "PRO", "--seats", "4"]
    )
    with redirect_stdout(out):
        assert license_admin.run(args, database.system_dsn) == 0
    issued = json.loads(out.getvalue())
    assert (issued["tier"], issued["seats"], issued["organization_id"]) == (
        "PRO",
        4,
        str(tenant.org),
    )
    args = parser.parse_args(["license", "suspend", issued["id"], "--reason", "test"])
    with redirect_stdout(StringIO()):
        assert license_admin.run(args, database.system_dsn) == 0
    with psycopg.connect(database.superuser_dsn) as conn:
        status = conn.execute("select status from licenses where id = %s", (issued["id"],))
        audited = conn.execute(
            "select count(*) from audit_log where target_id = %s", (issued["id"],)
        )
        assert status.fetchone() == ("SUSPENDED",)
        assert audited.fetchone() == (2,)


def test_the_system_role_deletes_nothing(database: ManagedDatabase, make_tenant: Any) -> None:
    tenant = make_tenant()
    with psycopg.connect(database.system_dsn) as conn:
        assert conn.execute("delete from projects where id = %s", (tenant.project,)).rowcount == 0
        assert conn.execute("select count(*) from projects").fetchone() == (0,)


@pytest.mark.parametrize("role", ["coditect_owner", "coditect_app"])
def test_the_system_policies_apply_to_no_other_role(
    database: ManagedDatabase, make_tenant: Any, role: str
) -> None:
    make_tenant()
    dsn = database.owner_dsn if role == "coditect_owner" else database.app_dsn
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from organizations").fetchone() == (0,)
