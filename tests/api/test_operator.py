"""The operator API: operator keys (CLI), scopes, idempotent POSTs, seats, the audit trail."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.licensing.admin import BOUNDED_TERMS
from app.licensing.tiers import DEFAULTS, FLOATING_LEASE_SECONDS
from app.main import create_app
from app.ops import operator_key_admin
from tests.api.conftest import Account
from tests.conftest import TestDatabase

Sql = Callable[..., list[tuple[Any, ...]]]
BASE = "/api/v1/operator"


def key_cli(system_dsn: str | None, *argv: str) -> tuple[int, str, str]:
    """Run `coditect-cloud operator-key ...`; returns (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="coditect-cloud")
    operator_key_admin.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["operator-key", *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = operator_key_admin.run(args, system_dsn)
    return status, out.getvalue(), err.getvalue()


def new_key(database: TestDatabase, *scopes: str, name: str | None = None) -> dict[str, Any]:
    name = name or f"billing-{uuid.uuid4().hex[:8]}"
    argv = ["create", "--name", name]
    for scope in scopes or ("licenses:write",):
        argv += ["--scope", scope]
    status, out, err = key_cli(database.system_dsn, *argv)
    assert status == 0, err
    created: dict[str, Any] = json.loads(out)
    return created


def auth(key: dict[str, Any], **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}", **extra}


def issue(
    client: TestClient, key: dict[str, Any], org_id: str, body: dict[str, Any], **headers: str
) -> Any:
    return client.post(
        f"{BASE}/organizations/{org_id}/licenses", json=body, headers=auth(key, **headers)
    )


@pytest.fixture
def writer(database: TestDatabase) -> dict[str, Any]:
    return new_key(database, "licenses:write")


def test_keys_are_shown_once_stored_as_digests_listed_and_revoked(
    client: TestClient, database: TestDatabase, sql: Sql
) -> None:
    name = f"support-{uuid.uuid4().hex[:8]}"
    created = new_key(database, "licenses:read", name=name)
    key = created["key"]
    assert key.startswith("cdt_op_")
    assert len(key) >= 7 + 43
    assert created["key_prefix"] == key[:12]
    assert created["scopes"] == ["licenses:read"]
    # only its digest is stored
    assert sql(
        "select count(*) from operator.keys as k where strpos(row_to_json(k)::text, %s) > 0", key
    ) == [(0,)]
    assert client.get(f"{BASE}/licenses", headers=auth(created)).status_code == 200

    status, out, _ = key_cli(database.system_dsn, "list")
    assert status == 0
    listed = {k["name"]: k for k in json.loads(out)}
    assert listed[name]["revoked_at"] is None
    assert listed[name]["last_used_at"] is not None
    assert key not in out

    # a name is unique for ever, so the audit trail's names are unambiguous
    status, _, err = key_cli(
        database.system_dsn, "create", "--name", name, "--scope", "licenses:read"
    )
    assert status == 1
    assert "keys_name_key" in err

    assert key_cli(database.system_dsn, "revoke", name)[0] == 0
    revoked = client.get(f"{BASE}/licenses", headers=auth(created))
    assert revoked.status_code == 401
    assert revoked.headers["content-type"] == "application/problem+json"
    assert "WWW-Authenticate" in revoked.headers
    assert key_cli(database.system_dsn, "revoke", name)[0] == 1  # already revoked
    assert key_cli(None, "list")[0] == 2


def test_scopes_tokens_and_keys_stay_on_their_own_paths(
    client: TestClient, database: TestDatabase, signup: Callable[..., Account]
) -> None:
    owner = signup()
    reader = new_key(database, "licenses:read")
    writer = new_key(database, "licenses:write")
    license_id = owner.license["id"]

    # a read key reads, and cannot write
    assert client.get(f"{BASE}/licenses/{license_id}", headers=auth(reader)).status_code == 200
    refused = client.post(f"{BASE}/licenses/{license_id}/suspend", headers=auth(reader))
    assert refused.status_code == 403
    assert "licenses:write" in refused.json()["detail"]
    assert client.get(f"{BASE}/licenses/{license_id}", headers=auth(writer)).json()["status"] == (
        "ACTIVE"
    )
    # writing includes reading
    assert client.get(f"{BASE}/organizations", headers=auth(writer)).status_code == 200

    # a tenant's access token is refused on operator paths, even an OWNER's
    for path in (f"{BASE}/licenses", f"{BASE}/organizations", f"{BASE}/licenses/{license_id}"):
        assert client.get(path, headers=owner.headers).status_code == 401
    assert (
        client.post(f"{BASE}/licenses/{license_id}/revoke", headers=owner.headers).status_code
        == 401
    )
    # an operator key is refused on tenant paths
    for path in ("/api/v1/licenses", f"/api/v1/licenses/{license_id}", "/api/v1/auth/me"):
        assert client.get(path, headers=auth(writer)).status_code == 401
    # no key, or a made-up one
    assert client.get(f"{BASE}/licenses").status_code == 401
    forged = {"key": "cdt_op_" + "A" * 43}
    assert client.get(f"{BASE}/licenses", headers=auth(forged)).status_code == 401
    # nothing was changed by the refused calls
    assert (
        client.get(f"/api/v1/licenses/{license_id}", headers=owner.headers).json()["status"]
        == "ACTIVE"
    )


def test_an_idempotent_retry_returns_the_first_result_and_issues_one_license(
    client: TestClient,
    writer: dict[str, Any],
    signup: Callable[..., Account],
    sql: Sql,
) -> None:
    owner = signup()
    body = {
        "tier": "PRO",
        "seats": 5,
        "name": "Billing order 42",
        "expires_at": "2031-01-01T00:00:00Z",
    }
    idem = {"Idempotency-Key": f"order-42-{uuid.uuid4()}"}
    first = issue(client, writer, owner.org_id, body, **idem)
    assert first.status_code == 201, first.text
    issued = first.json()
    assert issued["license_key"].startswith("cdt_live_")
    assert issued["features"] == ["core", "cli", "cloud-sync", "priority-support"]
    assert first.headers["Location"] == f"{BASE}/licenses/{issued['id']}"
    assert "Idempotent-Replayed" not in first.headers

    retry = issue(client, writer, owner.org_id, body, **idem)
    assert retry.status_code == 201
    assert retry.json() == issued  # the key too: the caller may never have seen the first answer
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Location"] == first.headers["Location"]
    licenses = sql("select count(*) from licenses where organization_id = %s", owner.org_id)
    assert licenses == [(2,)]  # the signup's FREE license and this one

    # the stored result is sealed: the license key is nowhere in clear
    assert sql(
        "select count(*) from operator.idempotency as i"
        " where strpos(encode(i.sealed_body, 'escape'), %s) > 0",
        issued["license_key"],
    ) == [(0,)]

    # the same key with another request is refused, and issues nothing
    other = issue(client, writer, owner.org_id, {**body, "seats": 6}, **idem)
    assert other.status_code == 422
    assert other.json()["type"] == "https://problems.coditect.ai/idempotency-key-reused"
    assert sql("select count(*) from licenses where organization_id = %s", owner.org_id) == [(2,)]
    # keys belong to their operator key: another operator key's same key is a new request
    # (and without a key, every call issues)
    assert issue(client, writer, owner.org_id, body).status_code == 201
    assert sql("select count(*) from licenses where organization_id = %s", owner.org_id) == [(3,)]


def test_a_failed_request_stores_nothing_so_its_retry_runs_again(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account]
) -> None:
    owner = signup()
    idem = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    missing = str(uuid.uuid4())
    assert issue(client, writer, missing, {"tier": "PRO", "seats": 1}, **idem).status_code == 404
    # same key, now for the organization that exists: a different request
    ok = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 1}, **idem)
    assert ok.status_code == 201


