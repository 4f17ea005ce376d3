"""Roles x operations for organizations and users, and another tenant's ids on every one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import PASSWORD, Account, unique_email

ROLES = ["OWNER", "ADMIN", "MEMBER", "GUEST"]


@dataclass
class World:
    members: dict[str, Account]  # one account per role in organization A
    target: Account  # a MEMBER of A that the operations act on
    outsider: Account  # the OWNER of organization B


@pytest.fixture
def world(signup: Callable[..., Account], add_user: Callable[..., Account]) -> World:
    owner = signup()
    members = {"OWNER": owner}
    for role in ROLES[1:]:
        members[role] = add_user(owner, role)
    return World(members, add_user(owner, "MEMBER"), signup())


def call(client: TestClient, account: Account, op: str, org_id: str, user_id: str) -> Any:
    h = account.headers
    if op == "getOrganization":
        return client.get(f"/api/v1/organizations/{org_id}", headers=h)
    if op == "updateOrganization":
        return client.patch(
            f"/api/v1/organizations/{org_id}", json={"metadata": {"k": 1}}, headers=h
        )
    if op == "listUsers":
        return client.get("/api/v1/users", headers=h)
    if op == "createUser":
        body = {"email": unique_email(), "full_name": "New", "role": "GUEST", "password": PASSWORD}
        return client.post("/api/v1/users", json=body, headers=h)
    if op == "getUser":
        return client.get(f"/api/v1/users/{user_id}", headers=h)
    if op == "updateUser":
        return client.patch(f"/api/v1/users/{user_id}", json={"full_name": "Renamed"}, headers=h)
    if op == "deleteUser":
        return client.delete(f"/api/v1/users/{user_id}", headers=h)
    raise AssertionError(op)


EXPECTED = {
    #                    OWNER ADMIN MEMBER GUEST
    "getOrganization": (200, 200, 200, 200),
    "updateOrganization": (200, 200, 403, 403),
    "listUsers": (200, 200, 200, 200),
    "createUser": (201, 201, 403, 403),
    "getUser": (200, 200, 200, 200),
    "updateUser": (200, 200, 403, 403),
    "deleteUser": (204, 204, 403, 403),
}


@pytest.mark.parametrize("op", list(EXPECTED))
def test_role_matrix(client: TestClient, world: World, op: str) -> None:
    org_id = world.members["OWNER"].org_id
    for role, expected in zip(ROLES, EXPECTED[op], strict=True):
        response = call(client, world.members[role], op, org_id, world.target.id)
        assert response.status_code == expected, f"{role} {op}: {response.text}"
        if expected == 403:
            assert response.json()["type"].endswith("/forbidden")
        if op == "deleteUser" and expected == 204:
            break  # the target is gone; the remaining roles were checked above it


@pytest.mark.parametrize("op", [*EXPECTED, "deleteOrganization"])
def test_another_tenants_ids_answer_404_for_every_role(
    client: TestClient, world: World, op: str
) -> None:
    foreign_org, foreign_user = world.outsider.org_id, world.outsider.id
    for role in ROLES:
        account = world.members[role]
        if op == "deleteOrganization":
            response = client.delete(
                f"/api/v1/organizations/{foreign_org}", headers=account.headers
            )
        elif op in ("listUsers", "createUser"):
            continue  # no id in the path: they act on the caller's own organization
        else:
            response = call(client, account, op, foreign_org, foreign_user)
        assert response.status_code == 404, f"{role} {op}: {response.text}"
    # and the outsider's data is untouched
    assert (
        client.get(f"/api/v1/users/{foreign_user}", headers=world.outsider.headers).json()[
            "full_name"
        ]
        != "Renamed"
    )


def test_list_users_shows_only_the_callers_organization(client: TestClient, world: World) -> None:
    listed = client.get("/api/v1/users?limit=100", headers=world.members["GUEST"].headers).json()
    ids = {u["id"] for u in listed["data"]}
    assert ids == {a.id for a in world.members.values()} | {world.target.id}
    assert listed["next_cursor"] is None


def test_list_users_pages_with_a_cursor(client: TestClient, world: World) -> None:
    headers = world.members["OWNER"].headers
    seen: list[str] = []
    url = "/api/v1/users?limit=2"
    while True:
        page = client.get(url, headers=headers).json()
        seen += [u["id"] for u in page["data"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/users?limit=2&cursor={page['next_cursor']}"
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize("cursor", ["garbage", "AAAA", "a" * 60, "_-_-"])
def test_forged_cursors_are_400(client: TestClient, world: World, cursor: str) -> None:
    response = client.get(f"/api/v1/users?cursor={cursor}", headers=world.members["OWNER"].headers)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-cursor")


def test_another_tenants_cursor_is_400(client: TestClient, world: World) -> None:
    page = client.get("/api/v1/users?limit=1", headers=world.members["OWNER"].headers).json()
    response = client.get(
        f"/api/v1/users?cursor={page['next_cursor']}", headers=world.outsider.headers
    )
    assert response.status_code == 400


def test_only_the_owner_deletes_the_organization(client: TestClient, world: World) -> None:
    org_id = world.members["OWNER"].org_id
    for role in ("ADMIN", "MEMBER", "GUEST"):
        assert (
            client.delete(
                f"/api/v1/organizations/{org_id}", headers=world.members[role].headers
            ).status_code
            == 403
        )
    assert (
        client.delete(
            f"/api/v1/organizations/{org_id}", headers=world.members["OWNER"].headers
        ).status_code
        == 204
    )
    for account in world.members.values():
        assert client.get("/api/v1/auth/me", headers=account.headers).status_code == 401
    assert (
        client.get(
            f"/api/v1/organizations/{world.outsider.org_id}", headers=world.outsider.headers
        ).status_code
        == 200
    )


def test_admins_cannot_grant_or_manage_above_themselves(client: TestClient, world: World) -> None:
    admin = world.members["ADMIN"].headers
    owner_id = world.members["OWNER"].id
    body = {"email": unique_email(), "full_name": "X", "role": "OWNER", "password": PASSWORD}
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 403
    assert (
        client.patch(
            f"/api/v1/users/{world.target.id}", json={"role": "OWNER"}, headers=admin
        ).status_code
        == 403
    )
    assert (
        client.patch(
            f"/api/v1/users/{owner_id}", json={"full_name": "Nope"}, headers=admin
        ).status_code
        == 403
    )
    assert client.delete(f"/api/v1/users/{owner_id}", headers=admin).status_code == 403
    # ADMINs manage and grant only the roles below their own
    assert (
        client.patch(
            f"/api/v1/users/{world.target.id}", json={"role": "ADMIN"}, headers=admin
        ).status_code
        == 403
    )
    other_admin = world.members["ADMIN"]
    assert (
        client.patch(
            f"/api/v1/users/{world.target.id}", json={"role": "GUEST"}, headers=admin
        ).status_code
        == 200
    )
    assert (
        client.patch(
            f"/api/v1/users/{other_admin.id}",
            json={"role": "GUEST"},
            headers=world.members["OWNER"].headers,
        ).status_code
        == 200
    )


def test_nobody_raises_their_own_role(client: TestClient, world: World) -> None:
    for role in ("ADMIN", "MEMBER", "GUEST"):
        account = world.members[role]
        response = client.patch(
            f"/api/v1/users/{account.id}", json={"role": "OWNER"}, headers=account.headers
        )
        assert response.status_code == 403, role
    member = world.members["MEMBER"]
    response = client.patch(
        f"/api/v1/users/{member.id}", json={"full_name": "Self Edit"}, headers=member.headers
    )
    assert response.status_code == 200


def test_self_rules_hold_for_an_upper_case_id(
    client: TestClient, world: World, add_user: Callable[..., Account]
) -> None:
    member = world.members["MEMBER"]
    response = client.patch(
        f"/api/v1/users/{member.id.upper()}",
        json={"full_name": "Upper Case Self"},
        headers=member.headers,
    )
    assert response.status_code == 200, response.text
    owner = world.members["OWNER"]
    other_owner = add_user(owner, "OWNER")
    response = client.patch(
        f"/api/v1/users/{other_owner.id.upper()}",
        json={"status": "SUSPENDED"},
        headers=other_owner.headers,
    )
    assert response.status_code == 403, "nobody changes their own status, however it is spelt"


def test_any_user_may_leave_the_organization(
    client: TestClient, world: World, add_user: Callable[..., Account]
) -> None:
    guest = add_user(world.members["OWNER"], "GUEST")
    assert client.delete(f"/api/v1/users/{guest.id}", headers=guest.headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=guest.headers).status_code == 401


def test_the_last_owner_can_be_neither_demoted_nor_removed(
    client: TestClient, world: World, add_user: Callable[..., Account]
) -> None:
    owner = world.members["OWNER"]
    assert (
        client.patch(
            f"/api/v1/users/{owner.id}", json={"role": "ADMIN"}, headers=owner.headers
        ).status_code
        == 409
    )
    assert client.delete(f"/api/v1/users/{owner.id}", headers=owner.headers).status_code == 409
    second = add_user(owner, "OWNER")
    assert (
        client.patch(
            f"/api/v1/users/{owner.id}", json={"role": "ADMIN"}, headers=second.headers
        ).status_code
        == 200
    )
    assert client.delete(f"/api/v1/users/{second.id}", headers=second.headers).status_code == 409


def test_revocations_take_effect_on_the_next_request(client: TestClient, world: World) -> None:
    owner = world.members["OWNER"].headers
    admin, member, guest = world.members["ADMIN"], world.members["MEMBER"], world.members["GUEST"]
    # demoted: the role is read from the database, not the token
    assert (
        client.patch(
            f"/api/v1/users/{admin.id}", json={"role": "MEMBER"}, headers=owner
        ).status_code
        == 200
    )
    body = {"email": unique_email(), "full_name": "X", "role": "GUEST", "password": PASSWORD}
    assert client.post("/api/v1/users", json=body, headers=admin.headers).status_code == 403
    # suspended and deleted: their sessions end
    assert (
        client.patch(
            f"/api/v1/users/{member.id}", json={"status": "SUSPENDED"}, headers=owner
        ).status_code
        == 200
    )
    assert client.get("/api/v1/auth/me", headers=member.headers).status_code == 401
    assert client.delete(f"/api/v1/users/{guest.id}", headers=owner).status_code == 204
    assert client.get("/api/v1/auth/me", headers=guest.headers).status_code == 401
    assert client.get(f"/api/v1/users/{guest.id}", headers=owner).status_code == 404


def test_a_taken_email_is_409_for_create_user(client: TestClient, world: World) -> None:
    body = {
        "email": world.target.email.upper(),
        "full_name": "Dup",
        "role": "GUEST",
        "password": PASSWORD,
    }
    assert (
        client.post("/api/v1/users", json=body, headers=world.members["OWNER"].headers).status_code
        == 409
    )


def test_role_changes_are_audited_in_the_same_transaction(
    client: TestClient, world: World, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    owner = world.members["OWNER"]
    client.patch(f"/api/v1/users/{world.target.id}", json={"role": "GUEST"}, headers=owner.headers)
    rows = sql(
        "select actor_id::text, action, detail->>'to' from audit_log"
        " where target_id = %s order by created_at",
        world.target.id,
    )
    assert "user.role_changed" in [r[1] for r in rows]
    assert (
        owner.id,
        "user.role_changed",
        "GUEST",
    ) in rows
