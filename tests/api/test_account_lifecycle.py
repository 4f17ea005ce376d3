"""The account lifecycle: deletion frees emails and ownership, sessions, password change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.api.conftest import Account, login, unique_email

Sql = Callable[..., list[tuple[Any, ...]]]


def test_deleting_an_organization_frees_its_users_emails(
    client: TestClient, signup: Callable[..., Account], add_user: Callable[..., Account]
) -> None:
    owner = signup()
    member = add_user(owner, "MEMBER")
    deleted = client.delete(f"/api/v1/organizations/{owner.org_id}", headers=owner.headers)
    assert deleted.status_code == 204
    again = signup(email=owner.email)
    assert again.organization["id"] != owner.org_id
    assert signup(email=member.email.upper()).user["email"] == member.email.upper()
    tokens = login(client, owner.email)
    claims = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert claims["organization"]["id"] == again.org_id, "the login finds the new account"


def test_owner_id_is_null_once_the_owner_is_deleted(
    client: TestClient, signup: Callable[..., Account], add_user: Callable[..., Account]
) -> None:
    first = signup()
    second = add_user(first, "OWNER")
    assert client.delete(f"/api/v1/users/{first.id}", headers=second.headers).status_code == 204
    organization = client.get(f"/api/v1/organizations/{first.org_id}", headers=second.headers)
    assert organization.status_code == 200
    assert organization.json()["owner_id"] is None


def test_an_owner_leaving_releases_the_ownership_too(
    client: TestClient, signup: Callable[..., Account], add_user: Callable[..., Account]
) -> None:
    first = signup()
    second = add_user(first, "OWNER")
    assert client.delete(f"/api/v1/users/{first.id}", headers=first.headers).status_code == 204
    organization = client.get(f"/api/v1/organizations/{first.org_id}", headers=second.headers)
    assert organization.json()["owner_id"] is None


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def me_status(client: TestClient, tokens: dict[str, Any]) -> int:
    return client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code


def test_list_sessions_shows_the_callers_own_with_the_current_one_marked(
    client: TestClient, signup: Callable[..., Account], add_user: Callable[..., Account]
) -> None:
    owner = signup()
    phone = client.post(
        "/api/v1/auth/login",
        json={"email": owner.email, "password": owner.password},
        headers={"User-Agent": "coditect-cli/2.4.1"},
    ).json()
    add_user(owner, "MEMBER")  # a session of someone else in the same organization
    response = client.get("/api/v1/auth/sessions", headers=owner.headers)
    assert response.status_code == 200
    sessions = response.json()["data"]
    assert len(sessions) == 2, "only the caller's own, even for an OWNER"
    newest, first = sessions
    assert newest["user_agent"] == "coditect-cli/2.4.1"
    assert (newest["current"], first["current"]) == (False, True)
    assert client.get("/api/v1/auth/sessions", headers=bearer(phone)).json()["data"][0]["current"]


def test_list_sessions_pages_and_leaves_out_ended_ones(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    owner = signup()
    others = [login(client, owner.email) for _ in range(3)]
    assert client.post("/api/v1/auth/logout", headers=bearer(others[0])).status_code == 204
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/auth/sessions", params=params, headers=owner.headers).json()
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3


def test_another_users_cursor_is_400(client: TestClient, signup: Callable[..., Account]) -> None:
    owner = signup()
    login(client, owner.email)
    cursor = client.get("/api/v1/auth/sessions", params={"limit": 1}, headers=owner.headers).json()[
        "next_cursor"
    ]
    assert cursor is not None
    other = signup()
    response = client.get("/api/v1/auth/sessions", params={"cursor": cursor}, headers=other.headers)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-cursor")


def test_revoke_session_ends_one_of_the_callers_sessions(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    owner = signup()
    lost = login(client, owner.email)
    sessions = client.get("/api/v1/auth/sessions", headers=owner.headers).json()["data"]
    (lost_id,) = [s["id"] for s in sessions if not s["current"]]
    assert (
        client.delete(f"/api/v1/auth/sessions/{lost_id}", headers=owner.headers).status_code == 204
    )
    assert me_status(client, lost) == 401
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": lost["refresh_token"]})
    assert refreshed.status_code == 401
    assert me_status(client, owner.tokens) == 200
    again = client.delete(f"/api/v1/auth/sessions/{lost_id}", headers=owner.headers)
    assert again.status_code == 404, "an ended session is gone"


def test_another_users_session_answers_404_whatever_the_role(
    client: TestClient, signup: Callable[..., Account], add_user: Callable[..., Account]
) -> None:
    owner = signup()
    member = add_user(owner, "MEMBER")
    outsider = signup()
    for target in (member, outsider):
        sessions = client.get("/api/v1/auth/sessions", headers=target.headers).json()["data"]
        response = client.delete(
            f"/api/v1/auth/sessions/{sessions[0]['id']}", headers=owner.headers
        )
        assert response.status_code == 404
        assert me_status(client, target.tokens) == 200, "the session lives on"


def test_logout_everywhere_ends_every_session_of_the_caller_only(
    client: TestClient, signup: Callable[..., Account], add_user: Callable[..., Account]
) -> None:
    owner = signup()
    member = add_user(owner, "MEMBER")
    laptop = login(client, owner.email)
    response = client.post("/api/v1/auth/logout", params={"scope": "all"}, headers=owner.headers)
    assert response.status_code == 204
    assert me_status(client, owner.tokens) == 401
    assert me_status(client, laptop) == 401
    assert me_status(client, member.tokens) == 200


def test_change_password_ends_the_other_sessions_and_keeps_this_one(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    laptop = login(client, owner.email)
    new = "a brand new passphrase"
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": owner.password, "new_password": new},
        headers=owner.headers,
    )
    assert response.status_code == 204, response.text
    assert me_status(client, laptop) == 401, "the other session ends on its next request"
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert refreshed.status_code == 401
    assert me_status(client, owner.tokens) == 200, "the current one stays"
    old_login = client.post(
        "/api/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert old_login.status_code == 401
    assert me_status(client, login(client, owner.email, new)) == 200
    entries = sql(
        "select actor_id::text, target_id::text, detail from audit_log"
        " where organization_id = %s and action = 'user.password_changed'",
        owner.org_id,
    )
    assert entries == [(owner.id, owner.id, {"sessions_ended": 1})]


def test_change_password_needs_the_current_password(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    owner = signup()
    laptop = login(client, owner.email)
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not my password", "new_password": "a brand new passphrase"},
        headers=owner.headers,
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "body.current_password", "message": "is not correct"}
    ]
    assert me_status(client, laptop) == 200
    assert me_status(client, login(client, owner.email)) == 200


def test_a_reset_request_does_the_same_work_for_an_unknown_email(
    client: TestClient, signup: Callable[..., Account], monkeypatch: Any
) -> None:
    # Same answer, same statement with the same kinds of values, known email or not: only the
    # database decides, silently, whether to store a token and queue a message.
    owner = signup()
    database = client.app.runtime.database  # type: ignore[attr-defined]
    statements: list[tuple[str, list[str]]] = []
    original = database.anonymous_statement

    async def recording(query: Any, **params: Any) -> Any:
        statements.append((query.name, sorted(params)))
        return await original(query, **params)

    monkeypatch.setattr(database, "anonymous_statement", recording)
    answers = [
        client.post("/api/v1/auth/password/reset", json={"email": email})
        for email in (owner.email, unique_email("nobody"))
    ]
    assert [(r.status_code, r.content) for r in answers] == [(202, b""), (202, b"")]
    assert len(statements) == 2
    assert statements[0] == statements[1]
    assert statements[0][0] == "request_password_reset"
