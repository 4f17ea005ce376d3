"""The account lifecycle: deletion frees emails and ownership, sessions, password change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.api.conftest import Account, login

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
