"""Signup, login, refresh rotation and reuse detection, logout, me, and forged tokens."""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import jwt
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from app.config import PasswordHashing, Settings
from tests.api.conftest import PASSWORD, Account, login, unique_email

Sql = Callable[..., list[tuple[Any, ...]]]


def me(client: TestClient, access_token: str) -> Any:
    return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {access_token}"})


def refresh(client: TestClient, token: str) -> Any:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def test_signup_creates_organization_owner_and_free_license(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    account = signup(organization_name="Acme Robotics")
    assert account.user["role"] == "OWNER"
    assert account.organization["owner_id"] == account.user["id"]
    assert account.organization["slug"].startswith("acme-robotics")
    assert account.license["tier"] == "FREE"
    key = account.license["license_key"]
    assert key.startswith(account.license["key_prefix"])
    assert len(key) >= 40
    assert account.tokens["token_type"] == "Bearer"
    stored = sql(
        "select count(*) from licenses where key_prefix = %s and key_digest = sha256(%s::bytea)",
        account.license["key_prefix"],
        key.encode(),
    )
    assert stored == [(1,)], "the key is stored only as its digest"
    body = me(client, account.tokens["access_token"]).json()
    assert body["user"]["email"] == account.email
    assert body["organization"]["id"] == account.org_id


def test_signup_answers_201_with_location(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "email": unique_email(),
            "password": PASSWORD,
            "full_name": "A",
            "organization_name": "Loc Org",
        },
    )
    assert response.status_code == 201
    assert (
        response.headers["location"]
        == f"/api/v1/organizations/{response.json()['organization']['id']}"
    )


def test_a_taken_email_is_409_and_nothing_is_half_created(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    first = signup()
    name = f"Second {uuid.uuid4().hex}"
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "email": first.email.upper(),
            "password": PASSWORD,
            "full_name": "Copy",
            "organization_name": name,
        },
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert sql("select count(*) from organizations where name = %s", name) == [(0,)]


def test_the_same_organization_name_gets_a_distinct_slug(signup: Callable[..., Account]) -> None:
    name = f"Twin {uuid.uuid4().hex[:6]}"
    assert (
        signup(organization_name=name).organization["slug"]
        != signup(organization_name=name).organization["slug"]
    )


@pytest.mark.parametrize("password", ["short", "x" * 11, "y" * 257])
def test_password_length_is_12_to_256(client: TestClient, password: str) -> None:
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "email": unique_email(),
            "password": password,
            "full_name": "A",
            "organization_name": "Org",
        },
    )
    assert response.status_code == 400


def test_passwords_are_argon2id_at_owasp_strength(app_settings: Settings, sql: Sql) -> None:
    # The suite's app hashes cheaply; an app with the production default, in the same process.
    from app.main import create_app

    production = dataclasses.replace(app_settings, password_hashing=PasswordHashing())
    with TestClient(create_app(production)) as production_client:
        response = production_client.post(
            "/api/v1/auth/signup",
            json={
                "email": unique_email(),
                "password": PASSWORD,
                "full_name": "Olivia Owner",
                "organization_name": "Owasp Org",
            },
        )
    assert response.status_code == 201, response.text
    user_id = response.json()["user"]["id"]
    (stored,) = sql("select password_hash from users where id = %s", user_id)[0]
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_login_failures_look_the_same(client: TestClient, signup: Callable[..., Account]) -> None:
    account = signup()
    wrong = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "wrong password!!"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": "wrong password!!"}
    )
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    strip = {"request_id", "instance"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }


def test_an_unknown_email_costs_a_password_verification_like_a_known_one(
    client: TestClient, signup: Callable[..., Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timing parity comes from doing the same work: an unknown email verifies the password
    # against a dummy hash (a timing ratio would flake on a busy machine).
    account = signup()
    hashing = client.app.runtime.passwords  # type: ignore[attr-defined]
    verified: list[str] = []

    class Recording(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(hashing, "hasher", Recording(time_cost=1, memory_cost=8, parallelism=1))
    for email in (account.email, unique_email()):
        response = client.post(
            "/api/v1/auth/login", json={"email": email, "password": "not the password"}
        )
        assert response.status_code == 401
    known, unknown = verified
    assert known.startswith("$argon2id$")
    assert unknown.startswith("$argon2id$")
    assert known != unknown
    assert unknown == hashing.dummy_hash


def test_login_is_case_insensitive_and_issues_a_new_session(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    account = signup()
    tokens = login(client, account.email.upper())
    assert me(client, tokens["access_token"]).status_code == 200
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    first = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    assert claims["sid"] != first["sid"]
    assert set(claims) >= {"iss", "aud", "sub", "sid", "org", "exp", "iat", "jti"}
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "EdDSA"


def test_suspended_users_and_deleted_organizations_cannot_log_in(
    client: TestClient, signup: Callable[..., Account], add_user: Callable[..., Account]
) -> None:
    owner = signup()
    member = add_user(owner, "MEMBER")
    assert (
        client.patch(
            f"/api/v1/users/{member.id}", json={"status": "SUSPENDED"}, headers=owner.headers
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": member.email, "password": PASSWORD}
        ).status_code
        == 401
    )
    assert (
        client.delete(f"/api/v1/organizations/{owner.org_id}", headers=owner.headers).status_code
        == 204
    )
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": owner.email, "password": PASSWORD}
        ).status_code
        == 401
    )


def test_refresh_rotates_and_the_new_pair_works(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    account = signup()
    response = refresh(client, account.tokens["refresh_token"])
    assert response.status_code == 200
    pair = response.json()
    assert pair["refresh_token"] != account.tokens["refresh_token"]
    assert me(client, pair["access_token"]).status_code == 200
    again = refresh(client, pair["refresh_token"])
    assert again.status_code == 200


def test_reusing_a_rotated_token_revokes_the_whole_family(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    account = signup()
    old = account.tokens["refresh_token"]
    newer = refresh(client, old).json()
    # Move the rotation out of the 10 s grace window instead of sleeping.
    sql(
        "update sessions set rotated_at = now() - interval '1 minute'"
        " where revoked_at is null and user_id = %s",
        account.user["id"],
    )
    assert refresh(client, old).status_code == 401
    assert refresh(client, newer["refresh_token"]).status_code == 401, "the family is revoked"
    assert me(client, newer["access_token"]).status_code == 401, "its access tokens die with it"


def test_the_previous_token_is_accepted_within_the_grace_window(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    account = signup()
    first = refresh(client, account.tokens["refresh_token"])
    retry = refresh(client, account.tokens["refresh_token"])
    assert first.status_code == 200
    assert retry.status_code == 200


def test_two_concurrent_refreshes_both_get_a_working_pair(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    account = signup()
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda _: refresh(client, account.tokens["refresh_token"]), range(2))
        )
    assert [r.status_code for r in results] == [200, 200]
    assert sql(
        "select count(*) from sessions where user_id = %s and revoked_at is null",
        account.user["id"],
    ) == [(1,)]
    # The pair issued last holds the session's current token, and it works; the other one
    # was displaced within the grace window (the client keeps the pair it received last).
    current_query = "select refresh_digest from sessions where user_id = %s"
    ((current,),) = sql(current_query, account.user["id"])
    winners = [r.json()["refresh_token"] for r in results]
    (last,) = [t for t in winners if hashlib.sha256(t.encode()).digest() == bytes(current)]
    assert refresh(client, last).status_code == 200


def test_a_token_two_rotations_old_revokes_the_session(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    account = signup()
    first = account.tokens["refresh_token"]
    second = refresh(client, first).json()
    third = refresh(client, second["refresh_token"]).json()
    assert refresh(client, first).status_code == 401
    assert refresh(client, third["refresh_token"]).status_code == 401, "the session is revoked"
    assert me(client, third["access_token"]).status_code == 401


def test_every_spent_token_of_a_long_session_is_detected(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    account = signup()
    spent = [account.tokens["refresh_token"]]
    for _ in range(4):
        spent.append(refresh(client, spent[-1]).json()["refresh_token"])
    assert refresh(client, spent[1]).status_code == 401
    assert refresh(client, spent[-1]).status_code == 401, "the session is revoked"


def test_the_previous_token_is_honoured_only_once(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    account = signup()
    old = account.tokens["refresh_token"]
    assert refresh(client, old).status_code == 200
    retried = refresh(client, old)
    assert retried.status_code == 200, "honoured once within the grace window"
    assert refresh(client, old).status_code == 401, "a second use is reuse"
    assert refresh(client, retried.json()["refresh_token"]).status_code == 401
    assert me(client, retried.json()["access_token"]).status_code == 401
    reasons = sql("select revoked_reason from sessions where user_id = %s", account.user["id"])
    assert reasons == [("refresh_reuse",)]


def test_a_token_displaced_by_the_grace_is_reuse_too(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    # A thief replaying the previous token within the grace window gets a pair, but the
    # legitimate holder's next refresh (with the pair the thief displaced) ends the session.
    account = signup()
    old = account.tokens["refresh_token"]
    legitimate = refresh(client, old).json()
    stolen = refresh(client, old).json()
    assert refresh(client, legitimate["refresh_token"]).status_code == 401
    assert refresh(client, stolen["refresh_token"]).status_code == 401
    assert me(client, stolen["access_token"]).status_code == 401


def test_unknown_refresh_tokens_are_401(client: TestClient) -> None:
    assert refresh(client, "x" * 43).status_code == 401


def test_logout_ends_the_session_on_the_next_request(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    account = signup()
    other = login(client, account.email)
    assert client.post("/api/v1/auth/logout", headers=account.headers).status_code == 204
    assert me(client, account.tokens["access_token"]).status_code == 401
    assert refresh(client, account.tokens["refresh_token"]).status_code == 401
    assert me(client, other["access_token"]).status_code == 200, "other sessions live on"


def forge(claims: dict[str, Any], key: Any = None, **headers: Any) -> str:
    key = key or Ed25519PrivateKey.generate()
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)


def test_forged_tokens_are_401_never_500(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    account = signup()
    claims = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(account.tokens["access_token"])["kid"]
    current = client.app.runtime.keys  # type: ignore[attr-defined]
    now = int(time.time())
    tampered = account.tokens["access_token"][:-4] + (
        "AAAA" if not account.tokens["access_token"].endswith("AAAA") else "BBBB"
    )
    cases = {
        "foreign key": forge(claims, kid=kid),
        "license key": forge(claims, current.license_key.private, kid=current.license_key.kid),
        "expired": forge(
            claims | {"exp": now - 300, "iat": now - 1200}, current.token_key.private, kid=kid
        ),
        "hs256 with public key": jwt.encode(
            claims, current.token_key.jwk()["x"].encode(), algorithm="HS256", headers={"kid": kid}
        ),
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": kid}),  # type: ignore[arg-type]
        "tampered": tampered,
        "garbage": "not-a-token",
        "wrong org": forge(claims | {"org": str(uuid.uuid4())}, current.token_key.private, kid=kid),
    }
    for name, token in cases.items():
        response = me(client, token)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        assert response.headers["content-type"] == "application/problem+json", name


def test_a_request_verifies_its_token_once(
    client: TestClient, signup: Callable[..., Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    account = signup()
    verifier = client.app.runtime.verifier  # type: ignore[attr-defined]
    calls = []
    original = verifier.verify

    def counting(token: str) -> Any:
        calls.append(token)
        return original(token)

    monkeypatch.setattr(verifier, "verify", counting)
    assert me(client, account.tokens["access_token"]).status_code == 200
    assert len(calls) == 1, "the rate limiter's verification is reused by the security check"
    assert me(client, "forged.token.value").status_code == 401