def test_status_changes_and_their_idempotent_retries(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    license_id = owner.license["id"]
    path = f"{BASE}/licenses/{license_id}"
    idem = {"Idempotency-Key": f"dunning-{uuid.uuid4()}"}
    suspended = client.post(
        f"{path}/suspend", json={"reason": "unpaid"}, headers=auth(writer, **idem)
    )
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "SUSPENDED"
    again = client.post(f"{path}/suspend", json={"reason": "unpaid"}, headers=auth(writer, **idem))
    assert (again.status_code, again.json()) == (200, suspended.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    # without the key, suspending a suspended license is a conflict
    conflict = client.post(f"{path}/suspend", headers=auth(writer))
    assert conflict.status_code == 409
    assert "SUSPENDED" in conflict.json()["detail"]
    validated = client.post(
        "/api/v1/licenses/validate",
        json={"license_key": "cdt_live_not-this-one", "fingerprint": "x" * 16},
    )
    assert validated.status_code == 200

    assert client.post(f"{path}/reinstate", headers=auth(writer)).json()["status"] == "ACTIVE"
    assert (
        client.post(f"{path}/revoke", json={}, headers=auth(writer)).json()["status"] == "REVOKED"
    )
    for command in ("suspend", "reinstate", "revoke"):
        assert client.post(f"{path}/{command}", headers=auth(writer)).status_code == 409
    assert client.patch(path, json={"seats": 9}, headers=auth(writer)).status_code == 409
    actions = sql(
        "select action, detail->>'reason' from audit_log where target_id = %s order by created_at",
        license_id,
    )
    assert [a for a, _ in actions][-3:] == [
        "license.suspended",
        "license.reinstated",
        "license.revoked",
    ]
    assert ("license.suspended", "unpaid") in actions
    assert (
        client.post(f"{BASE}/licenses/{uuid.uuid4()}/suspend", headers=auth(writer)).status_code
        == 404
    )


def test_terms_change_and_a_new_tier_brings_its_features(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    created = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 2}).json()
    path = f"{BASE}/licenses/{created['id']}"
    upgraded = client.patch(
        path, json={"tier": "ENTERPRISE", "seats": 50, "reason": "SO-1"}, headers=auth(writer)
    )
    assert upgraded.status_code == 200, upgraded.text
    body = upgraded.json()
    assert (body["tier"], body["seats"]) == ("ENTERPRISE", 50)
    assert "sso" in body["features"]
    chosen = client.patch(
        path,
        json={"features": ["core"], "expires_at": "2030-06-30T12:00:00+02:00"},
        headers=auth(writer),
    ).json()
    assert chosen["features"] == ["core"]
    assert datetime.fromisoformat(chosen["expires_at"]) == datetime(2030, 6, 30, 10, tzinfo=UTC)
    assert (
        client.patch(path, json={"expires_at": None}, headers=auth(writer)).json()["expires_at"]
        is None
    )
    bad = client.patch(path, json={"expires_at": "2001-01-01T00:00:00Z"}, headers=auth(writer))
    assert bad.status_code == 400
    assert (
        client.patch(path, json={"reason": "nothing to change"}, headers=auth(writer)).status_code
        == 400
    )
    # the tenant sees the new terms
    seen = client.get(f"/api/v1/licenses/{created['id']}", headers=owner.headers).json()
    assert (seen["tier"], seen["seats"], seen["features"]) == ("ENTERPRISE", 50, ["core"])
    changes = sql(
        "select detail->'changes'->'seats'->>'from', detail->'changes'->'seats'->>'to'"
        " from audit_log where target_id = %s and action = 'license.changed'"
        " order by created_at limit 1",
        created["id"],
    )
    assert changes == [("2", "50")]


def validate(client: TestClient, key: str, fingerprint: str) -> str:
    response = client.post(
        "/api/v1/licenses/validate", json={"license_key": key, "fingerprint": fingerprint}
    )
    assert response.status_code == 200
    code: str = response.json()["code"]
    return code


def test_seats_cannot_drop_below_the_machines_holding_them(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account]
) -> None:
    owner = signup()
    created = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 3}).json()
    key, path = created["license_key"], f"{BASE}/licenses/{created['id']}"
    for n in range(2):
        assert validate(client, key, f"seat-machine-{n:08d}") == "VALID"
    refused = client.patch(path, json={"seats": 1}, headers=auth(writer))
    assert refused.status_code == 409
    assert "2 machines hold seats" in refused.json()["detail"]
    assert client.get(path, headers=auth(writer)).json()["seats"] == 3  # nothing changed
    # down to exactly the machines holding seats: allowed, and a third machine is refused
    assert client.patch(path, json={"seats": 2}, headers=auth(writer)).json()["seats"] == 2
    assert validate(client, key, "seat-machine-00000009") == "SEAT_LIMIT_EXCEEDED"
    assert validate(client, key, "seat-machine-00000001") == "VALID"


