"""The RLS helpers are inlined by the planner, and a hostile search_path cannot subvert them.

Since 0010, app.current_org_id, current_user_id, current_role and role_at_least carry no
SET search_path, so PostgreSQL inlines them into the policies: the InitPlan reads
current_setting() directly instead of calling a SQL function with a GUC save/restore. An
inlined body is parsed under the caller's search_path, which is why every name in it is
schema-qualified; the hostile-schema test below checks that nothing resolves elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from db.queries import queries
from tests.db.conftest import Tenant, set_tenant

HELPERS = ("current_org_id", "current_user_id", "current_role", "role_at_least")


@pytest.fixture
def app_conn(database: Any) -> Iterator[psycopg.Connection[Any]]:
    """The API role, in a transaction that is rolled back."""
    with psycopg.connect(database.app_dsn) as conn:
        yield conn
        conn.rollback()


def plan(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> str:
    rows = conn.execute("explain (verbose, costs off) " + query, params).fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        # SELECT policy: the tenant check only.
        ("list_projects_first", ("app.org_id",)),
        # UPDATE policy: tenant, role_at_least (which calls current_role) and the creator.
        ("delete_project", ("app.org_id", "app.user_id", "app.role")),
    ],
)
def test_policies_inline_the_helpers(
    app_conn: Any, tenants: tuple[Tenant, Tenant], name: str, settings: tuple[str, ...]
) -> None:
    a, _ = tenants
    set_tenant(app_conn, a, "MEMBER")
    query = getattr(queries("projects"), name).sql
    text = plan(app_conn, query, {"organization_id": a.org, "project_id": a.project, "limit": 10})
    # The policy expressions read the settings themselves...
    for setting in settings:
        assert f"current_setting('{setting}'::text, true)" in text, text
    # ...instead of calling the helpers.
    for helper in HELPERS:
        assert f"{helper}(" not in text, f"app.{helper} was not inlined:\n{text}"


@pytest.fixture
def hostile_schema(database: Any, tenants: tuple[Tenant, Tenant]) -> Iterator[str]:
    """A schema shadowing every name the helper bodies use, with answers that would let
    tenant A's GUEST act as tenant B's OWNER. Its functions are as stable as the ones they
    shadow (so they would not stop inlining) and pin their own search_path."""
    _, b = tenants
    schema = f"hostile_{uuid.uuid4().hex[:8]}"
    pinned = "set search_path = pg_catalog"
    ddl = [
        "create schema {s}",
        # current_setting: another tenant, another user, the top role.
        "create function {s}.current_setting(text, boolean) returns text language sql stable"
        f" {pinned} as $$ select case $1 when 'app.org_id' then '{b.org}'"
        f" when 'app.user_id' then '{b.owner}' when 'app.role' then 'OWNER'"
        " else pg_catalog.current_setting($1, $2) end $$",
        # = on text never matches (nullif(x, '') would never be null), >= on integers always
        # holds, array_position puts everyone at the top.
        "create function {s}.never(text, text) returns boolean language sql immutable"
        f" {pinned} as 'select false'",
        "create operator {s}.= (leftarg = text, rightarg = text, function = {s}.never)",
        "create function {s}.always(integer, integer) returns boolean language sql immutable"
        f" {pinned} as 'select true'",
        "create operator {s}.>= (leftarg = integer, rightarg = integer, function = {s}.always)",
        "create function {s}.array_position(anyarray, anyelement) returns integer"
        f" language sql immutable {pinned} as 'select 4'",
        # Types named like the ones the bodies cast to.
        "create domain {s}.uuid as text",
        "create type {s}.user_role as enum ('GUEST', 'MEMBER', 'ADMIN', 'OWNER')",
        "grant usage on schema {s} to coditect_app",
    ]
    with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
        for statement in ddl:
            admin.execute(sql.SQL(statement).format(s=sql.Identifier(schema)))
        try:
            yield schema
        finally:
            admin.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def test_a_hostile_search_path_cannot_subvert_the_helpers(
    app_conn: Any, tenants: tuple[Tenant, Tenant], hostile_schema: str
) -> None:
    a, b = tenants
    set_tenant(app_conn, a, "GUEST")
    app_conn.execute(
        sql.SQL("set local search_path = {}, pg_catalog, public").format(
            sql.Identifier(hostile_schema)
        )
    )
    # The hostile objects are really what unqualified names find now.
    assert app_conn.execute("select current_setting('app.org_id', true)").fetchone() == (
        str(b.org),
    )
    assert app_conn.execute("select 1 >= 2").fetchone() == (True,)

    assert app_conn.execute(
        "select app.current_org_id(), app.current_user_id(), app.current_role()::text,"
        " app.role_at_least('ADMIN'), app.role_at_least('GUEST')"
    ).fetchone() == (a.org, a.guest, "GUEST", False, True)
    # Through the policies: only tenant A's rows, and a GUEST changes no project.
    orgs = app_conn.execute("select distinct organization_id from public.projects").fetchall()
    assert orgs == [(a.org,)]
    for project in (a.project, b.project):
        touched = app_conn.execute(
            "update public.projects set metadata = metadata where id = %s", (project,)
        )
        assert touched.rowcount == 0, project

    # A cleared context ('' in every setting) still reads as no context: nothing visible.
    app_conn.execute("select app.set_tenant(null, null, null)")
    assert app_conn.execute(
        "select app.current_org_id(), app.current_user_id(), app.current_role()::text,"
        " app.role_at_least('GUEST')"
    ).fetchone() == (None, None, None, False)
    assert app_conn.execute("select count(*) from public.projects").fetchone() == (0,)
