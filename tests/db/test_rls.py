"""Tenant isolation as the API's own role (coditect_app): RLS, FORCE, composite keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.db.conftest import (
    FAKE_HASH,
    TENANT_TABLES,
    Tenant,
    fails,
    q,
    random_digest,
    set_tenant,
)

TENANT_COLUMN = {t: "id" if t == "organizations" else "organization_id" for t in TENANT_TABLES}

# A statement that is harmless but visible for each table (audit_log: the app role has no
# UPDATE grant at all; it is handled separately).
TOUCH = {
    "organizations": "update organizations set metadata = metadata where id = %s",
    "users": "update users set metadata = metadata where id = %s",
    "licenses": "update licenses set metadata = metadata where id = %s",
    "license_activations": "update license_activations set metadata = metadata where id = %s",
    "projects": "update projects set metadata = metadata where id = %s",
    "sessions": "update sessions set user_agent = 'rls-test' where id = %s",
}

# Tables where the tenant's own OWNER may insert and delete (the others refuse even that:
# only signup / coditect_system create organizations, licenses and activations).
OWN_INSERT = {"users", "projects", "sessions", "account_tokens", "outbox", "audit_log"}
OWN_DELETE = {
    "organizations",
    "users",
    "license_activations",
    "projects",
    "sessions",
    "spent_refresh_tokens",
    "account_tokens",
    "outbox",
}


def insert_row(table: str, target: Tenant, actor: Tenant) -> tuple[str, tuple[Any, ...]]:
    """An INSERT that is valid in every respect but RLS, putting a row into `target`.

    `actor` is whose context is set: the row's user references point at the actor's own
    user when that user belongs to the target (so a same-tenant insert passes the policy).
    """
    tag = uuid.uuid4().hex[:10]
    same = target.org == actor.org
    me = actor.owner if same else target.owner
    return {
        "organizations": (
            "insert into organizations (name, slug) values (%s, %s)",
            (f"Rogue {tag}", f"rogue-{tag}"),
        ),
        "users": (
            "insert into users (organization_id, email, full_name, password_hash)"
            " values (%s, %s, 'Rogue', %s)",
            (target.org, f"rogue-{tag}@example.test", FAKE_HASH),
        ),
        "licenses": (
            "insert into licenses (organization_id, name, key_prefix, key_digest, tier, seats)"
            " values (%s, 'Rogue', 'cdt_rogue', %s, 'ENTERPRISE', 1000)",
            (target.org, random_digest()),
        ),
        "license_activations": (
            "insert into license_activations (organization_id, license_id, fingerprint_digest)"
            " values (%s, %s, %s)",
            (target.org, target.license, random_digest()),
        ),
        "projects": (
            "insert into projects (organization_id, name, created_by) values (%s, %s, %s)",
            (target.org, f"Rogue {tag}", me),
        ),
        "sessions": (
            "insert into sessions (organization_id, user_id, refresh_digest, expires_at)"
            " values (%s, %s, %s, now() + interval '1 hour')",
            (target.org, me, random_digest()),
        ),
        "spent_refresh_tokens": (
            "insert into spent_refresh_tokens (organization_id, session_id, refresh_digest)"
            " values (%s, %s, %s)",
            (target.org, target.session, random_digest()),
        ),
        "account_tokens": (
            "insert into account_tokens (organization_id, user_id, purpose, token_digest,"
            " expires_at) values (%s, %s, 'invitation', %s, now() + interval '1 day')",
            (target.org, target.guest, random_digest()),
        ),
        "outbox": (
            "insert into outbox (organization_id, kind, recipient, subject, body)"
            " values (%s, 'invitation', 'rogue@example.test', 'Rogue', 'Rogue')",
            (target.org,),
        ),
        "audit_log": (
            "insert into audit_log (organization_id, actor_id, action, target_type)"
            " values (%s, %s, 'rogue.entry', 'test')",
            (target.org, me),
        ),
    }[table]


@pytest.fixture
def app_conn(database: Any) -> Iterator[psycopg.Connection[Any]]:
    """The API role, in a transaction that is rolled back."""
    with psycopg.connect(database.app_dsn) as conn:
        yield conn
        conn.rollback()


@pytest.fixture
def system_count(database: Any) -> Callable[[Any, Any], int]:
    def count(query: Any, params: Any = None) -> int:
        with psycopg.connect(database.superuser_dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchone()[0]  # type: ignore[index]

    return count


def test_connection_is_the_unprivileged_app_role(app_conn: Any) -> None:
    row = app_conn.execute(
        "select current_user, rolsuper, rolbypassrls from pg_roles where rolname = current_user"
    ).fetchone()
    assert row == ("coditect_app", False, False)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_no_context_reads_nothing_and_writes_nothing(
    app_conn: Any, tenants: tuple[Tenant, Tenant], system_count: Any, table: str
) -> None:
    a, _ = tenants
    column = TENANT_COLUMN[table]
    assert (
        system_count(q("select count(*) from {t} where {c} = %s", t=table, c=column), (a.org,)) >= 1
    )
    assert app_conn.execute(q("select count(*) from {t}", t=table)).fetchone()[0] == 0
    assert app_conn.execute("select app.current_org_id(), app.current_role()").fetchone() == (
        None,
        None,
    )
    query, params = insert_row(table, a, a)
    err = fails(app_conn, query, params)
    assert err.sqlstate == "42501"
    assert "row-level security" in str(err)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_owner_role_is_subject_to_rls_too(database: Any, tenants: Any, table: str) -> None:
    with psycopg.connect(database.owner_dsn) as conn:
        assert conn.execute(q("select count(*) from {t}", t=table)).fetchone()[0] == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_other_tenant_rows_are_invisible(
    app_conn: Any, tenants: tuple[Tenant, Tenant], table: str
) -> None:
    a, b = tenants
    set_tenant(app_conn, a)
    mine = app_conn.execute(
        q("select count(*) from {t} where id = %s", t=table), (a.row_id(table),)
    )
    assert mine.fetchone()[0] == 1
    theirs = app_conn.execute(
        q("select count(*) from {t} where id = %s", t=table), (b.row_id(table),)
    )
    assert theirs.fetchone()[0] == 0
    orgs = app_conn.execute(
        q("select distinct {c} from {t}", c=TENANT_COLUMN[table], t=table)
    ).fetchall()
    assert orgs == [(a.org,)]


@pytest.mark.parametrize("table", sorted(TOUCH))
def test_other_tenant_rows_cannot_be_updated(
    app_conn: Any, tenants: tuple[Tenant, Tenant], table: str
) -> None:
    a, b = tenants
    set_tenant(app_conn, a)
    with app_conn.transaction(force_rollback=True):
        assert app_conn.execute(TOUCH[table], (a.row_id(table),)).rowcount == 1
    assert app_conn.execute(TOUCH[table], (b.row_id(table),)).rowcount == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_other_tenant_rows_cannot_be_deleted(
    app_conn: Any, tenants: tuple[Tenant, Tenant], system_count: Any, table: str
) -> None:
    a, b = tenants
    set_tenant(app_conn, a)
    query = q("delete from {t} where id = %s", t=table)
    if table in OWN_DELETE:
        with app_conn.transaction(force_rollback=True):
            assert app_conn.execute(query, (a.row_id(table),)).rowcount == 1
    if table == "audit_log":
        assert fails(app_conn, query, (b.row_id(table),)).sqlstate == "42501"
    else:
        assert app_conn.execute(query, (b.row_id(table),)).rowcount == 0
    app_conn.commit()
    assert (
        system_count(q("select count(*) from {t} where id = %s", t=table), (b.row_id(table),)) == 1
    )


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_rows_cannot_be_inserted_into_another_tenant(
    app_conn: Any, tenants: tuple[Tenant, Tenant], table: str
) -> None:
    a, b = tenants
    set_tenant(app_conn, a)
    if table in OWN_INSERT:
        with app_conn.transaction(force_rollback=True):
            query, params = insert_row(table, a, a)
            assert app_conn.execute(query, params).rowcount == 1
    query, params = insert_row(table, b, a)
    err = fails(app_conn, query, params)
    assert err.sqlstate == "42501"
    assert "row-level security" in str(err)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_rows_cannot_be_moved_to_another_tenant(
    app_conn: Any, tenants: tuple[Tenant, Tenant], table: str
) -> None:
    a, b = tenants
    set_tenant(app_conn, a)
    column = TENANT_COLUMN[table]
    err = fails(
        app_conn,
        q("update {t} set {c} = %s where id = %s", t=table, c=column),
        (b.org, a.row_id(table)),
    )
    assert err.sqlstate == "42501"
    if table == "audit_log":
        assert "permission denied" in str(err)  # append-only: no UPDATE grant at all
    else:
        assert "row-level security" in str(err)


def test_audit_log_is_append_only_for_the_app(app_conn: Any, tenants: Any) -> None:
    a, _ = tenants
    set_tenant(app_conn, a)
    for query in ("update audit_log set detail = detail", "delete from audit_log"):
        err = fails(app_conn, query)
        assert err.sqlstate == "42501"
        assert "permission denied" in str(err)


def test_audit_entries_cannot_be_forged_for_another_user(app_conn: Any, tenants: Any) -> None:
    a, _ = tenants
    set_tenant(app_conn, a, "MEMBER")
    err = fails(
        app_conn,
        "insert into audit_log (organization_id, actor_id, action, target_type)"
        " values (%s, %s, 'user.created', 'user')",
        (a.org, a.owner),
    )
    assert err.sqlstate == "42501"


def test_composite_foreign_key_cannot_reach_another_tenant(
    database: Any, app_conn: Any, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    # Through the API role, as an ADMIN who may reassign projects: the policy passes (the
    # row stays in A), the composite key refuses a user of B.
    set_tenant(app_conn, a, "ADMIN")
    err = fails(
        app_conn, "update projects set created_by = %s where id = %s", (b.member, a.project)
    )
    assert err.sqlstate == "23503"
    # And the key itself, without RLS in the way (as the superuser).
    with psycopg.connect(database.superuser_dsn) as system:
        for query, params in (
            (
                "insert into projects (organization_id, name, created_by) values (%s, 'x', %s)",
                (a.org, b.member),
            ),
            (
                "insert into sessions (organization_id, user_id, refresh_digest, expires_at)"
                " values (%s, %s, %s, now() + interval '1 hour')",
                (a.org, b.member, random_digest()),
            ),
            (
                "insert into license_activations"
                " (organization_id, license_id, fingerprint_digest) values (%s, %s, %s)",
                (a.org, b.license, random_digest()),
            ),
            (
                "insert into audit_log (organization_id, actor_id, action, target_type)"
                " values (%s, %s, 'x.y', 'user')",
                (a.org, b.member),
            ),
            ("update organizations set owner_id = %s where id = %s", (b.owner, a.org)),
        ):
            with system.transaction(force_rollback=True):
                system.execute("set constraints all immediate")
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    system.execute(query, params)
        system.rollback()


def test_context_does_not_survive_the_transaction(
    app_conn: Any, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    set_tenant(app_conn, a)
    assert app_conn.execute("select count(*) from users").fetchone()[0] == 4
    app_conn.commit()
    assert app_conn.execute("select count(*) from users").fetchone()[0] == 0
    assert app_conn.execute("select app.current_org_id()").fetchone()[0] is None
    set_tenant(app_conn, a)
    app_conn.rollback()
    assert app_conn.execute("select count(*) from projects").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("OWNER", True), ("ADMIN", True), ("MEMBER", False), ("GUEST", False)],
)
def test_roles_in_policies(app_conn: Any, tenants: Any, role: str, allowed: bool) -> None:
    a, _ = tenants
    set_tenant(app_conn, a, role)
    # ADMIN+ update users, licenses, the organization; read the audit log.
    for query, params in (
        ("update users set metadata = metadata where id = %s", (a.owner,)),
        ("update licenses set metadata = metadata where id = %s", (a.license,)),
        ("update organizations set metadata = metadata where id = %s", (a.org,)),
    ):
        with app_conn.transaction(force_rollback=True):
            assert app_conn.execute(query, params).rowcount == (1 if allowed else 0)
    assert (app_conn.execute("select count(*) from audit_log").fetchone()[0] > 0) is allowed
    # Everyone reads the tenant's users and projects.
    assert app_conn.execute("select count(*) from users").fetchone()[0] == 4
    assert app_conn.execute("select count(*) from projects").fetchone()[0] == 1


def test_member_edits_own_projects_only(app_conn: Any, tenants: Any) -> None:
    a, _ = tenants
    set_tenant(app_conn, a, "MEMBER")  # a.member created a.project
    with app_conn.transaction(force_rollback=True):
        assert (
            app_conn.execute(
                "update projects set description = 'mine' where id = %s", (a.project,)
            ).rowcount
            == 1
        )
        # ... but cannot hand it to someone else and keep editing it.
        err = fails(
            app_conn, "update projects set created_by = %s where id = %s", (a.guest, a.project)
        )
        assert err.sqlstate == "42501"
    app_conn.execute("select app.set_tenant(%s, %s, 'MEMBER')", (a.org, a.guest))
    assert (
        app_conn.execute(
            "update projects set description = 'not mine' where id = %s", (a.project,)
        ).rowcount
        == 0
    )
    app_conn.execute("select app.set_tenant(%s, %s, 'GUEST')", (a.org, a.guest))
    err = fails(
        app_conn,
        "insert into projects (organization_id, name, created_by) values (%s, 'g', %s)",
        (a.org, a.guest),
    )
    assert err.sqlstate == "42501"


def test_users_update_only_themselves_below_admin(app_conn: Any, tenants: Any) -> None:
    a, _ = tenants
    set_tenant(app_conn, a, "MEMBER")
    with app_conn.transaction(force_rollback=True):
        assert (
            app_conn.execute(
                "update users set full_name = 'Me' where id = %s", (a.member,)
            ).rowcount
            == 1
        )
    assert (
        app_conn.execute("update users set full_name = 'You' where id = %s", (a.admin,)).rowcount
        == 0
    )


def test_sessions_visible_to_their_user_or_admins(app_conn: Any, tenants: Any) -> None:
    a, _ = tenants
    set_tenant(app_conn, a, "MEMBER")
    assert app_conn.execute("select id from sessions").fetchall() == [(a.member_session,)]
    set_tenant(app_conn, a, "ADMIN")
    assert app_conn.execute("select count(*) from sessions").fetchone()[0] == 2