def test_every_call_is_recorded_with_the_key_and_changes_reach_the_tenants_audit_log(
    client: TestClient, database: TestDatabase, signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    name = f"crm-{uuid.uuid4().hex[:8]}"
    key = new_key(database, "licenses:write", name=name)
    listed = client.get(
        f"{BASE}/licenses", params={"organization_id": owner.org_id}, headers=auth(key)
    )
    issued = issue(client, key, owner.org_id, {"tier": "FREE", "seats": 1})
    suspended = client.post(f"{BASE}/licenses/{issued.json()['id']}/suspend", headers=auth(key))
    calls = sql(
        "select c.operation, c.organization_id::text, c.target_id::text, c.request_id"
        " from operator.calls as c join operator.keys as k on k.id = c.operator_key_id"
        " where k.name = %s order by c.created_at",
        name,
    )
    assert calls == [
        ("listOperatorLicenses", None, None, listed.headers["X-Request-Id"]),
        ("issueOperatorLicense", owner.org_id, issued.json()["id"], issued.headers["X-Request-Id"]),
        (
            "suspendOperatorLicense",
            owner.org_id,
            issued.json()["id"],
            suspended.headers["X-Request-Id"],
        ),
    ]
    audit = sql(
        "select action, actor_id, detail->>'operator_key', detail->>'via', request_id"
        " from audit_log where target_id = %s order by created_at",
        issued.json()["id"],
    )
    assert audit == [
        ("license.issued", None, name, "api", issued.headers["X-Request-Id"]),
        ("license.suspended", None, name, "api", suspended.headers["X-Request-Id"]),
    ]
    # a refused call writes nothing
    assert (
        client.post(f"{BASE}/licenses/{issued.json()['id']}/suspend", headers=auth(key)).status_code
        == 409
    )
    recorded = sql(
        "select count(*) from operator.calls as c"
        " join operator.keys as k on k.id = c.operator_key_id where k.name = %s",
        name,
    )
    assert recorded == [(3,)]


def test_lists_span_tenants_with_filters_and_keyset_pages(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account]
) -> None:
    first, second = signup(), signup()
    for _ in range(3):
        assert (
            issue(client, writer, first.org_id, {"tier": "ENTERPRISE", "seats": 10}).status_code
            == 201
        )
    issue(client, writer, second.org_id, {"tier": "ENTERPRISE", "seats": 10})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"organization_id": first.org_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"{BASE}/licenses", params=params, headers=auth(writer)).json()
        seen += [row["id"] for row in page["data"]]
        assert all(row["organization_id"] == first.org_id for row in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4  # three ENTERPRISE and the signup's FREE
    enterprise = client.get(
        f"{BASE}/licenses", params={"tier": "ENTERPRISE", "limit": 100}, headers=auth(writer)
    ).json()["data"]
    organizations = {row["organization_id"] for row in enterprise}
    assert {first.org_id, second.org_id} <= organizations
    assert all(row["tier"] == "ENTERPRISE" for row in enterprise)
    by_prefix = client.get(
        f"{BASE}/licenses", params={"key_prefix": first.license["key_prefix"]}, headers=auth(writer)
    ).json()["data"]
    assert first.license["id"] in [row["id"] for row in by_prefix]

    found = client.get(
        f"{BASE}/organizations", params={"slug": second.organization["slug"]}, headers=auth(writer)
    ).json()
    assert [o["id"] for o in found["data"]] == [second.org_id]
    # a tenant list's cursor is not an operator list's
    tenant_page = client.get("/api/v1/licenses?limit=1", headers=first.headers).json()
    foreign = tenant_page["next_cursor"] or "AAAA"
    refused = client.get(f"{BASE}/licenses", params={"cursor": foreign}, headers=auth(writer))
    assert refused.status_code == 400
    assert refused.json()["type"] == "https://problems.coditect.ai/invalid-cursor"


def test_the_license_cli_and_the_api_run_the_same_code(
    client: TestClient,
    database: TestDatabase,
    writer: dict[str, Any],
    signup: Callable[..., Account],
    sql: Sql,
) -> None:
    from tests.api.test_license_cli import license_cli

    owner = signup()
    issued = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 1}).json()
    # the CLI refuses what the API refuses, in the same words
    assert (
        client.post(f"{BASE}/licenses/{issued['id']}/reinstate", headers=auth(writer)).json()[
            "detail"
        ]
        == "cannot reinstate a ACTIVE license (only SUSPENDED)"
    )
    status, _, err = license_cli(database.system_dsn, "reinstate", issued["id"])
    assert status == 1
    assert "cannot reinstate a ACTIVE license (only SUSPENDED)" in err
    assert license_cli(database.system_dsn, "suspend", issued["id"])[0] == 0
    vias = sql(
        "select detail->>'via' from audit_log where target_id = %s order by created_at",
        issued["id"],
    )
    assert vias == [("api",), ("cli",)]


