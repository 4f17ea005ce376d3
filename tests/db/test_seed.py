"""The development seed data loads, is idempotent, matches its documentation and obeys RLS."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher

from db import migrations
from tests.db.conftest import q

ACME = "a0000001-0000-4000-8000-000000000001"
GLOBEX = "b0000001-0000-4000-8000-000000000001"
ACME_OWNER = "a0000002-0000-4000-8000-000000000001"
GLOBEX_OWNER = "b0000002-0000-4000-8000-000000000001"
DEV_PASSWORD = "coditect-dev-password"

# What the header of dev_seed_data.sql documents.
DEV_KEYS = {
    "cdt_dev_acme_free_0000000000000001": (ACME, "FREE", "ACTIVE"),
    "cdt_dev_acme_pro_0000000000000001": (ACME, "PRO", "ACTIVE"),
    "cdt_dev_acme_ent_0000000000000001": (ACME, "ENTERPRISE", "ACTIVE"),
    "cdt_dev_acme_pro_0000000000000002": (ACME, "PRO", "ACTIVE"),
    "cdt_dev_globex_free_0000000000000001": (GLOBEX, "FREE", "ACTIVE"),
    "cdt_dev_globex_pro_0000000000000001": (GLOBEX, "PRO", "SUSPENDED"),
    "cdt_dev_globex_ent_0000000000000001": (GLOBEX, "ENTERPRISE", "ACTIVE"),
    "cdt_dev_globex_pro_0000000000000002": (GLOBEX, "PRO", "REVOKED"),
}

# Rows per organization: (users, licenses, projects, activations, audit entries).
EXPECTED = {ACME: (6, 4, 4, 4, 5), GLOBEX: (5, 4, 3, 3, 3)}
TABLES = ("users", "licenses", "projects", "license_activations", "audit_log")


@pytest.fixture(scope="module")
def seeded(make_database: Callable[[], Any]) -> Any:
    db = make_database()
    migrations.apply(db.admin_dsn)
    migrations.seed(db.admin_dsn)
    return db


def counts(conn: psycopg.Connection[Any], org: str | None = None) -> tuple[int, ...]:
    if org is None:
        template, params = "select count(*) from {t}", None
    else:
        template, params = "select count(*) from {t} where organization_id = %s", (org,)
    return tuple(conn.execute(q(template, t=table), params).fetchone()[0] for table in TABLES)


def test_seed_is_idempotent(seeded: Any) -> None:
    with psycopg.connect(seeded.admin_dsn) as conn:
        before = counts(conn)
    migrations.seed(seeded.admin_dsn)
    with psycopg.connect(seeded.admin_dsn) as conn:
        assert counts(conn) == before
        assert before == tuple(a + b for a, b in zip(*EXPECTED.values(), strict=True))


def test_seed_covers_every_role_status_and_tier(seeded: Any) -> None:
    with psycopg.connect(seeded.admin_dsn) as conn:
        for org in (ACME, GLOBEX):
            roles = {
                r[0]
                for r in conn.execute("select role from users where organization_id = %s", (org,))
            }
            assert roles == {"OWNER", "ADMIN", "MEMBER", "GUEST"}
            assert conn.execute(
                "select count(*) from users where organization_id = %s and status = 'SUSPENDED'",
                (org,),
            ).fetchone() == (1,)
            tiers = {
                r[0]
                for r in conn.execute(
                    "select tier from licenses where organization_id = %s", (org,)
                )
            }
            assert tiers == {"FREE", "PRO", "ENTERPRISE"}
        assert conn.execute(
            "select count(*) from licenses where expires_at < now()"
        ).fetchone() == (1,)
        assert conn.execute("select id, owner_id from organizations order by id").fetchall() == [
            (uuid.UUID(ACME), uuid.UUID(ACME_OWNER)),
            (uuid.UUID(GLOBEX), uuid.UUID(GLOBEX_OWNER)),
        ]


def test_seed_credentials_match_the_documentation(seeded: Any) -> None:
    hasher = PasswordHasher()
    with psycopg.connect(seeded.admin_dsn) as conn:
        hashes = conn.execute("select email, password_hash from users").fetchall()
        assert len(hashes) == 11
        for email, stored in hashes:
            assert stored.startswith("$argon2id$")
            assert hasher.verify(stored, DEV_PASSWORD), email
        for key, (org, tier, status) in DEV_KEYS.items():
            row = conn.execute(
                "select organization_id::text, tier::text, status::text, key_prefix"
                " from licenses where key_digest = %s",
                (hashlib.sha256(key.encode()).digest(),),
            ).fetchone()
            assert row == (org, tier, status, key[:12]), key


@pytest.mark.parametrize(("org", "owner"), [(ACME, ACME_OWNER), (GLOBEX, GLOBEX_OWNER)])
def test_app_role_sees_only_its_organization(seeded: Any, org: str, owner: str) -> None:
    with psycopg.connect(seeded.app_dsn) as conn:
        assert counts(conn) == (0, 0, 0, 0, 0)
        conn.execute("select app.set_tenant(%s, %s, 'OWNER')", (org, owner))
        assert counts(conn) == EXPECTED[org]
        for table in TABLES:
            seen = {
                r[0]
                for r in conn.execute(q("select distinct organization_id::text from {t}", t=table))
            }
            assert seen == {org}, table
        assert conn.execute("select id::text from organizations").fetchall() == [(org,)]
        conn.rollback()


def test_seed_users_can_log_in_through_pretenant(seeded: Any) -> None:
    with psycopg.connect(seeded.app_dsn) as conn:
        row = conn.execute(
            "select user_id::text, organization_id::text, user_status, organization_live"
            " from pretenant.find_login('Ada.Okafor@acme.example')"
        ).fetchone()
        assert row == (ACME_OWNER, ACME, "ACTIVE", True)
