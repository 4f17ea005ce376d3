"""Helpers for the database tests: tenants built as the superuser, connections per role."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

# A well-formed argon2id PHC string (users.password_hash only accepts argon2id); nobody
# logs in with it.
FAKE_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA"
    "$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
)

TENANT_TABLES = (
    "organizations",
    "users",
    "licenses",
    "license_activations",
    "projects",
    "sessions",
    "spent_refresh_tokens",
    "account_tokens",
    "outbox",
    "audit_log",
)


def digest(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


def random_digest() -> bytes:
    return digest(secrets.token_bytes(32))


@dataclass(frozen=True)
class Tenant:
    """One organization with a user of every role, and one row in every tenant table."""

    org: uuid.UUID
    slug: str
    owner: uuid.UUID
    admin: uuid.UUID
    member: uuid.UUID
    guest: uuid.UUID
    license: uuid.UUID
    license_key: str
    activation: uuid.UUID
    project: uuid.UUID  # created by member
    session: uuid.UUID  # the owner's
    member_session: uuid.UUID
    refresh_digest: bytes  # the owner's session's current token
    spent_token: uuid.UUID  # a token the owner's session rotated away
    account_token: uuid.UUID  # the guest's password reset token
    mail: uuid.UUID  # a message in the outbox
    audit: uuid.UUID

    def row_id(self, table: str) -> uuid.UUID:
        return {
            "organizations": self.org,
            "users": self.guest,
            "licenses": self.license,
            "license_activations": self.activation,
            "projects": self.project,
            "sessions": self.session,
            "spent_refresh_tokens": self.spent_token,
            "account_tokens": self.account_token,
            "outbox": self.mail,
            "audit_log": self.audit,
        }[table]

    @property
    def emails(self) -> dict[str, str]:
        return {
            role: f"{role}.{self.slug}@example.test"
            for role in ("owner", "admin", "member", "guest")
        }


def create_tenant(superuser_dsn: str) -> Tenant:
    """Build a tenant as the superuser (RLS does not apply), committed."""
    tag = uuid.uuid4().hex[:12]
    slug = f"t-{tag}"
    ids = {
        name: uuid.uuid4()
        for name in (
            "org",
            "owner",
            "admin",
            "member",
            "guest",
            "license",
            "activation",
            "project",
            "session",
            "member_session",
            "spent_token",
            "account_token",
            "mail",
            "audit",
        )
    }
    license_key = f"cdt_test_{secrets.token_hex(16)}"
    refresh = random_digest()
    with psycopg.connect(superuser_dsn) as conn:
        conn.execute(
            "insert into organizations (id, name, slug) values (%s, %s, %s)",
            (ids["org"], f"Tenant {tag}", slug),
        )
        for role in ("owner", "admin", "member", "guest"):
            conn.execute(
                "insert into users (id, organization_id, email, full_name, role, password_hash)"
                " values (%s, %s, %s, %s, %s, %s)",
                (
                    ids[role],
                    ids["org"],
                    f"{role}.{slug}@example.test",
                    f"{role.title()} {tag}",
                    role.upper(),
                    FAKE_HASH,
                ),
            )
        conn.execute(
            "update organizations set owner_id = %s where id = %s", (ids["owner"], ids["org"])
        )
        conn.execute(
            "insert into licenses (id, organization_id, name, key_prefix, key_digest, tier, seats)"
            " values (%s, %s, 'Test license', %s, %s, 'PRO', 3)",
            (ids["license"], ids["org"], license_key[:12], digest(license_key)),
        )
        conn.execute(
            "insert into license_activations (id, organization_id, license_id, fingerprint_digest)"
            " values (%s, %s, %s, %s)",
            (ids["activation"], ids["org"], ids["license"], random_digest()),
        )
        conn.execute(
            "insert into projects (id, organization_id, name, created_by) values (%s, %s, %s, %s)",
            (ids["project"], ids["org"], f"Project {tag}", ids["member"]),
        )
        for key, user in (("session", "owner"), ("member_session", "member")):
            conn.execute(
                "insert into sessions (id, organization_id, user_id, refresh_digest, expires_at)"
                " values (%s, %s, %s, %s, now() + interval '1 day')",
                (ids[key], ids["org"], ids[user], refresh if key == "session" else random_digest()),
            )
        conn.execute(
            "insert into spent_refresh_tokens (id, organization_id, session_id, refresh_digest)"
            " values (%s, %s, %s, %s)",
            (ids["spent_token"], ids["org"], ids["session"], random_digest()),
        )
        conn.execute(
            "insert into account_tokens (id, organization_id, user_id, purpose, token_digest,"
            " expires_at) values (%s, %s, %s, 'password_reset', %s, now() + interval '1 hour')",
            (ids["account_token"], ids["org"], ids["guest"], random_digest()),
        )
        conn.execute(
            "insert into outbox (id, organization_id, kind, recipient, subject, body)"
            " values (%s, %s, 'password_reset', %s, 'Reset', 'A link')",
            (ids["mail"], ids["org"], f"guest.{slug}@example.test"),
        )
        conn.execute(
            "insert into audit_log (id, organization_id, actor_id, action, target_type, target_id)"
            " values (%s, %s, %s, 'project.created', 'project', %s)",
            (ids["audit"], ids["org"], ids["member"], ids["project"]),
        )
    return Tenant(slug=slug, license_key=license_key, refresh_digest=refresh, **ids)


def drop_tenants(superuser_dsn: str, orgs: list[uuid.UUID]) -> None:
    if orgs:
        with psycopg.connect(superuser_dsn) as conn:
            conn.execute("delete from organizations where id = any(%s)", (orgs,))


@pytest.fixture
def make_tenant(database: Any) -> Iterator[Callable[[], Tenant]]:
    """Tenants that live for one test."""
    made: list[uuid.UUID] = []

    def make() -> Tenant:
        tenant = create_tenant(database.superuser_dsn)
        made.append(tenant.org)
        return tenant

    yield make
    drop_tenants(database.superuser_dsn, made)


@pytest.fixture(scope="module")
def tenants(database: Any) -> Iterator[tuple[Tenant, Tenant]]:
    """Two tenants, A and B, shared by a module's tests (which must not change them)."""
    a, b = create_tenant(database.superuser_dsn), create_tenant(database.superuser_dsn)
    yield a, b
    drop_tenants(database.superuser_dsn, [a.org, b.org])


def set_tenant(conn: psycopg.Connection[Any], tenant: Tenant, role: str = "OWNER") -> None:
    user = {
        "OWNER": tenant.owner,
        "ADMIN": tenant.admin,
        "MEMBER": tenant.member,
        "GUEST": tenant.guest,
    }[role]
    conn.execute("select app.set_tenant(%s, %s, %s)", (tenant.org, user, role))


def q(template: str, **names: str) -> sql.Composed:
    """A statement with table and column names filled in as quoted identifiers."""
    return sql.SQL(template).format(**{k: sql.Identifier(v) for k, v in names.items()})


def fails(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> psycopg.Error:
    """Run a statement that must fail, in a savepoint; returns the error."""
    with pytest.raises(psycopg.Error) as info, conn.transaction():
        conn.execute(query, params)
    return info.value