def test_concurrent_retries_wait_for_the_first_and_issue_one_license(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    body = {"tier": "PRO", "seats": 3}
    idem = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(
            pool.map(lambda _: issue(client, writer, owner.org_id, body, **idem), range(6))
        )
    assert [r.status_code for r in responses] == [201] * 6
    assert len({r.json()["license_key"] for r in responses}) == 1
    assert sum("Idempotent-Replayed" in r.headers for r in responses) == 5
    assert sql("select count(*) from licenses where organization_id = %s", owner.org_id) == [(2,)]


def test_a_stored_result_is_kept_24_hours_then_the_key_is_free_again(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    idem = {"Idempotency-Key": f"old-{uuid.uuid4()}"}
    first = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 1}, **idem)
    assert first.status_code == 201
    sql(
        "update operator.idempotency set created_at = now() - interval '25 hours'"
        " where idempotency_key = %s",
        idem["Idempotency-Key"],
    )
    # past the retention the key is a new request: another body is accepted, and runs
    later = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 2}, **idem)
    assert later.status_code == 201
    assert "Idempotent-Replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]


def test_without_the_system_role_the_operator_api_answers_503(
    database: TestDatabase, tmp_path: Path, writer: dict[str, Any]
) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": database.app_dsn,
            "CODITECT_DATA_DIR": str(tmp_path / "data"),
            "CODITECT_VALIDATE_RESPONSES": "true",
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as no_system:
        response = no_system.get(f"{BASE}/licenses", headers=auth(writer))
    assert response.status_code == 503
    assert response.json()["type"] == "https://problems.coditect.ai/service-unavailable"


