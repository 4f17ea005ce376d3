"""The SECURITY DEFINER functions the API calls before it knows the tenant."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.db.conftest import FAKE_HASH, Tenant, drop_tenants, q, random_digest

SIGNUP = (
    "select * from pretenant.signup(%(email)s, %(hash)s, %(full_name)s, %(org_name)s,"
    " %(slug)s, %(key_digest)s, %(key_prefix)s, %(refresh)s, now() + interval '30 days',"
    " %(agent)s, %(ip)s)"
)


@pytest.fixture
def signed_up(database: Any) -> Iterator[list[uuid.UUID]]:
    """Organizations created by a test through signup, removed afterwards."""
    orgs: list[uuid.UUID] = []
    yield orgs
    with psycopg.connect(database.superuser_dsn) as conn:
        found = conn.execute(
            "select id from organizations where slug like %s", ("signup-%",)
        ).fetchall()
    drop_tenants(database.superuser_dsn, orgs + [r[0] for r in found])


def signup_params(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    params = {
        "email": f"Founder.{tag}@Example.test",
        "hash": FAKE_HASH,
        "full_name": "Founder",
        "org_name": f"Startup {tag}",
        "slug": f"signup-{tag}",
        "key_digest": random_digest(),
        "key_prefix": "cdt_live_abc",
        "refresh": random_digest(),
        "agent": "pytest",
        "ip": "192.0.2.10",
    }
    params.update(overrides)
    return params


def count_rows(database: Any, org: Any) -> dict[str, int]:
    with psycopg.connect(database.superuser_dsn) as conn:
        return {
            table: conn.execute(
                q("select count(*) from {t} where {c} = %s", t=table, c=column), (org,)
            ).fetchone()[0]  # type: ignore[index]
            for table, column in (
                ("organizations", "id"),
                ("users", "organization_id"),
                ("licenses", "organization_id"),
                ("sessions", "organization_id"),
                ("projects", "organization_id"),
                ("license_activations", "organization_id"),
                ("audit_log", "organization_id"),
            )
        }


def test_signup_creates_org_owner_free_license_and_session(
    database: Any, signed_up: list[uuid.UUID]
) -> None:
    params = signup_params()
    with psycopg.connect(database.app_dsn) as conn:
        rows = conn.execute(SIGNUP, params).fetchall()
    assert len(rows) == 1
    org, user, license_id, session = rows[0]
    signed_up.append(org)
    assert count_rows(database, org) == {
        "organizations": 1,
        "users": 1,
        "licenses": 1,
        "sessions": 1,
        "projects": 0,
        "license_activations": 0,
        "audit_log": 0,
    }
    with psycopg.connect(database.superuser_dsn) as conn:
        assert conn.execute(
            "select owner_id, status, slug from organizations where id = %s", (org,)
        ).fetchone() == (user, "ACTIVE", params["slug"])
        assert conn.execute(
            "select organization_id, email, role, status, password_hash from users where id = %s",
            (user,),
        ).fetchone() == (org, params["email"], "OWNER", "ACTIVE", FAKE_HASH)
        assert conn.execute(
            "select organization_id, name, tier, status, seats, machine_bound, key_digest,"
            " key_prefix, expires_at from licenses where id = %s",
            (license_id,),
        ).fetchone() == (
            org,
            "Free license",
            "FREE",
            "ACTIVE",
            1,
            True,
            params["key_digest"],
            "cdt_live_abc",
            None,
        )
        assert conn.execute(
            "select organization_id, user_id, refresh_digest, host(ip), revoked_at"
            " from sessions where id = %s",
            (session,),
        ).fetchone() == (org, user, params["refresh"], "192.0.2.10", None)
    # The new owner's first request works.
    with psycopg.connect(database.app_dsn) as conn:
        row = conn.execute(
            "select role from app.begin_request(%s, %s, %s)", (org, user, session)
        ).fetchone()
        assert row == ("OWNER",)


def test_signup_with_a_taken_email_creates_nothing(
    database: Any, signed_up: list[uuid.UUID]
) -> None:
    first = signup_params()
    with psycopg.connect(database.app_dsn) as conn:
        signed_up.append(conn.execute(SIGNUP, first).fetchone()[0])  # type: ignore[index]
        conn.commit()
        again = signup_params(email=first["email"].upper())
        with pytest.raises(psycopg.errors.UniqueViolation) as info, conn.transaction():
            conn.execute(SIGNUP, again)
        assert info.value.sqlstate == "23505"
        assert info.value.diag.constraint_name == "users_email_live_key"
        conn.commit()
    with psycopg.connect(database.superuser_dsn) as conn:
        leftovers = conn.execute(
            "select count(*) from organizations where slug = %s", (again["slug"],)
        ).fetchone()
        assert leftovers == (0,)
        taken = conn.execute(
            "select count(*) from licenses where key_digest = %s", (again["key_digest"],)
        ).fetchone()
        assert taken == (0,)


def test_signup_with_a_taken_slug_names_its_constraint(
    database: Any, signed_up: list[uuid.UUID]
) -> None:
    first = signup_params()
    with psycopg.connect(database.app_dsn) as conn:
        signed_up.append(conn.execute(SIGNUP, first).fetchone()[0])  # type: ignore[index]
        conn.commit()
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            conn.execute(SIGNUP, signup_params(slug=first["slug"]))
        assert info.value.diag.constraint_name == "organizations_slug_live_key"


def test_find_login_is_case_insensitive_and_ignores_deleted_users(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    t = make_tenant()
    with psycopg.connect(database.app_dsn) as conn:
        rows = conn.execute(
            "select * from pretenant.find_login(%s)", (t.emails["admin"].upper(),)
        ).fetchall()
        assert rows == [(t.admin, t.org, FAKE_HASH, "ACTIVE", True)]
        assert (
            conn.execute(
                "select * from pretenant.find_login(%s)", ("nobody@example.test",)
            ).fetchall()
            == []
        )
    with psycopg.connect(database.superuser_dsn) as conn:
        conn.execute("update users set deleted_at = now() where id = %s", (t.admin,))
        conn.execute("update organizations set status = 'SUSPENDED' where id = %s", (t.org,))
    with psycopg.connect(database.app_dsn) as conn:
        assert (
            conn.execute("select * from pretenant.find_login(%s)", (t.emails["admin"],)).fetchall()
            == []
        )
        assert conn.execute(
            "select organization_live from pretenant.find_login(%s)", (t.emails["owner"],)
        ).fetchall() == [(False,)]


def test_open_session_only_for_live_active_users(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    t = make_tenant()
    query = "select pretenant.open_session(%s, %s, now() + interval '1 day', 'pytest', '::1')"
    with psycopg.connect(database.app_dsn) as conn:
        session = conn.execute(query, (t.guest, random_digest())).fetchone()[0]  # type: ignore[index]
        conn.commit()
        assert session is not None
    with psycopg.connect(database.superuser_dsn) as conn:
        assert conn.execute(
            "select s.user_id, s.organization_id, u.last_login_at is not null"
            " from sessions s join users u on u.id = s.user_id where s.id = %s",
            (session,),
        ).fetchone() == (t.guest, t.org, True)
        conn.execute("update users set status = 'SUSPENDED' where id = %s", (t.guest,))
        conn.execute("update organizations set deleted_at = now() where id = %s", (t.org,))
    with psycopg.connect(database.app_dsn) as conn:
        for user in (t.guest, t.member, uuid.uuid4()):
            assert conn.execute(query, (user, random_digest())).fetchone() == (None,)


def test_set_password_hash_compares_and_sets(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    t = make_tenant()
    new_hash = FAKE_HASH.replace("t=2", "t=3")
    query = "select pretenant.set_password_hash(%s, %s, %s)"
    with psycopg.connect(database.app_dsn, autocommit=True) as conn:
        assert conn.execute(query, (t.member, "$argon2id$stale", new_hash)).fetchone() == (False,)
        assert conn.execute(query, (t.member, FAKE_HASH, new_hash)).fetchone() == (True,)
        assert conn.execute(query, (t.member, FAKE_HASH, new_hash)).fetchone() == (False,)
        assert conn.execute(
            "select password_hash from pretenant.find_login(%s)", (t.emails["member"],)
        ).fetchone() == (new_hash,)


ROTATE = "select * from pretenant.rotate_refresh(%s, %s, %s::interval)"


def rotate(database: Any, old: bytes, new: bytes, grace: str = "10 seconds") -> tuple[Any, ...]:
    with psycopg.connect(database.app_dsn, autocommit=True) as conn:
        return conn.execute(ROTATE, (old, new, grace)).fetchone()  # type: ignore[return-value]


def session_state(database: Any, session: Any) -> tuple[Any, ...]:
    with psycopg.connect(database.superuser_dsn) as conn:
        return conn.execute(  # type: ignore[return-value]
            "select refresh_digest, previous_refresh_digest, rotated_at is not null,"
            " revoked_at is not null, revoked_reason from sessions where id = %s",
            (session,),
        ).fetchone()


def test_rotate_refresh_outcomes(database: Any, make_tenant: Callable[[], Tenant]) -> None:
    t = make_tenant()
    ids = (t.session, t.owner, t.org)
    t1, t2, t3, t4 = t.refresh_digest, random_digest(), random_digest(), random_digest()

    assert rotate(database, t1, t2) == ("rotated", *ids)
    assert session_state(database, t.session) == (t2, t1, True, False, None)

    # The previous token again within the grace window (a retry): re-issued, once. The token
    # it displaces is spent, and the grace is used up.
    assert rotate(database, t1, t3) == ("grace", *ids)
    assert session_state(database, t.session) == (t3, None, False, False, None)

    # Tokens the session never had: invalid, the session lives on.
    assert rotate(database, random_digest(), t4) == ("invalid", None, None, None)
    assert session_state(database, t.session)[0] == t3

    # Any spent token (here the one the grace displaced): reuse, the session is revoked.
    assert rotate(database, t2, t4) == ("reused", *ids)
    assert session_state(database, t.session) == (t3, None, False, True, "refresh_reuse")

    # The current token of a revoked session is no longer any good.
    assert rotate(database, t3, t4) == ("invalid", None, None, None)


@pytest.mark.parametrize(
    ("replayed", "grace"), [(0, "10 seconds"), (1, "0 seconds"), (1, "10 seconds")]
)
def test_rotate_refresh_revokes_on_any_spent_token(
    database: Any, make_tenant: Callable[[], Tenant], replayed: int, grace: str
) -> None:
    # tokens[0] is two rotations old; tokens[1] the previous one, outside the grace window
    # or presented a second time within it.
    t = make_tenant()
    tokens = [t.refresh_digest, random_digest(), random_digest()]
    assert rotate(database, tokens[0], tokens[1])[0] == "rotated"
    assert rotate(database, tokens[1], tokens[2])[0] == "rotated"
    if grace != "0 seconds" and replayed == 1:
        assert rotate(database, tokens[1], random_digest(), grace)[0] == "grace"
    assert rotate(database, tokens[replayed], random_digest(), grace)[0] == "reused"
    assert session_state(database, t.session)[3:] == (True, "refresh_reuse")


def test_rotate_refresh_refuses_sessions_that_are_not_live(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    t = make_tenant()
    with psycopg.connect(database.superuser_dsn) as conn:
        conn.execute("update users set status = 'SUSPENDED' where id = %s", (t.owner,))
    assert rotate(database, t.refresh_digest, random_digest()) == ("invalid", None, None, None)
    assert session_state(database, t.session)[0] == t.refresh_digest


def test_concurrent_refreshes_serialize(database: Any, make_tenant: Callable[[], Tenant]) -> None:
    t = make_tenant()
    results: list[str] = []
    barrier = threading.Barrier(2)
    with psycopg.connect(database.app_dsn) as holder:
        # Hold the session row so that both refreshes queue up behind the lock.
        holder.execute("select app.set_tenant(%s, %s, 'OWNER')", (t.org, t.owner))
        holder.execute("select 1 from sessions where id = %s for update", (t.session,))

        def refresh() -> None:
            barrier.wait()
            results.append(rotate(database, t.refresh_digest, random_digest())[0])

        threads = [threading.Thread(target=refresh) for _ in range(2)]
        for thread in threads:
            thread.start()
        with psycopg.connect(database.superuser_dsn, autocommit=True) as admin:
            for _ in range(100):
                waiting = admin.execute(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                    " and query like '%rotate_refresh%'"
                ).fetchone()[0]  # type: ignore[index]
                if waiting >= 2:
                    break
                threading.Event().wait(0.02)
        holder.rollback()
        for thread in threads:
            thread.join(timeout=10)
    assert sorted(results) == ["grace", "rotated"]


def test_app_cannot_create_in_pretenant(database: Any) -> None:
    with (
        psycopg.connect(database.app_dsn) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(
            "create function pretenant.signup(p_email text) returns int language sql as 'select 1'"
        )


def test_login_lookup_finds_its_user_by_index_under_rls(database: Any, make_tenant: Any) -> None:
    """find_login runs as coditect_system, to which RLS applies: its email comparison must
    be one the planner may use an index for before the policies' checks (0019). Planned
    over 20,000 users (rolled back), where scanning them all is what the planner avoids."""
    tenant = make_tenant()
    with psycopg.connect(database.superuser_dsn) as conn:
        body = conn.execute(
            "select prosrc from pg_proc where oid = 'pretenant.find_login(varchar)'::regprocedure"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "insert into users (organization_id, email, full_name, password_hash)"
            " select %s, 'bulk-' || g || '@example.test', 'Bulk', %s"
            " from generate_series(1, 20000) g",
            (tenant.org, FAKE_HASH),
        )
        conn.execute("analyze public.users")
        conn.execute("set local role coditect_system")
        plan = conn.execute(
            "explain (format json) " + body.replace("p_email", "'Bulk-777@Example.test'")
        ).fetchone()[0]  # type: ignore[index]
        conn.rollback()
    nodes, scans = [plan[0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == "users":
            condition = node.get("Index Cond") or node.get("Recheck Cond") or ""
            scans.append((node["Node Type"], condition))
    assert len(scans) == 1
    node_type, condition = scans[0]
    assert node_type in {"Index Scan", "Bitmap Heap Scan", "Index Only Scan"}, scans
    assert "email_key" in condition, scans
