"""Projects: roles, names, soft delete, tenant isolation, and keyset pagination."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from db import queries
from tests.api.conftest import Account
from tests.conftest import TestDatabase

ROLES = ["OWNER", "ADMIN", "MEMBER", "GUEST"]
Sql = Callable[..., list[tuple[Any, ...]]]


@dataclass
class World:
    members: dict[str, Account]  # one account per role in organization A
    other_member: Account  # a second MEMBER of A
    outsider: Account  # the OWNER of organization B


@pytest.fixture
def world(signup: Callable[..., Account], add_user: Callable[..., Account]) -> World:
    owner = signup()
    members = {"OWNER": owner}
    for role in ROLES[1:]:
        members[role] = add_user(owner, role)
    return World(members, add_user(owner, "MEMBER"), signup())


def create(client: TestClient, account: Account, **body: Any) -> dict[str, Any]:
    body = {"name": f"Project {uuid.uuid4().hex[:8]}"} | body
    response = client.post("/api/v1/projects", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_get_and_list(client: TestClient, world: World) -> None:
    member = world.members["MEMBER"]
    response = client.post(
        "/api/v1/projects",
        json={"name": "Greifer-Kalibrierung Zürich", "metadata": {"team": "perception"}},
        headers=member.headers,
    )
    assert response.status_code == 201
    project = response.json()
    assert response.headers["Location"] == f"/api/v1/projects/{project['id']}"
    assert project["organization_id"] == member.org_id
    assert project["created_by"] == member.id
    assert (project["status"], project["description"]) == ("ACTIVE", None)
    assert project["metadata"] == {"team": "perception"}
    guest = world.members["GUEST"].headers
    assert client.get(response.headers["Location"], headers=guest).json() == project
    listed = client.get("/api/v1/projects", headers=guest).json()
    assert listed == {"data": [project], "next_cursor": None}
    archived = create(client, member, status="ARCHIVED", description="old")
    assert (archived["status"], archived["description"]) == ("ARCHIVED", "old")


def test_a_guest_cannot_create(client: TestClient, world: World) -> None:
    response = client.post(
        "/api/v1/projects", json={"name": "Nope"}, headers=world.members["GUEST"].headers
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")


# Who may update and delete which project: (own project, someone else's project).
EXPECTED = {
    "OWNER": (True, True),
    "ADMIN": (True, True),
    "MEMBER": (True, False),
    "GUEST": (False, False),
}


@pytest.mark.parametrize("role", ROLES)
def test_update_and_delete_role_rules(client: TestClient, world: World, role: str) -> None:
    actor = world.members[role]
    creator = actor if role != "GUEST" else world.members["OWNER"]  # a guest owns nothing
    own = create(client, creator)
    other = create(client, world.other_member)
    for project, allowed in ((own, EXPECTED[role][0]), (other, EXPECTED[role][1])):
        url = f"/api/v1/projects/{project['id']}"
        updated = client.patch(url, json={"status": "ARCHIVED"}, headers=actor.headers)
        assert updated.status_code == (200 if allowed else 403), f"{role}: {updated.text}"
        deleted = client.delete(url, headers=actor.headers)
        assert deleted.status_code == (204 if allowed else 403), f"{role}: {deleted.text}"
        if not allowed:
            assert deleted.json()["type"].endswith("/forbidden")
            assert client.get(url, headers=actor.headers).json()["status"] == "ACTIVE"
        else:
            assert client.get(url, headers=actor.headers).status_code == 404


def test_update_fields(client: TestClient, world: World) -> None:
    member = world.members["MEMBER"]
    project = create(client, member, description="First", metadata={"a": 1, "b": 2})
    url = f"/api/v1/projects/{project['id']}"
    renamed = client.patch(url, json={"name": "Renamed"}, headers=member.headers).json()
    assert renamed["name"] == "Renamed"
    assert renamed["description"] == "First"  # omitted: kept
    assert renamed["metadata"] == {"a": 1, "b": 2}
    assert renamed["updated_at"] > project["updated_at"]
    cleared = client.patch(
        url, json={"description": None, "metadata": {"c": 3}}, headers=member.headers
    ).json()
    assert cleared["description"] is None  # null: cleared
    assert cleared["metadata"] == {"c": 3}  # replaced as a whole
    assert cleared["name"] == "Renamed"
    assert cleared["created_by"] == member.id
    for body in ({}, {"created_by": world.members["OWNER"].id}, {"organization_id": member.org_id}):
        assert client.patch(url, json=body, headers=member.headers).status_code == 400


def test_metadata_numbers_come_back_exactly(client: TestClient, world: World) -> None:
    member = world.members["MEMBER"]
    metadata = {"big": 12345678901234567890123, "neg": -(2**70), "small": 7, "pi": 3.25}
    project = create(client, member, metadata=metadata)
    url = f"/api/v1/projects/{project['id']}"
    assert client.get(url, headers=member.headers).json()["metadata"] == metadata
    listed = client.get("/api/v1/projects", headers=member.headers).json()["data"]
    assert [p["metadata"] for p in listed if p["id"] == project["id"]] == [metadata]


def test_names_are_unique_per_organization_among_live_projects(
    client: TestClient, world: World
) -> None:
    owner, member = world.members["OWNER"], world.members["MEMBER"]
    first = create(client, member, name="Warehouse Navigation")
    for name in ("Warehouse Navigation", "WAREHOUSE navigation"):
        response = client.post("/api/v1/projects", json={"name": name}, headers=owner.headers)
        assert response.status_code == 409
        assert response.json()["type"].endswith("/conflict")
    second = create(client, owner, name="Other")
    clash = client.patch(
        f"/api/v1/projects/{second['id']}",
        json={"name": "warehouse navigation"},
        headers=owner.headers,
    )
    assert clash.status_code == 409
    # another organization may use the name
    create(client, world.outsider, name="Warehouse Navigation")
    # a deleted project frees its name
    assert (
        client.delete(f"/api/v1/projects/{first['id']}", headers=member.headers).status_code == 204
    )
    create(client, owner, name="warehouse navigation")


def test_deleted_projects_answer_404(client: TestClient, world: World) -> None:
    owner = world.members["OWNER"]
    project = create(client, owner)
    url = f"/api/v1/projects/{project['id']}"
    assert client.delete(url, headers=owner.headers).status_code == 204
    assert client.get(url, headers=owner.headers).status_code == 404
    assert client.patch(url, json={"name": "x"}, headers=owner.headers).status_code == 404
    assert client.delete(url, headers=owner.headers).status_code == 404
    assert client.get("/api/v1/projects", headers=owner.headers).json()["data"] == []


@pytest.mark.parametrize("op", ["get", "update", "delete"])
def test_another_tenants_projects_answer_404_for_every_role(
    client: TestClient, world: World, op: str
) -> None:
    foreign = create(client, world.outsider, name="Secret")
    url = f"/api/v1/projects/{foreign['id']}"
    for role in ROLES:
        headers = world.members[role].headers
        if op == "get":
            response = client.get(url, headers=headers)
        elif op == "update":
            response = client.patch(url, json={"name": "Stolen"}, headers=headers)
        else:
            response = client.delete(url, headers=headers)
        assert response.status_code == 404, f"{role} {op}: {response.text}"
        assert response.json()["type"].endswith("/not-found")
    assert client.get(url, headers=world.outsider.headers).json() == foreign
    # nothing of B's shows in A's list
    listed = client.get("/api/v1/projects", headers=world.members["OWNER"].headers).json()
    assert foreign["id"] not in {p["id"] for p in listed["data"]}


def test_an_unknown_project_id_is_404(client: TestClient, world: World) -> None:
    response = client.get(
        f"/api/v1/projects/{uuid.uuid4()}", headers=world.members["OWNER"].headers
    )
    assert response.status_code == 404
    bad = client.get("/api/v1/projects/not-a-uuid", headers=world.members["OWNER"].headers)
    assert bad.status_code == 400


def test_changes_are_audited(client: TestClient, world: World, sql: Sql) -> None:
    member = world.members["MEMBER"]
    project = create(client, member)
    client.patch(f"/api/v1/projects/{project['id']}", json={"name": "N"}, headers=member.headers)
    client.delete(f"/api/v1/projects/{project['id']}", headers=member.headers)
    rows = sql(
        "select actor_id::text, action from audit_log where target_id = %s order by created_at",
        project["id"],
    )
    assert rows == [
        (member.id, "project.created"),
        (member.id, "project.updated"),
        (member.id, "project.deleted"),
    ]


# Pagination ------------------------------------------------------------------------------


def walk(
    client: TestClient,
    account: Account,
    limit: int,
    between_pages: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    url = f"/api/v1/projects?limit={limit}"
    while True:
        response = client.get(url, headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= limit
        seen += page["data"]
        if page["next_cursor"] is None:
            return seen
        between_pages()
        url = f"/api/v1/projects?limit={limit}&cursor={page['next_cursor']}"


def test_walking_all_pages_returns_every_project_once_while_others_are_inserted(
    client: TestClient, world: World, sql: Sql
) -> None:
    owner = world.members["OWNER"]
    original = {create(client, owner)["id"] for _ in range(23)}
    # rows that share one created_at: only the id orders them
    tied = sql(
        "insert into projects (organization_id, name, created_by, created_at)"
        " select %s, 'tied ' || g, %s, now() - interval '1 hour'"
        " from generate_series(1, 12) as g returning id::text",
        owner.org_id,
        owner.id,
    )
    original |= {r[0] for r in tied}
    inserted_newer: list[str] = []
    inserted_older: list[str] = []

    def insert_meanwhile() -> None:
        inserted_newer.append(create(client, world.members["MEMBER"])["id"])
        # each older than everything so far: always after the cursor, so it must show up
        older = sql(
            "insert into projects (organization_id, name, created_by, created_at)"
            " values (%s, %s, %s, timestamptz '2000-01-01T00:00:00Z' - %s * interval '1 s')"
            " returning id::text",
            owner.org_id,
            f"older {uuid.uuid4().hex[:8]}",
            owner.id,
            len(inserted_older),
        )
        inserted_older.append(older[0][0])

    seen = walk(client, owner, 5, insert_meanwhile)
    ids = [p["id"] for p in seen]
    assert len(ids) == len(set(ids)), "a row was returned twice"
    assert original <= set(ids), "a row was skipped"
    assert inserted_newer  # pages were fetched while rows were added
    # rows added before the cursor's position do not show up; rows added after it do
    assert not set(inserted_newer) & set(ids)
    assert set(inserted_older) <= set(ids)
    keys = [(p["created_at"], p["id"]) for p in seen]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_page_sizes(client: TestClient, world: World, limit: int) -> None:
    owner = world.members["OWNER"]
    made = [create(client, owner)["id"] for _ in range(7)]
    seen = walk(client, owner, limit)
    assert [p["id"] for p in seen] == made[::-1]
    first = client.get(f"/api/v1/projects?limit={limit}", headers=owner.headers).json()
    assert (first["next_cursor"] is None) is (limit >= 7)


@pytest.mark.parametrize("limit", ["0", "101", "x"])
def test_out_of_range_limits_are_400(client: TestClient, world: World, limit: str) -> None:
    response = client.get(f"/api/v1/projects?limit={limit}", headers=world.members["OWNER"].headers)
    assert response.status_code == 400


def forgeries(cursor: str) -> Iterator[str]:
    yield "garbage"
    yield "AAAA"
    yield "a" * 60
    yield cursor[:-1]  # truncated
    yield cursor[:-4]
    yield cursor[:10]
    middle = len(cursor) // 2
    yield cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]
    yield cursor + "AAAA"


def test_forged_and_truncated_cursors_are_400(client: TestClient, world: World) -> None:
    owner = world.members["OWNER"]
    for _ in range(3):
        create(client, owner)
    cursor = client.get("/api/v1/projects?limit=1", headers=owner.headers).json()["next_cursor"]
    assert client.get(f"/api/v1/projects?cursor={cursor}", headers=owner.headers).status_code == 200
    for forged in forgeries(cursor):
        response = client.get(f"/api/v1/projects?cursor={forged}", headers=owner.headers)
        assert response.status_code == 400, forged
        assert response.json()["type"].endswith("/invalid-cursor"), forged


def test_foreign_cursors_are_400(client: TestClient, world: World) -> None:
    owner = world.members["OWNER"]
    for _ in range(2):
        create(client, owner)
        create(client, world.outsider)
    cursor = client.get("/api/v1/projects?limit=1", headers=owner.headers).json()["next_cursor"]
    # another organization's cursor
    response = client.get(f"/api/v1/projects?cursor={cursor}", headers=world.outsider.headers)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-cursor")
    # another list's cursor, same organization
    users_cursor = client.get("/api/v1/users?limit=1", headers=owner.headers).json()["next_cursor"]
    assert users_cursor is not None
    response = client.get(f"/api/v1/projects?cursor={users_cursor}", headers=owner.headers)
    assert response.status_code == 400
    response = client.get(f"/api/v1/licenses?cursor={cursor}", headers=owner.headers)
    assert response.status_code == 400


# The cost of a page does not grow with its depth ------------------------------------------
# Shown by the plan, not by timing: nothing in these tests is timed or benchmarked. EXPLAIN
# runs with `timing off`; the assertions are on the plan's shape and its row counts.


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


@pytest.fixture
def crowded(
    client: TestClient, signup: Callable[..., Account], database: TestDatabase, sql: Sql
) -> Iterator[Account]:
    """An organization with 2,000 projects, among 3 others with 1,000 each; analyzed."""
    accounts = [signup() for _ in range(4)]
    for account, count in zip(accounts, (2000, 1000, 1000, 1000), strict=True):
        sql(
            "insert into projects (organization_id, name, created_by, created_at)"
            " select %s, 'bulk ' || g, %s, now() - g * interval '1 second'"
            " from generate_series(1, %s) as g",
            account.org_id,
            account.id,
            count,
        )
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        conn.execute("analyze projects")
    yield accounts[0]
    sql(
        "delete from projects where organization_id = any(%s::uuid[])", [a.org_id for a in accounts]
    )


@pytest.mark.parametrize("depth", [0, 1500])
def test_list_query_plan_is_an_index_scan_without_sort_or_offset(
    client: TestClient, crowded: Account, database: TestDatabase, sql: Sql, depth: int
) -> None:
    limit = 20
    q = queries("projects")
    params: dict[str, Any] = {"organization_id": crowded.org_id, "limit": limit + 1}
    query = q.list_projects_first
    if depth:
        ((after_created_at, after_id),) = sql(
            "select created_at, id from projects where organization_id = %s"
            " order by created_at desc, id desc offset %s limit 1",
            crowded.org_id,
            depth,
        )
        query = q.list_projects_after
        params |= {"after_created_at": after_created_at, "after_id": after_id}
    assert "offset" not in query.sql.lower()
    # as the API runs it: the app role, under RLS, with the tenant context set
    with psycopg.connect(database.app_dsn) as conn:
        conn.execute("select app.set_tenant(%s, %s, 'OWNER')", (crowded.org_id, crowded.id))
        (plan,) = conn.execute(
            "explain (analyze, costs off, timing off, summary off, format json) " + query.sql,
            params,
        ).fetchone()  # type: ignore[misc]
    root = plan[0]["Plan"]
    nodes = list(plan_nodes(root))
    kinds = [n["Node Type"] for n in nodes]
    assert root["Node Type"] == "Limit", json.dumps(plan)
    assert "Sort" not in kinds, json.dumps(plan)
    assert "Incremental Sort" not in kinds, json.dumps(plan)
    scans = [n for n in nodes if n["Node Type"] in ("Index Scan", "Index Only Scan")]
    assert [s["Index Name"] for s in scans] == ["projects_org_keyset_idx"], json.dumps(plan)
    scan = scans[0]
    # the keyset is in the index condition: the scan starts at the page, reads one page
    assert "organization_id" in scan["Index Cond"]
    if depth:
        assert "created_at" in scan["Index Cond"]
    assert scan["Actual Rows"] == limit + 1
    assert scan.get("Rows Removed by Filter", 0) == 0
    assert not any("Seq Scan" in k or "Offset" in k for k in kinds)