def test_seats_count_the_machines_holding_one_as_validation_does(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account], sql: Sql
) -> None:
    """A deactivated machine and one whose lease expired hold no seat (app.holds_seat), so
    they do not stand in the way of fewer seats; a lease removed in the same change would
    give the lapsed machine its seat back, so that change is refused."""
    owner = signup()
    created = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 3}).json()
    key, path = created["license_key"], f"{BASE}/licenses/{created['id']}"
    kept, gone, lapsed = (f"holder-{name}-{uuid.uuid4().hex}" for name in ("k", "g", "l"))
    for machine in (kept, gone, lapsed):
        response = client.post(
            "/api/v1/licenses/validate",
            json={"license_key": key, "fingerprint": machine, "hostname": machine[:8]},
        )
        assert response.json()["code"] == "VALID"
    assert client.patch(path, json={"lease_seconds": 600}, headers=auth(writer)).status_code == 200
    response = client.post(
        "/api/v1/licenses/deactivate", json={"license_key": key, "fingerprint": gone}
    )
    assert response.json()["code"] == "DEACTIVATED"
    sql(
        "update license_activations set last_seen_at = now() - interval '11 minutes'"
        " where license_id = %s and hostname = %s",
        created["id"],
        lapsed[:8],
    )
    # deactivated_at is still null on the lapsed machine: only the lease says it holds none
    assert client.get(path, headers=auth(writer)).json()["seats_used"] == 1
    back_to_no_lease = client.patch(
        path, json={"seats": 1, "lease_seconds": None}, headers=auth(writer)
    )
    assert back_to_no_lease.status_code == 409
    assert "2 machines hold seats" in back_to_no_lease.json()["detail"]
    unchanged = client.get(path, headers=auth(writer)).json()
    assert (unchanged["seats"], unchanged["lease_seconds"]) == (3, 600)
    assert client.patch(path, json={"seats": 1}, headers=auth(writer)).json()["seats"] == 1
    assert validate(client, key, kept) == "VALID"
    assert validate(client, key, lapsed) == "SEAT_LIMIT_EXCEEDED"
    assert validate(client, key, gone) == "SEAT_LIMIT_EXCEEDED"


