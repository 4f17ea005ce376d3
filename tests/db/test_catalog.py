"""The schema's security properties, read from the system catalogs of a migrated database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.db.conftest import TENANT_TABLES

# Indexes on tenant tables that do not lead with organization_id, on purpose: the lookups
# made before a tenant is known (pretenant functions). Primary keys (id) are also exempt.
GLOBAL_INDEXES = {
    "organizations_slug_live_key",
    "users_email_live_key",
    "users_email_key_live_idx",
    "licenses_key_digest_key",
    "sessions_refresh_digest_key",
    "sessions_previous_refresh_digest_idx",
    # The operator API's lists across tenants (sql/queries/operator.sql).
    "organizations_created_idx",
    "licenses_created_idx",
    "spent_refresh_tokens_refresh_digest_key",
    "account_tokens_token_digest_key",
    "outbox_pending_idx",
}

PRETENANT_FUNCTIONS = {
    "signup",
    "validate_license",
    "deactivate_machine",
    "organization_tier",
    "find_login",
    "open_session",
    "set_password_hash",
    "rotate_refresh",
    "request_password_reset",
    "reset_password",
    "accept_invitation",
    "claim_outbox",
    "complete_outbox",
    "retry_outbox",
}

# Tables whose rows are never changed once written: no updated_at.
APPEND_ONLY = {"audit_log", "spent_refresh_tokens"}

# What coditect_system may do across tenants (0019, 0020): what the pretenant functions, the
# operator commands and the development seed do, and nothing else (no DELETE anywhere).
SYSTEM_POLICIES = {
    *(
        (t, c)
        for t in ("organizations", "users", "licenses", "license_activations", "sessions")
        for c in ("SELECT", "INSERT", "UPDATE")
    ),
    ("projects", "INSERT"),
    ("audit_log", "INSERT"),
    # 0020: the account tables, for the pre-tenant functions that use them.
    ("spent_refresh_tokens", "SELECT"),
    ("spent_refresh_tokens", "INSERT"),
    *((t, c) for t in ("account_tokens", "outbox") for c in ("SELECT", "INSERT", "UPDATE")),
    ("audit_log", "SELECT"),  # only machine activations and deactivations (churn limits)
}

# The RLS helpers the policies call, and the seat rule every seat count uses (holds_seat).
# They carry no SET clause, so the planner can inline them (0010); their bodies
# schema-qualify every name instead of pinning search_path.
INLINED_HELPERS = (
    "current_org_id",
    "current_user_id",
    "current_role",
    "role_at_least",
    "holds_seat",
)


def tenant_column(table: str) -> str:
    return "id" if table == "organizations" else "organization_id"


@pytest.fixture(scope="module")
def admin(database: Any) -> Any:
    with psycopg.connect(database.superuser_dsn, autocommit=True) as conn:
        yield conn


def test_every_tenant_table_enables_and_forces_rls(admin: Any) -> None:
    rows = admin.execute(
        "select relname, relrowsecurity, relforcerowsecurity from pg_class"
        " where relnamespace = 'public'::regnamespace and relname = any(%s)",
        (list(TENANT_TABLES),),
    ).fetchall()
    assert {r[0] for r in rows} == set(TENANT_TABLES)
    for name, enabled, forced in rows:
        assert enabled, f"{name}: RLS not enabled"
        assert forced, f"{name}: RLS not forced"


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_each_table_has_exactly_one_tenant_policy_per_command(admin: Any, table: str) -> None:
    rows = admin.execute(
        "select cmd, qual, with_check from pg_policies"
        " where schemaname = 'public' and tablename = %s and roles = '{public}'",
        (table,),
    ).fetchall()
    assert sorted(r[0] for r in rows) == ["DELETE", "INSERT", "SELECT", "UPDATE"]
    by_cmd = {cmd: (qual, check) for cmd, qual, check in rows}
    assert by_cmd["SELECT"][0] is not None
    assert by_cmd["SELECT"][1] is None
    assert by_cmd["INSERT"][0] is None
    assert by_cmd["INSERT"][1] is not None
    assert by_cmd["UPDATE"][0] is not None
    assert by_cmd["UPDATE"][1] is not None
    assert by_cmd["DELETE"][0] is not None
    assert by_cmd["DELETE"][1] is None


def test_system_role_policies_are_exactly_its_uses(admin: Any) -> None:
    rows = admin.execute(
        "select tablename, cmd, permissive, qual, with_check from pg_policies"
        " where schemaname = 'public' and roles <> '{public}'"
        " and 'coditect_system' = any(roles)"
    ).fetchall()
    assert {(table, cmd) for table, cmd, *_ in rows} == SYSTEM_POLICIES
    assert len(rows) == len(SYSTEM_POLICIES)
    for table, cmd, permissive, *_ in rows:
        assert permissive == "PERMISSIVE", (table, cmd)
    others = admin.execute(
        "select policyname, roles from pg_policies where schemaname = 'public'"
        " and roles not in ('{public}', '{coditect_system}')"
    ).fetchall()
    assert others == []


def test_policies_are_permissive_tenant_checks_without_shortcuts(admin: Any) -> None:
    rows = admin.execute(
        "select tablename, policyname, permissive, qual, with_check from pg_policies"
        " where schemaname = 'public' and roles = '{public}'"
    ).fetchall()
    assert len(rows) == 4 * len(TENANT_TABLES)
    for table, name, permissive, qual, check in rows:
        assert permissive == "PERMISSIVE", name
        for expr in (qual, check):
            if expr is None:
                continue
            assert expr.strip("() ").lower() != "true", f"{name} is always true"
            assert "deleted_at" not in expr, f"{name} filters deleted_at"
            assert "is_system" not in expr, f"{name} has a system escape hatch"
            # Anything but a plain "false" must be scoped to the caller's tenant, with the
            # helper evaluated once per statement.
            if expr.strip("() ").lower() != "false":
                assert f"{tenant_column(table)} = ( SELECT app.current_org_id()" in expr, (
                    f"{name}: {expr}"
                )


def test_app_role_attributes(admin: Any) -> None:
    rows = {
        r[0]: r[1:]
        for r in admin.execute(
            "select rolname, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolinherit"
            " from pg_roles where rolname like 'coditect\\_%'"
        )
    }
    assert rows["coditect_app"] == (False, False, False, False, False)
    assert rows["coditect_owner"][:2] == (False, False)
    # No role bypasses RLS: coditect_system crosses tenants by its own policies (0019).
    assert rows["coditect_system"][:2] == (False, False)
    member_of = admin.execute(
        "select pg_has_role('coditect_app', 'coditect_owner', 'MEMBER'),"
        " pg_has_role('coditect_app', 'coditect_system', 'MEMBER')"
    ).fetchone()
    assert member_of == (False, False)


def test_app_role_owns_nothing_and_creates_nothing(admin: Any) -> None:
    owned = admin.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('public', 'app', 'pretenant')"
        " and c.relowner = 'coditect_app'::regrole"
        " union all select p.proname from pg_proc p"
        " where p.proowner = 'coditect_app'::regrole"
        " union all select nspname from pg_namespace where nspowner = 'coditect_app'::regrole"
    ).fetchall()
    assert owned == []
    tables = admin.execute(
        "select count(*) from pg_class where relnamespace = 'public'::regnamespace"
        " and relkind = 'r' and relowner = 'coditect_owner'::regrole"
    ).fetchone()
    assert tables[0] >= len(TENANT_TABLES)
    for schema in ("public", "app", "pretenant"):
        can_create = admin.execute(
            "select has_schema_privilege('coditect_app', %s, 'CREATE')", (schema,)
        ).fetchone()[0]
        assert not can_create, schema
    can_create_db = admin.execute(
        "select has_database_privilege('coditect_app', current_database(), 'CREATE')"
    ).fetchone()[0]
    assert not can_create_db


def test_app_role_table_privileges(admin: Any) -> None:
    for table in TENANT_TABLES:
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            granted = admin.execute(
                "select has_table_privilege('coditect_app', %s, %s)",
                (f"public.{table}", privilege),
            ).fetchone()[0]
            expected = not (table == "audit_log" and privilege in ("UPDATE", "DELETE"))
            assert granted is expected, (table, privilege)
        for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER"):
            assert not admin.execute(
                "select has_table_privilege('coditect_app', %s, %s)",
                (f"public.{table}", privilege),
            ).fetchone()[0], (table, privilege)


def test_every_foreign_key_between_tenant_tables_is_scoped_by_tenant(admin: Any) -> None:
    rows = admin.execute(
        """
        select c.conname, src.relname, dst.relname,
               array(select a.attname from unnest(c.conkey) with ordinality k(n, i)
                     join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n
                     order by k.i),
               array(select a.attname from unnest(c.confkey) with ordinality k(n, i)
                     join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n
                     order by k.i)
          from pg_constraint c
          join pg_class src on src.oid = c.conrelid
          join pg_class dst on dst.oid = c.confrelid
         where c.contype = 'f' and src.relnamespace = 'public'::regnamespace
        """
    ).fetchall()
    assert len(rows) >= 10
    for name, src, dst, cols, refcols in rows:
        assert src in TENANT_TABLES, name
        assert dst in TENANT_TABLES, name
        pairs = set(zip(cols, refcols, strict=True))
        assert (tenant_column(src), tenant_column(dst)) in pairs, (
            f"{name}: {src}{cols} -> {dst}{refcols} is not scoped by organization_id"
        )
        if dst != "organizations":
            assert len(cols) >= 2, f"{name} is a plain foreign key to a tenant table"


def test_every_tenant_table_has_organization_key(admin: Any) -> None:
    for table in TENANT_TABLES:
        keys = admin.execute(
            """
            select array(select a.attname from unnest(i.indkey) k(n)
                         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n)
              from pg_index i where i.indrelid = %s::regclass and i.indisunique
               and i.indpred is null
            """,
            (f"public.{table}",),
        ).fetchall()
        wanted = {tenant_column(table), "id"}
        assert any(set(k[0]) == wanted for k in keys), table
        not_null = admin.execute(
            "select attnotnull from pg_attribute where attrelid = %s::regclass and attname = %s",
            (f"public.{table}", tenant_column(table)),
        ).fetchone()[0]
        assert not_null, table


def test_tenant_indexes_lead_with_organization_id(admin: Any) -> None:
    rows = admin.execute(
        """
        select t.relname, ic.relname, i.indisprimary, i.indkey[0],
               (select attname from pg_attribute
                 where attrelid = i.indrelid and attnum = i.indkey[0])
          from pg_index i
          join pg_class ic on ic.oid = i.indexrelid
          join pg_class t on t.oid = i.indrelid
         where t.relnamespace = 'public'::regnamespace and t.relname = any(%s)
        """,
        (list(TENANT_TABLES),),
    ).fetchall()
    assert len(rows) >= 20
    names = {r[1] for r in rows}
    assert names >= GLOBAL_INDEXES
    for table, index, primary, _, first in rows:
        if primary or index in GLOBAL_INDEXES:
            continue
        assert first == tenant_column(table), f"{index} on {table} leads with {first}"


def test_keyset_indexes_exist(admin: Any) -> None:
    defs = {
        r[0]: r[1]
        for r in admin.execute(
            "select tablename, indexdef from pg_indexes"
            " where schemaname = 'public'"
            " and indexdef like '%(organization_id, created_at DESC, id DESC)%'"
        )
    }
    assert set(defs) >= {"users", "licenses", "projects", "audit_log"}


def test_six_enums(admin: Any) -> None:
    enums = dict(
        admin.execute(
            "select t.typname, array_agg(e.enumlabel::text order by e.enumsortorder)"
            " from pg_type t join pg_enum e on e.enumtypid = t.oid"
            " where t.typnamespace = 'public'::regnamespace group by t.typname"
        ).fetchall()
    )
    assert enums == {
        "organization_status": ["ACTIVE", "SUSPENDED"],
        "user_role": ["OWNER", "ADMIN", "MEMBER", "GUEST"],
        "user_status": ["ACTIVE", "INVITED", "SUSPENDED"],
        "license_tier": ["FREE", "PRO", "ENTERPRISE"],
        "license_status": ["ACTIVE", "SUSPENDED", "REVOKED"],
        "project_status": ["ACTIVE", "ARCHIVED"],
    }


def test_pretenant_functions_are_pinned_definers_owned_by_system(admin: Any) -> None:
    rows = admin.execute(
        "select p.proname, p.prosecdef, p.proconfig, p.proowner::regrole::text,"
        " exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0),"
        " has_function_privilege('coditect_app', p.oid, 'EXECUTE')"
        " from pg_proc p where p.pronamespace = 'pretenant'::regnamespace"
    ).fetchall()
    assert {r[0] for r in rows} == PRETENANT_FUNCTIONS
    for name, definer, config, owner, public_exec, app_exec in rows:
        assert definer, name
        assert config == ["search_path=pg_catalog, public, pg_temp"], name
        assert owner == "coditect_system", name
        assert not public_exec, f"{name} is executable by PUBLIC"
        assert app_exec, name


def test_app_helpers(admin: Any) -> None:
    rows = {
        r[0]: r[1:]
        for r in admin.execute(
            "select p.proname, p.provolatile, p.prosecdef, p.proconfig,"
            " p.proowner::regrole::text,"
            " exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0),"
            " has_function_privilege('coditect_app', p.oid, 'EXECUTE'),"
            " l.lanname, p.proparallel"
            " from pg_proc p join pg_language l on l.oid = p.prolang"
            " where p.pronamespace = 'app'::regnamespace"
        )
    }
    for name in INLINED_HELPERS:
        volatile, definer, config, *_, language, parallel = rows[name]
        assert volatile == "s", f"{name} is not STABLE"
        # What inlining needs: SQL, no SET clause, SECURITY INVOKER.
        assert language == "sql", name
        assert parallel == "s", f"{name} is not PARALLEL SAFE"
        assert config is None, f"{name} has a SET clause ({config}), so it cannot be inlined"
        assert not definer, name
    for name in (*INLINED_HELPERS, "set_tenant", "begin_request"):
        _, definer, _, owner, public_exec, app_exec, *_ = rows[name]
        assert not definer, name
        assert owner == "coditect_owner", name
        assert not public_exec, name
        assert app_exec, name
    for name, (_volatile, definer, config, owner, public_exec, *_) in rows.items():
        assert owner == "coditect_owner"
        assert not definer
        assert not public_exec
        if name not in INLINED_HELPERS:  # set_tenant, begin_request and the rest stay pinned
            assert config == ["search_path=pg_catalog, pg_temp"], name


def test_updated_at_triggers(admin: Any) -> None:
    tables = {
        r[0]
        for r in admin.execute(
            "select c.relname from pg_trigger t join pg_class c on c.oid = t.tgrelid"
            " where not t.tgisinternal and t.tgfoid = 'app.touch_updated_at'::regproc"
        )
    }
    with_updated_at = {
        r[0]
        for r in admin.execute(
            "select c.relname from pg_attribute a join pg_class c on c.oid = a.attrelid"
            " where c.relnamespace = 'public'::regnamespace and a.attname = 'updated_at'"
            " and c.relkind = 'r'"
        )
    }
    assert tables == with_updated_at == set(TENANT_TABLES) - APPEND_ONLY
