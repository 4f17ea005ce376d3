"""Licenses through the tenant API: read, rename, never the key; roles, tenants, pages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from db import queries
from tests.api.conftest import Account
from tests.api.test_license_cli import issue, validate
from tests.conftest import TestDatabase

ROLES = ["OWNER", "ADMIN", "MEMBER", "GUEST"]
Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def team(signup: Callable[..., Account], add_user: Callable[..., Account]) -> dict[str, Account]:
    owner = signup()
    members = {"OWNER": owner}
    for role in ROLES[1:]:
        members[role] = add_user(owner, role)
    return members


def test_list_and_get_show_the_prefix_never_the_key(
    client: TestClient, team: dict[str, Account], database: TestDatabase
) -> None:
    owner = team["OWNER"]
    pro = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "3", "--days", "30")
    keys = [owner.license["license_key"], pro["license_key"]]
    guest = team["GUEST"].headers
    listed = client.get("/api/v1/licenses", headers=guest).json()
    assert [lic["id"] for lic in listed["data"]] == [pro["id"], owner.license["id"]]
    assert listed["next_cursor"] is None
    got = client.get(f"/api/v1/licenses/{pro['id']}", headers=guest)
    assert got.status_code == 200
    assert got.json() == {k: v for k, v in pro.items() if k != "license_key"}
    for body in (json.dumps(listed), got.text):
        for key in keys:
            assert key not in body
        assert "license_key" not in body
        assert "key_digest" not in body
    assert {lic["key_prefix"] for lic in listed["data"]} == {k[:12] for k in keys}


def test_seats_used_counts_active_activations(
    client: TestClient, team: dict[str, Account], database: TestDatabase, sql: Sql
) -> None:
    owner = team["OWNER"]
    pro = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "3")
    url = f"/api/v1/licenses/{pro['id']}"
    for machine in ("machine-one-0000000", "machine-two-0000000"):
        assert validate(client, pro["license_key"], fingerprint=machine)["code"] == "VALID"
    assert client.get(url, headers=owner.headers).json()["seats_used"] == 2
    sql(
        "update license_activations set deactivated_at = now(), deactivation_reason = 'deactivated'"
        " where license_id = %s and fingerprint_digest = sha256('machine-one-0000000')",
        pro["id"],
    )
    assert client.get(url, headers=owner.headers).json()["seats_used"] == 1
    listed = client.get("/api/v1/licenses", headers=owner.headers).json()["data"]
    assert {lic["id"]: lic["seats_used"] for lic in listed} == {
        pro["id"]: 1,
        owner.license["id"]: 0,
    }


def test_update_changes_name_and_metadata_only(
    client: TestClient, team: dict[str, Account], sql: Sql
) -> None:
    owner = team["OWNER"]
    license_id = owner.license["id"]
    url = f"/api/v1/licenses/{license_id}"
    before = client.get(url, headers=owner.headers).json()
    renamed = client.patch(url, json={"name": "Robotics team"}, headers=owner.headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Robotics team"
    both = client.patch(
        url, json={"name": "FY25", "metadata": {"po_number": "PO-1"}}, headers=owner.headers
    ).json()
    assert (both["name"], both["metadata"]) == ("FY25", {"po_number": "PO-1"})
    unchanged = {k: v for k, v in both.items() if k not in ("name", "metadata", "updated_at")}
    assert unchanged == {
        k: v for k, v in before.items() if k not in ("name", "metadata", "updated_at")
    }
    # tier, seats, status and dates are not the tenant's to change
    for body in (
        {"tier": "ENTERPRISE"},
        {"seats": 1000},
        {"status": "ACTIVE"},
        {"expires_at": None},
        {"starts_at": "2020-01-01T00:00:00Z"},
        {"machine_bound": False},
        {"features": ["sso"]},
        {"key_prefix": "cdt_live_abc"},
        {"name": "ok", "seats": 1000},
        {},
    ):
        response = client.patch(url, json=body, headers=owner.headers)
        assert response.status_code == 400, body
    assert sql("select tier, seats, status from licenses where id = %s", license_id) == [
        ("FREE", 1, "ACTIVE")
    ]
    assert (
        sql("select action, actor_id::text from audit_log where target_id = %s", license_id)
        == [("license.updated", owner.id)] * 2
    )


@pytest.mark.parametrize(("role", "expected"), [("ADMIN", 200), ("MEMBER", 403), ("GUEST", 403)])
def test_only_admins_update(
    client: TestClient, team: dict[str, Account], role: str, expected: int
) -> None:
    url = f"/api/v1/licenses/{team['OWNER'].license['id']}"
    response = client.patch(url, json={"name": f"By {role}"}, headers=team[role].headers)
    assert response.status_code == expected, response.text
    name = client.get(url, headers=team["OWNER"].headers).json()["name"]
    assert (name == f"By {role}") is (expected == 200)


@pytest.mark.parametrize("op", ["get", "update"])
def test_another_tenants_licenses_answer_404_for_every_role(
    client: TestClient, team: dict[str, Account], signup: Callable[..., Account], op: str
) -> None:
    outsider = signup()
    url = f"/api/v1/licenses/{outsider.license['id']}"
    for role in ROLES:
        headers = team[role].headers
        if op == "get":
            response = client.get(url, headers=headers)
        else:
            response = client.patch(url, json={"name": "Stolen"}, headers=headers)
        assert response.status_code == 404, f"{role} {op}: {response.text}"
        assert response.json()["type"].endswith("/not-found")
    assert client.get(url, headers=outsider.headers).json()["name"] == "Free license"
    listed = client.get("/api/v1/licenses", headers=team["OWNER"].headers).json()["data"]
    assert [lic["id"] for lic in listed] == [team["OWNER"].license["id"]]


def test_deleted_and_unknown_licenses_answer_404(
    client: TestClient, team: dict[str, Account], sql: Sql
) -> None:
    owner = team["OWNER"]
    url = f"/api/v1/licenses/{owner.license['id']}"
    sql("update licenses set deleted_at = now() where id = %s", owner.license["id"])
    assert client.get(url, headers=owner.headers).status_code == 404
    assert client.patch(url, json={"name": "x"}, headers=owner.headers).status_code == 404
    assert client.get("/api/v1/licenses", headers=owner.headers).json()["data"] == []
    unknown = client.get(f"/api/v1/licenses/{uuid.uuid4()}", headers=owner.headers)
    assert unknown.status_code == 404


def test_licenses_page_with_a_signed_cursor(
    client: TestClient, team: dict[str, Account], database: TestDatabase, sql: Sql
) -> None:
    owner = team["OWNER"]
    issued = [owner.license["id"]]
    issued += [
        issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "1")["id"]
        for _ in range(6)
    ]
    # two with the same created_at: only the id orders them
    sql(
        "update licenses set created_at = '2024-01-01T00:00:00Z' where id = any(%s::uuid[])",
        issued[1:3],
    )
    seen: list[dict[str, Any]] = []
    url = "/api/v1/licenses?limit=2"
    while url:
        page = client.get(url, headers=owner.headers).json()
        seen += page["data"]
        url = page["next_cursor"] and f"/api/v1/licenses?limit=2&cursor={page['next_cursor']}"
    ids = [lic["id"] for lic in seen]
    assert sorted(ids) == sorted(issued)
    keys = [(lic["created_at"], lic["id"]) for lic in seen]
    assert keys == sorted(keys, reverse=True)

    cursor = client.get("/api/v1/licenses?limit=1", headers=owner.headers).json()["next_cursor"]
    for forged in ("garbage", cursor[:-2], cursor[:20], cursor.swapcase()):
        response = client.get(f"/api/v1/licenses?cursor={forged}", headers=owner.headers)
        assert response.status_code == 400, forged
        assert response.json()["type"].endswith("/invalid-cursor")
    # a licenses cursor is neither a projects cursor nor another tenant's
    response = client.get(f"/api/v1/projects?cursor={cursor}", headers=owner.headers)
    assert response.status_code == 400


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def test_list_query_plan_is_an_index_scan_without_sort_or_offset(
    signup: Callable[..., Account], database: TestDatabase, sql: Sql
) -> None:
    # Nothing is timed (EXPLAIN with `timing off`): the plan's shape and row counts show
    # that a page 1,500 rows deep reads one page of the index, with no sort and no offset.
    accounts = [signup() for _ in range(3)]
    for account, count in zip(accounts, (2000, 1000, 1000), strict=True):
        sql(
            "insert into licenses (organization_id, name, key_prefix, key_digest, tier, seats,"
            " created_at)"
            " select %s, 'bulk ' || g, 'cdt_live_xyz', sha256(gen_random_uuid()::text::bytea),"
            " 'PRO', 5, now() - g * interval '1 second' from generate_series(1, %s) as g",
            account.org_id,
            count,
        )
    # three machines on every bulk license (deleted with the licenses, by cascade)
    sql(
        "insert into license_activations (organization_id, license_id, fingerprint_digest)"
        " select l.organization_id, l.id, sha256(gen_random_uuid()::text::bytea)"
        " from licenses as l, generate_series(1, 3)"
        " where l.organization_id = any(%s::uuid[]) and l.name like 'bulk %%'",
        [a.org_id for a in accounts],
    )
    try:
        with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
            conn.execute("analyze licenses")
            conn.execute("analyze license_activations")
        ((after_created_at, after_id),) = sql(
            "select created_at, id from licenses where organization_id = %s"
            " order by created_at desc, id desc offset 1500 limit 1",
            accounts[0].org_id,
        )
        query = queries("licenses").list_licenses_after
        assert "offset" not in query.sql.lower()
        with psycopg.connect(database.app_dsn) as conn:
            conn.execute(
                "select app.set_tenant(%s, %s, 'GUEST')", (accounts[0].org_id, accounts[0].id)
            )
            (plan,) = conn.execute(
                "explain (analyze, costs off, timing off, summary off, format json) " + query.sql,
                {
                    "organization_id": accounts[0].org_id,
                    "after_created_at": after_created_at,
                    "after_id": after_id,
                    "limit": 21,
                },
            ).fetchone()  # type: ignore[misc]
    finally:
        sql(
            "delete from licenses where organization_id = any(%s::uuid[]) and name like 'bulk %%'",
            [a.org_id for a in accounts],
        )
    nodes = list(plan_nodes(plan[0]["Plan"]))
    kinds = [n["Node Type"] for n in nodes]
    assert kinds[0] == "Limit", json.dumps(plan)
    assert "Sort" not in kinds, json.dumps(plan)
    assert "Incremental Sort" not in kinds, json.dumps(plan)
    assert "Seq Scan" not in kinds, json.dumps(plan)
    (scan,) = [n for n in nodes if n.get("Index Name") == "licenses_org_keyset_idx"]
    assert "created_at" in scan["Index Cond"]
    assert scan["Actual Rows"] == 21
    # the page, the tier defaults (license_tiers_pkey) and the seats of each row
    assert kinds.count("Index Scan") + kinds.count("Index Only Scan") == 3, json.dumps(plan)
    (tiers,) = [n for n in nodes if n.get("Relation Name") == "license_tiers"]
    assert tiers.get("Index Name") == "license_tiers_pkey", json.dumps(plan)
    # seats_used: one index lookup per row of the page, not a scan of all activations
    counts = [n for n in nodes if n.get("Relation Name") == "license_activations"]
    assert counts
    assert all(
        n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") for n in counts
    )
