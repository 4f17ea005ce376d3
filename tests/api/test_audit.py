"""listAuditEvents: who did what, from where; filters, keyset pages, ADMIN+, one tenant only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import Account
from tests.api.test_license_cli import issue, validate
from tests.conftest import TestDatabase

Sql = Callable[..., list[tuple[Any, ...]]]
URL = "/api/v1/audit-events"


def events(client: TestClient, by: Account, **params: Any) -> Any:
    response = client.get(URL, params=params, headers=by.headers)
    assert response.status_code == 200, response.text
    return response.json()


def every_page(client: TestClient, by: Account, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = events(client, by, **params, **({"cursor": cursor} if cursor else {}))
        found += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def fingerprint() -> str:
    return f"audit-{uuid.uuid4().hex}"


@pytest.fixture
def team(signup: Callable[..., Account], add_user: Callable[..., Account]) -> dict[str, Account]:
    owner = signup()
    return {
        "OWNER": owner,
        "ADMIN": add_user(owner, "ADMIN"),
        "MEMBER": add_user(owner, "MEMBER"),
        "GUEST": add_user(owner, "GUEST"),
    }


@pytest.mark.parametrize(("role", "expected"), [("ADMIN", 200), ("MEMBER", 403), ("GUEST", 403)])
def test_only_admins_read_the_trail(
    client: TestClient, team: dict[str, Account], role: str, expected: int
) -> None:
    assert client.get(URL, headers=team[role].headers).status_code == expected
    assert client.get(URL).status_code == 401


def test_each_action_is_recorded_with_actor_address_and_request_id(
    client: TestClient, team: dict[str, Account], database: TestDatabase, sql: Sql
) -> None:
    owner, admin = team["OWNER"], team["ADMIN"]
    pro = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "2")
    sql("update licenses set lease_seconds = 600 where id = %s", pro["id"])
    # A client at a known address: its activation records that address. It shares the
    # session client's event loop (portal), where the database pool lives.
    remote = TestClient(client.app, client=("203.0.113.9", 40000))
    remote.portal = client.portal
    first, second, third = fingerprint(), fingerprint(), fingerprint()
    activated = remote.post(
        "/api/v1/licenses/validate",
        json={"license_key": pro["license_key"], "fingerprint": first, "hostname": "a.example"},
        headers={"X-Request-Id": "req-activate-0001"},
    ).json()
    validate(client, pro["license_key"], fingerprint=second)
    machine_id = activated["activation"]["id"]
    renamed = remote.patch(
        f"/api/v1/licenses/{pro['id']}",
        json={"name": "Renamed"},
        headers={**admin.headers, "X-Request-Id": "req-rename-00001"},
    )
    assert renamed.status_code == 200
    deactivated = client.post(
        f"/api/v1/licenses/{pro['id']}/machines/{machine_id}/deactivate", headers=admin.headers
    )
    assert deactivated.status_code == 200
    client.post(
        "/api/v1/licenses/deactivate",
        json={"license_key": pro["license_key"], "fingerprint": second},
    )
    validate(client, pro["license_key"], fingerprint=first)
    sql(
        "update license_activations set last_seen_at = now() - interval '11 minutes'"
        " where license_id = %s",
        pro["id"],
    )
    validate(client, pro["license_key"], fingerprint=third)  # the lapsed seat goes to it

    trail = every_page(client, owner, target_id=pro["id"], limit=2)
    # the lease's release and the activation it made room for share a transaction (and time)
    trail[:2] = sorted(trail[:2], key=lambda e: e["action"], reverse=True)
    assert [e["action"] for e in trail] == [
        "license.machine_lease_expired",
        "license.machine_activated",
        "license.machine_activated",
        "license.machine_deactivated",
        "license.machine_deactivated",
        "license.updated",
        "license.machine_activated",
        "license.machine_activated",
        "license.issued",
    ]
    first_activation = trail[-2]
    assert first_activation["client_ip"] == "203.0.113.9"
    assert first_activation["request_id"] == "req-activate-0001"
    assert first_activation["actor_id"] is None
    assert first_activation["detail"] == {
        "machine_id": machine_id,
        "hostname": "a.example",
        "fingerprint": first_activation["detail"]["fingerprint"],
        "previous": "none",
    }
    assert first not in str(trail)
    update = trail[5]
    assert (update["actor_id"], update["actor_email"]) == (admin.id, admin.email)
    assert (update["client_ip"], update["request_id"]) == ("203.0.113.9", "req-rename-00001")
    by_admin, by_client = trail[4], trail[3]
    assert (by_admin["detail"]["by"], by_admin["actor_id"]) == ("admin", admin.id)
    assert (by_client["detail"]["by"], by_client["actor_id"]) == ("client", None)
    assert trail[0]["detail"]["machine_id"] == machine_id
    assert trail[-1]["request_id"] is None  # the operator's CLI: no request


def test_filters_combine_and_pages_hold_together(
    client: TestClient, team: dict[str, Account], database: TestDatabase, sql: Sql
) -> None:
    owner, admin = team["OWNER"], team["ADMIN"]
    pro = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "10")
    for _ in range(5):
        validate(client, pro["license_key"], fingerprint=fingerprint())
    for i in range(3):
        client.patch(f"/api/v1/licenses/{pro['id']}", json={"name": f"n{i}"}, headers=admin.headers)
    client.patch(
        f"/api/v1/licenses/{owner.license['id']}", json={"name": "own"}, headers=owner.headers
    )

    activations = every_page(client, owner, action="license.machine_activated", limit=2)
    assert len(activations) == 5
    assert len({e["id"] for e in activations}) == 5
    stamps = [e["created_at"] for e in activations]
    assert stamps == sorted(stamps, reverse=True)

    by_admin = every_page(client, owner, actor_id=admin.id)
    assert [e["action"] for e in by_admin] == ["license.updated"] * 3
    about_own = events(client, owner, target_type="license", target_id=owner.license["id"])
    assert [e["action"] for e in about_own["data"]] == ["license.updated"]
    assert events(client, owner, target_type="project", target_id=pro["id"])["data"] == []

    # a half-open time range: moved entries fall in or out of it exactly
    sql(
        "update audit_log set created_at = '2025-03-01T00:00:00Z' where id = %s",
        activations[-1]["id"],
    )
    window = {"since": "2025-03-01T00:00:00Z", "until": "2025-03-02T00:00:00Z"}
    assert [e["id"] for e in events(client, owner, **window)["data"]] == [activations[-1]["id"]]
    assert (
        events(client, owner, since="2025-03-01T00:00:00.000001Z", until=window["until"])["data"]
        == []
    )
    assert events(client, owner, since="2025-02-28T00:00:00Z", until=window["since"])["data"] == []
    recent = events(client, owner, since=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert activations[-1]["id"] not in {e["id"] for e in recent["data"]}


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"},
        {"since": "2025-03-01"},
        {"actor_id": "not-a-uuid"},
        {"action": "Not An Action"},
        {"cursor": "forged"},
    ],
)
def test_bad_filters_are_400(
    client: TestClient, team: dict[str, Account], params: dict[str, str]
) -> None:
    response = client.get(URL, params=params, headers=team["ADMIN"].headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_another_tenants_events_never_show(
    client: TestClient, team: dict[str, Account], signup: Callable[..., Account]
) -> None:
    owner = team["OWNER"]
    client.patch(
        f"/api/v1/licenses/{owner.license['id']}", json={"name": "x"}, headers=owner.headers
    )
    validate(client, owner.license["license_key"], fingerprint=fingerprint())
    stranger = signup()
    mine = every_page(client, owner)
    assert mine
    assert {e["organization_id"] for e in mine} == {owner.org_id}
    theirs = every_page(client, stranger)
    assert {e["organization_id"] for e in theirs} <= {stranger.org_id}
    assert not {e["id"] for e in mine} & {e["id"] for e in theirs}
    # naming the other tenant's objects finds nothing; its cursors are refused
    assert events(client, stranger, target_id=owner.license["id"])["data"] == []
    assert events(client, stranger, actor_id=owner.id)["data"] == []
    cursor = events(client, owner, limit=1)["next_cursor"]
    assert cursor is not None
    foreign = client.get(URL, params={"cursor": cursor}, headers=stranger.headers)
    assert foreign.status_code == 400


def test_the_trail_stays_append_only_for_the_app_role(
    database: TestDatabase, team: dict[str, Account]
) -> None:
    import psycopg

    owner = team["OWNER"]
    with psycopg.connect(database.app_dsn) as conn:
        conn.execute("select app.set_tenant(%s, %s, 'OWNER')", (owner.org_id, owner.id))
        for statement in (
            "update audit_log set action = 'x.y' where organization_id = %s",
            "delete from audit_log where organization_id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement, (owner.org_id,))