def test_lease_and_churn_limits_change_within_the_tiers_bounds(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    created = issue(client, writer, owner.org_id, {"tier": "PRO"}).json()
    path = f"{BASE}/licenses/{created['id']}"
    pro = DEFAULTS["PRO"]
    assert (created["lease_seconds"], created["activation_limit"]) == (None, pro.activation_limit)
    changed = client.patch(
        path,
        json={"lease_seconds": 900, "activation_limit": 20, "churn_window_seconds": 3600},
        headers=auth(writer),
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["lease_seconds"], body["activation_limit"], body["churn_window_seconds"]) == (
        900,
        20,
        3600,
    )
    assert body["deactivation_limit"] == pro.deactivation_limit  # untouched: the tier's
    changes = sql(
        "select detail->'changes' from audit_log where target_id = %s"
        " and action = 'license.changed' order by created_at limit 1",
        created["id"],
    )
    assert changes == [
        (
            {
                "lease_seconds": {"from": None, "to": 900},
                "activation_limit": {"from": None, "to": 20},
                "churn_window_seconds": {"from": None, "to": 3600},
            },
        )
    ]
    # validation enforces the license's own limit: one new machine per window
    assert client.patch(path, json={"activation_limit": 1}, headers=auth(writer)).status_code == 200
    first, second = (f"churn-{n}-{uuid.uuid4().hex}" for n in range(2))
    assert validate(client, created["license_key"], first) == "VALID"
    assert validate(client, created["license_key"], second) == "ACTIVATION_LIMIT_EXCEEDED"
    reset = client.patch(
        path,
        json={"lease_seconds": None, "activation_limit": None, "churn_window_seconds": None},
        headers=auth(writer),
    ).json()
    assert (reset["lease_seconds"], reset["activation_limit"], reset["churn_window_seconds"]) == (
        None,
        pro.activation_limit,
        pro.churn_window_seconds,
    )
    for term, (low, high) in BOUNDED_TERMS.items():
        for wrong in (low - 1, high + 1):
            refused = client.patch(path, json={term: wrong}, headers=auth(writer))
            assert refused.status_code == 400, (term, wrong)
    floating = issue(client, writer, owner.org_id, {"tier": "FREE", "machine_bound": False}).json()
    assert floating["lease_seconds"] == FLOATING_LEASE_SECONDS
    no_lease = client.patch(
        f"{BASE}/licenses/{floating['id']}", json={"lease_seconds": None}, headers=auth(writer)
    )
    assert no_lease.status_code == 400
    assert no_lease.json()["errors"][0]["field"] == "body.lease_seconds"


def test_issue_takes_the_tiers_defaults_and_the_given_terms(
    client: TestClient, writer: dict[str, Any], signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    for tier, defaults in DEFAULTS.items():
        issued = issue(client, writer, owner.org_id, {"tier": tier}).json()
        assert (issued["seats"], issued["machine_bound"], tuple(issued["features"])) == (
            defaults.seats,
            defaults.machine_bound,
            defaults.features,
        )
        assert (issued["activation_limit"], issued["deactivation_limit"]) == (
            defaults.activation_limit,
            defaults.deactivation_limit,
        )
    chosen = issue(
        client,
        writer,
        owner.org_id,
        {"tier": "PRO", "lease_seconds": 1200, "deactivation_limit": 3},
    ).json()
    assert (chosen["lease_seconds"], chosen["deactivation_limit"]) == (1200, 3)
    detail = sql(
        "select detail from audit_log where target_id = %s and action = 'license.issued'",
        chosen["id"],
    )[0][0]
    assert (detail["lease_seconds"], detail["deactivation_limit"]) == (1200, 3)
    too_short = issue(client, writer, owner.org_id, {"tier": "PRO", "lease_seconds": 299})
    assert too_short.status_code == 400


def test_the_operator_lists_and_deactivates_a_license_s_machines(
    client: TestClient,
    database: TestDatabase,
    writer: dict[str, Any],
    signup: Callable[..., Account],
    sql: Sql,
) -> None:
    owner = signup()
    created = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 3}).json()
    other = issue(client, writer, owner.org_id, {"tier": "PRO", "seats": 1}).json()
    key, path = created["license_key"], f"{BASE}/licenses/{created['id']}"
    fleet = [f"op-fleet-{n}-{uuid.uuid4().hex}" for n in range(3)]
    for machine in fleet:
        assert validate(client, key, machine) == "VALID"
    assert validate(client, other["license_key"], f"op-other-{uuid.uuid4().hex}") == "VALID"
    reader = new_key(database, "licenses:read")
    first = client.get(f"{path}/machines", params={"limit": 2}, headers=auth(reader)).json()
    rest = client.get(
        f"{path}/machines", params={"cursor": first["next_cursor"]}, headers=auth(reader)
    ).json()
    listed = first["data"] + rest["data"]
    assert len(listed) == 3
    assert rest["next_cursor"] is None
    assert {m["license_id"] for m in listed} == {created["id"]}
    assert all(m["holds_seat"] for m in listed)
    # a cursor of one license's machines is not one of another's
    foreign = client.get(
        f"{BASE}/licenses/{other['id']}/machines",
        params={"cursor": first["next_cursor"]},
        headers=auth(reader),
    )
    assert foreign.status_code == 400
    assert (
        client.get(f"{BASE}/licenses/{uuid.uuid4()}/machines", headers=auth(reader)).status_code
        == 404
    )

    # the vendor is not held to the customer's deactivation limit, nor counted in it
    assert (
        client.patch(path, json={"deactivation_limit": 1}, headers=auth(writer)).status_code == 200
    )
    target = listed[0]["id"]
    machine_path = f"{path}/machines/{target}/deactivate"
    assert client.post(machine_path, headers=auth(reader)).status_code == 403
    done = client.post(
        machine_path, json={"reason": "SUP-1"}, headers=auth(writer, **{"Idempotency-Key": "dm-1"})
    )
    assert done.status_code == 200, done.text
    assert (done.json()["holds_seat"], done.json()["released_reason"]) == (False, "deactivated")
    replay = client.post(
        machine_path, json={"reason": "SUP-1"}, headers=auth(writer, **{"Idempotency-Key": "dm-1"})
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == done.json()
    second = client.post(f"{path}/machines/{listed[1]['id']}/deactivate", headers=auth(writer))
    assert second.json()["holds_seat"] is False
    # the newest two went (newest first), so the first machine still holds its seat; with
    # a limit of 1, the customer's own deactivation is still allowed
    client_own = client.post(
        "/api/v1/licenses/deactivate", json={"license_key": key, "fingerprint": fleet[0]}
    )
    assert client_own.json()["code"] == "DEACTIVATED"
    assert [validate(client, key, m) for m in fleet] == ["VALID"] * 3  # seats free at once
    # a machine of another license is not found through this one
    stranger = client.get(f"{BASE}/licenses/{other['id']}/machines", headers=auth(reader)).json()
    assert (
        client.post(
            f"{path}/machines/{stranger['data'][0]['id']}/deactivate", headers=auth(writer)
        ).status_code
        == 404
    )
    entries = sql(
        "select actor_id, detail->>'by', detail->>'operator_key', detail->>'reason'"
        " from audit_log where target_id = %s and action = 'license.machine_deactivated'"
        " order by created_at",
        created["id"],
    )
    assert entries[:2] == [
        (None, "operator", writer["name"], "SUP-1"),
        (None, "operator", writer["name"], None),
    ]
