"""CHECK constraints, uniqueness among live rows, the circular owner key, updated_at."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.db.conftest import FAKE_HASH, Tenant, q, random_digest


@pytest.fixture
def system(database: Any) -> Iterator[psycopg.Connection[Any]]:
    """The superuser (RLS does not apply), in a transaction that is rolled back."""
    with psycopg.connect(database.superuser_dsn) as conn:
        yield conn
        conn.rollback()


def violates(conn: psycopg.Connection[Any], query: Any, params: Any) -> str:
    """Run a statement that must break a constraint; returns the constraint's name."""
    with pytest.raises(psycopg.errors.IntegrityError) as info, conn.transaction():
        conn.execute(query, params)
    assert info.value.diag.constraint_name
    return info.value.diag.constraint_name


BAD_ROWS = [
    # (constraint, table, column, bad value)
    ("organizations_slug_check", "organizations", "slug", "Not A Slug"),
    ("organizations_slug_check", "organizations", "slug", "-leading-dash"),
    ("organizations_name_check", "organizations", "name", "   "),
    ("organizations_metadata_check", "organizations", "metadata", "[1, 2]"),
    ("users_email_check", "users", "email", "no-at-sign"),
    ("users_password_hash_check", "users", "password_hash", "plaintext-password"),
    ("users_metadata_check", "users", "metadata", '"a string"'),
    ("licenses_seats_check", "licenses", "seats", 0),
    ("licenses_seats_check", "licenses", "seats", 100001),
    ("licenses_features_check", "licenses", "features", ["x" * 65]),
    ("licenses_features_check", "licenses", "features", [f"f{i}" for i in range(51)]),
    ("licenses_features_check", "licenses", "features", [""]),
    ("licenses_key_digest_check", "licenses", "key_digest", b"short"),
    ("projects_name_check", "projects", "name", ""),
    ("projects_metadata_check", "projects", "metadata", '{"big": "' + "x" * 17000 + '"}'),
    ("audit_log_action_check", "audit_log", "action", "Not An Action"),
    ("audit_log_detail_check", "audit_log", "detail", "[]"),
    ("sessions_refresh_digest_check", "sessions", "refresh_digest", b"short"),
]


@pytest.mark.parametrize(("constraint", "table", "column", "value"), BAD_ROWS)
def test_check_constraints(
    system: Any,
    make_tenant: Callable[[], Tenant],
    constraint: str,
    table: str,
    column: str,
    value: Any,
) -> None:
    t = make_tenant()
    row_id = {
        "organizations": t.org,
        "users": t.member,
        "licenses": t.license,
        "projects": t.project,
        "audit_log": t.audit,
        "sessions": t.session,
    }[table]
    if column in ("metadata", "detail"):
        query = q("update {t} set {c} = %s::jsonb where id = %s", t=table, c=column)
    else:
        query = q("update {t} set {c} = %s where id = %s", t=table, c=column)
    assert violates(system, query, (value, row_id)) == constraint


def test_live_uniqueness(system: Any, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    # Email: globally unique among live users, case-insensitively.
    assert (
        violates(
            system,
            "update users set email = %s where id = %s",
            (a.emails["owner"].upper(), b.member),
        )
        == "users_email_live_key"
    )
    # Slug: unique among live organizations.
    assert (
        violates(system, "update organizations set slug = %s where id = %s", (a.slug, b.org))
        == "organizations_slug_live_key"
    )
    # Project names: unique per organization among live rows, case-insensitively.
    name = system.execute("select name from projects where id = %s", (a.project,)).fetchone()[0]
    insert = "insert into projects (organization_id, name, created_by) values (%s, %s, %s)"
    assert violates(system, insert, (a.org, name.upper(), a.owner)) == "projects_org_name_live_key"
    with system.transaction(force_rollback=True):
        system.execute(insert, (b.org, name, b.owner))  # another tenant may use it
    # Soft-deleted rows free their email and slug.
    with system.transaction(force_rollback=True):
        system.execute("update users set deleted_at = now() where id = %s", (a.owner,))
        system.execute("update users set email = %s where id = %s", (a.emails["owner"], b.member))
        system.execute("update organizations set deleted_at = now() where id = %s", (a.org,))
        system.execute("update organizations set slug = %s where id = %s", (a.slug, b.org))


def test_organization_and_owner_in_one_transaction(system: Any) -> None:
    org = system.execute(
        "insert into organizations (name, slug) values ('Circular', 'circular-test') returning id"
    ).fetchone()[0]
    owner = system.execute(
        "insert into users (organization_id, email, full_name, role, password_hash)"
        " values (%s, 'circular@example.test', 'Owner', 'OWNER', %s) returning id",
        (org, FAKE_HASH),
    ).fetchone()[0]
    system.execute("update organizations set owner_id = %s where id = %s", (owner, org))
    system.execute("set constraints all immediate")  # what COMMIT would check
    # The owner must be a user of the same organization.
    stranger = system.execute(
        "insert into organizations (name, slug) values ('Other', 'circular-other') returning id"
    ).fetchone()[0]
    assert (
        violates(
            system,
            "update organizations set owner_id = %s where id = %s",
            (owner, stranger),
        )
        == "organizations_owner_fkey"
    )


def test_updated_at_is_maintained(database: Any, make_tenant: Callable[[], Tenant]) -> None:
    t = make_tenant()
    with psycopg.connect(database.superuser_dsn) as conn:
        before = conn.execute(
            "select created_at, updated_at from projects where id = %s", (t.project,)
        ).fetchone()
        assert before[0] == before[1]
    with psycopg.connect(database.app_dsn) as conn:
        conn.execute("select app.set_tenant(%s, %s, 'ADMIN')", (t.org, t.admin))
        conn.execute(
            "update projects set description = 'changed', updated_at = '2000-01-01' where id = %s",
            (t.project,),
        )
    with psycopg.connect(database.superuser_dsn) as conn:
        created, updated = conn.execute(
            "select created_at, updated_at from projects where id = %s", (t.project,)
        ).fetchone()
    assert updated > created


def test_hard_deleting_an_organization_removes_everything(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    t = make_tenant()
    with psycopg.connect(database.superuser_dsn) as conn:
        conn.execute(
            "insert into sessions (organization_id, user_id, refresh_digest, expires_at)"
            " values (%s, %s, %s, now() + interval '1 day')",
            (t.org, t.guest, random_digest()),
        )
        conn.execute("delete from organizations where id = %s", (t.org,))
        for table in ("users", "licenses", "license_activations", "projects", "sessions"):
            left = conn.execute(
                q("select count(*) from {t} where organization_id = %s", t=table), (t.org,)
            ).fetchone()
            assert left == (0,), table
