"""app.begin_request: the first statement of every API transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.db.conftest import Tenant

BEGIN = "select role, status, email, full_name from app.begin_request(%s, %s, %s)"


def as_system(database: Any, query: str, params: Any) -> None:
    with psycopg.connect(database.superuser_dsn) as conn:
        assert conn.execute(query, params).rowcount == 1


def begin(database: Any, org: Any, user: Any, session: Any) -> tuple[list[Any], Any, int]:
    """begin_request as the app role: its rows, the context it left, the users visible."""
    with psycopg.connect(database.app_dsn) as conn:
        rows = conn.execute(BEGIN, (org, user, session)).fetchall()
        context = conn.execute(
            "select app.current_org_id(), app.current_user_id(), app.current_role()"
        ).fetchone()
        visible = conn.execute("select count(*) from users").fetchone()[0]  # type: ignore[index]
        conn.rollback()
    return rows, context, visible


def test_live_session_sets_context_and_returns_current_role(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    t = make_tenant()
    rows, context, visible = begin(database, t.org, t.owner, t.session)
    assert len(rows) == 1
    assert rows[0][:3] == ("OWNER", "ACTIVE", t.emails["owner"])
    assert rows[0][3].startswith("Owner ")
    assert context == (t.org, t.owner, "OWNER")
    assert visible == 4


def test_role_comes_from_the_database_not_the_caller(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    t = make_tenant()
    rows, context, _ = begin(database, t.org, t.member, t.member_session)
    assert rows[0][0] == "MEMBER"
    assert context[2] == "MEMBER"
    as_system(database, "update users set role = 'GUEST' where id = %s", (t.member,))
    rows, context, _ = begin(database, t.org, t.member, t.member_session)
    assert rows[0][0] == "GUEST"
    assert context[2] == "GUEST"


CASES = {
    "revoked session": (
        "update sessions set revoked_at = now(), revoked_reason = 'logout' where id = %s",
        "session",
    ),
    "expired session": (
        "update sessions set expires_at = now() - interval '1 second' where id = %s",
        "session",
    ),
    "suspended user": ("update users set status = 'SUSPENDED' where id = %s", "owner"),
    "invited user": ("update users set status = 'INVITED' where id = %s", "owner"),
    "deleted user": ("update users set deleted_at = now() where id = %s", "owner"),
    "suspended organization": (
        "update organizations set status = 'SUSPENDED' where id = %s",
        "org",
    ),
    "deleted organization": ("update organizations set deleted_at = now() where id = %s", "org"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_not_live_returns_no_row_and_clears_context(
    database: Any, make_tenant: Callable[[], Tenant], case: str
) -> None:
    t = make_tenant()
    rows, _, _ = begin(database, t.org, t.owner, t.session)
    assert len(rows) == 1  # live before the change
    query, target = CASES[case]
    as_system(database, query, (getattr(t, target),))
    rows, context, visible = begin(database, t.org, t.owner, t.session)
    assert rows == []
    assert context == (None, None, None)
    assert visible == 0


def test_session_must_belong_to_the_user_and_organization(
    database: Any, make_tenant: Callable[[], Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    for org, user, session in (
        (a.org, a.admin, a.session),  # someone else's session
        (b.org, a.owner, a.session),  # another organization
        (a.org, b.owner, b.session),  # a user of another organization
        (a.org, a.owner, b.session),  # a session of another organization
    ):
        rows, context, visible = begin(database, org, user, session)
        assert rows == []
        assert context == (None, None, None)
        assert visible == 0
