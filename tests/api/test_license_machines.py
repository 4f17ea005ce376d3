"""A license's machines: listing, deactivation (ADMIN and client), leases, churn limits, races."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.licensing.tiers import DEFAULTS
from tests.api.conftest import Account
from tests.api.test_license_cli import issue, validate
from tests.conftest import TestDatabase

Sql = Callable[..., list[tuple[Any, ...]]]
SEATS = 5


def fingerprint(label: str = "machine") -> str:
    return f"{label}-{uuid.uuid4().hex}"


def label(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def deactivate(client: TestClient, key: str, machine: str, **fields: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/licenses/deactivate",
        json={"license_key": key, "fingerprint": machine, **fields},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def machines(client: TestClient, by: Account, license_id: str, **params: Any) -> Any:
    response = client.get(
        f"/api/v1/licenses/{license_id}/machines", params=params, headers=by.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def admin_deactivate(client: TestClient, by: Account, license_id: str, machine_id: str) -> Any:
    return client.post(
        f"/api/v1/licenses/{license_id}/machines/{machine_id}/deactivate", headers=by.headers
    )


@pytest.fixture
def team(signup: Callable[..., Account], add_user: Callable[..., Account]) -> dict[str, Account]:
    owner = signup()
    return {
        "OWNER": owner,
        "ADMIN": add_user(owner, "ADMIN"),
        "MEMBER": add_user(owner, "MEMBER"),
        "GUEST": add_user(owner, "GUEST"),
    }


@pytest.fixture
def pro(database: TestDatabase, team: dict[str, Account]) -> dict[str, Any]:
    """A machine-bound PRO license with SEATS seats."""
    return issue(database.system_dsn, team["OWNER"].org_id, "--tier", "PRO", "--seats", str(SEATS))


def test_machines_are_listed_with_a_label_never_the_fingerprint(
    client: TestClient, team: dict[str, Account], pro: dict[str, Any]
) -> None:
    key = pro["license_key"]
    laptop, desktop, ci = fingerprint("laptop"), fingerprint("desktop"), fingerprint("ci")
    for machine, host in ((laptop, "laptop.example"), (desktop, "desktop.example"), (ci, None)):
        fields = {"fingerprint": machine} | ({"hostname": host} if host else {})
        assert validate(client, key, **fields)["code"] == "VALID"
    first = machines(client, team["GUEST"], pro["id"], limit=2)
    assert [m["hostname"] for m in first["data"]] == [None, "desktop.example"]
    assert first["next_cursor"] is not None
    rest = machines(client, team["GUEST"], pro["id"], limit=2, cursor=first["next_cursor"])
    assert [m["hostname"] for m in rest["data"]] == ["laptop.example"]
    assert rest["next_cursor"] is None
    listed = first["data"] + rest["data"]
    assert [m["fingerprint_label"] for m in listed] == [label(ci), label(desktop), label(laptop)]
    for m in listed:
        assert (m["holds_seat"], m["released_reason"], m["released_at"]) == (True, None, None)
        assert m["license_id"] == pro["id"]
    for text in (str(first), str(rest)):
        for machine in (laptop, desktop, ci):
            assert machine not in text
            assert hashlib.sha256(machine.encode()).hexdigest() not in text


def test_another_organizations_license_and_machines_answer_404(
    client: TestClient,
    team: dict[str, Account],
    pro: dict[str, Any],
    signup: Callable[..., Account],
) -> None:
    assert validate(client, pro["license_key"], fingerprint=fingerprint())["code"] == "VALID"
    (machine,) = machines(client, team["OWNER"], pro["id"])["data"]
    stranger = signup()
    listed = client.get(f"/api/v1/licenses/{pro['id']}/machines", headers=stranger.headers)
    assert listed.status_code == 404
    assert admin_deactivate(client, stranger, pro["id"], machine["id"]).status_code == 404
    # a machine of one license named under another license of the same organization
    other = team["OWNER"].license["id"]
    assert admin_deactivate(client, team["OWNER"], other, machine["id"]).status_code == 404
    assert machines(client, team["OWNER"], pro["id"])["data"][0]["holds_seat"] is True
    # a cursor of one license's list is refused by another's
    for _ in range(2):
        validate(client, pro["license_key"], fingerprint=fingerprint())
    cursor = machines(client, team["OWNER"], pro["id"], limit=1)["next_cursor"]
    foreign = client.get(
        f"/api/v1/licenses/{other}/machines",
        params={"cursor": cursor},
        headers=team["OWNER"].headers,
    )
    assert foreign.status_code == 400


@pytest.mark.parametrize(("role", "expected"), [("ADMIN", 200), ("MEMBER", 403), ("GUEST", 403)])
def test_only_admins_deactivate_machines(
    client: TestClient, team: dict[str, Account], pro: dict[str, Any], role: str, expected: int
) -> None:
    validate(client, pro["license_key"], fingerprint=fingerprint())
    (machine,) = machines(client, team["OWNER"], pro["id"])["data"]
    response = admin_deactivate(client, team[role], pro["id"], machine["id"])
    assert response.status_code == expected
    held = machines(client, team["OWNER"], pro["id"])["data"][0]["holds_seat"]
    assert held is (expected != 200)


def test_a_deactivated_seat_is_reusable_at_once_and_the_machine_keeps_its_row(
    client: TestClient, team: dict[str, Account], pro: dict[str, Any], sql: Sql
) -> None:
    key, admin = pro["license_key"], team["ADMIN"]
    fleet = [fingerprint("fleet") for _ in range(SEATS)]
    for machine in fleet:
        assert validate(client, key, fingerprint=machine)["code"] == "VALID"
    newcomer = fingerprint("newcomer")
    assert validate(client, key, fingerprint=newcomer)["code"] == "SEAT_LIMIT_EXCEEDED"
    old = next(
        m
        for m in machines(client, admin, pro["id"])["data"]
        if m["fingerprint_label"] == label(fleet[0])
    )
    response = admin_deactivate(client, admin, pro["id"], old["id"])
    assert response.status_code == 200
    released = response.json()
    assert (released["id"], released["holds_seat"], released["released_reason"]) == (
        old["id"],
        False,
        "deactivated",
    )
    assert released["released_at"] is not None
    # nothing to do a second time: answered as it is, not counted again
    again = admin_deactivate(client, admin, pro["id"], old["id"])
    assert (again.status_code, again.json()) == (200, released)
    taken = validate(client, key, fingerprint=newcomer)
    assert (taken["code"], taken["license"]["seats_used"]) == ("VALID", SEATS)
    assert validate(client, key, fingerprint=fleet[0])["code"] == "SEAT_LIMIT_EXCEEDED"
    # the newcomer deactivates itself (uninstall): the old machine comes back on its own row
    freed = deactivate(client, key, newcomer, nonce="uninstall-1")
    assert (freed["deactivated"], freed["code"], freed["nonce"]) == (
        True,
        "DEACTIVATED",
        "uninstall-1",
    )
    assert freed["license"]["seats_used"] == SEATS - 1
    assert freed["machine"]["id"] == taken["activation"]["id"]
    back = validate(client, key, fingerprint=fleet[0])
    assert (back["code"], back["activation"]["new"], back["activation"]["id"]) == (
        "VALID",
        True,
        old["id"],
    )
    assert sql("select count(*) from license_activations where license_id = %s", pro["id"]) == [
        (SEATS + 1,)
    ]
    actions = sql(
        "select action, actor_id::text, detail->>'machine_id', detail->>'by',"
        " detail->>'previous' from audit_log where target_id = %s"
        " and action like 'license.machine%%' order by created_at, id",
        pro["id"],
    )
    assert actions[SEATS:] == [
        ("license.machine_deactivated", admin.id, old["id"], "admin", None),
        ("license.machine_activated", None, taken["activation"]["id"], None, "none"),
        ("license.machine_deactivated", None, taken["activation"]["id"], "client", None),
        ("license.machine_activated", None, old["id"], None, "deactivated"),
    ]


def test_a_client_deactivation_answers_every_outcome(
    client: TestClient, pro: dict[str, Any]
) -> None:
    key, machine = pro["license_key"], fingerprint()
    unknown = deactivate(client, "cdt_live_" + "x" * 43, machine)
    assert (unknown["code"], unknown["license"], unknown["machine"]) == ("NOT_FOUND", None, None)
    never = deactivate(client, key, machine)
    assert (never["deactivated"], never["code"], never["machine"]) == (False, "NOT_ACTIVATED", None)
    assert never["license"]["id"] == pro["id"]
    validate(client, key, fingerprint=machine)
    assert deactivate(client, key, machine)["code"] == "DEACTIVATED"
    assert deactivate(client, key, machine)["code"] == "NOT_ACTIVATED"
    bad = client.post("/api/v1/licenses/deactivate", json={"license_key": key})
    assert bad.status_code == 400


def test_an_expired_lease_frees_the_seat_and_the_old_machine_needs_a_free_one(
    client: TestClient, team: dict[str, Account], pro: dict[str, Any], sql: Sql
) -> None:
    key = pro["license_key"]
    sql("update licenses set seats = 1, lease_seconds = 600 where id = %s", pro["id"])
    old, new, third = fingerprint("old"), fingerprint("new"), fingerprint("third")
    held = validate(client, key, fingerprint=old)
    assert held["license"]["lease_seconds"] == 600
    assert validate(client, key, fingerprint=new)["code"] == "SEAT_LIMIT_EXCEEDED"
    # a validation renews the lease: still inside it, the seat stays taken
    sql(
        "update license_activations set last_seen_at = now() - interval '9 minutes'"
        " where license_id = %s",
        pro["id"],
    )
    assert validate(client, key, fingerprint=old)["activation"]["new"] is False
    assert validate(client, key, fingerprint=new)["code"] == "SEAT_LIMIT_EXCEEDED"
    # then it stops validating for longer than the lease
    sql(
        "update license_activations set last_seen_at = now() - interval '11 minutes'"
        " where license_id = %s",
        pro["id"],
    )
    listed = machines(client, team["GUEST"], pro["id"])["data"]
    assert [(m["holds_seat"], m["released_reason"]) for m in listed] == [(False, "lease_expired")]
    assert (
        client.get(f"/api/v1/licenses/{pro['id']}", headers=team["GUEST"].headers).json()[
            "seats_used"
        ]
        == 0
    )
    taken = validate(client, key, fingerprint=new)
    assert (taken["code"], taken["activation"]["new"]) == ("VALID", True)
    # the old machine gets a seat back only if one is free
    assert validate(client, key, fingerprint=old)["code"] == "SEAT_LIMIT_EXCEEDED"
    assert deactivate(client, key, new)["code"] == "DEACTIVATED"
    back = validate(client, key, fingerprint=old)
    assert (back["code"], back["activation"]["id"]) == ("VALID", held["activation"]["id"])
    assert validate(client, key, fingerprint=third)["code"] == "SEAT_LIMIT_EXCEEDED"
    expired = sql(
        "select detail->>'machine_id', request_id is not null from audit_log"
        " where target_id = %s and action = 'license.machine_lease_expired'",
        pro["id"],
    )
    assert expired == [(held["activation"]["id"], True)]
    previous = sql(
        "select detail->>'previous' from audit_log where target_id = %s"
        " and action = 'license.machine_activated' order by created_at",
        pro["id"],
    )
    assert previous == [("none",), ("none",), ("lease_expired",)]


def test_activation_limit_hits_at_exactly_n_and_the_window_slides(
    client: TestClient, pro: dict[str, Any], sql: Sql
) -> None:
    key = pro["license_key"]
    sql("update licenses set activation_limit = 3, lease_seconds = 600 where id = %s", pro["id"])
    first = [fingerprint("churn") for _ in range(3)]
    for machine in first:
        assert validate(client, key, fingerprint=machine)["code"] == "VALID"
    fourth = fingerprint("fourth")
    refused = validate(client, key, fingerprint=fourth)
    assert (refused["valid"], refused["code"]) == (False, "ACTIVATION_LIMIT_EXCEEDED")
    assert refused["detail"] == (
        "This license's limit of 3 new machine activations per 1 day is reached; try again later."
    )
    assert refused["license"]["seats_used"] == 3  # seats were free: the limit decided
    # a deactivated machine coming back is churn too
    assert deactivate(client, key, first[0])["code"] == "DEACTIVATED"
    assert validate(client, key, fingerprint=first[0])["code"] == "ACTIVATION_LIMIT_EXCEEDED"
    # a machine whose lease merely lapsed is not churn
    sql(
        "update license_activations set last_seen_at = now() - interval '11 minutes'"
        " where license_id = %s and deactivated_at is null",
        pro["id"],
    )
    assert validate(client, key, fingerprint=first[1])["activation"]["new"] is True
    # the window slides: the oldest activation leaves it, one more machine may come
    sql(
        "update audit_log set created_at = now() - interval '1 day 1 second'"
        " where id = (select id from audit_log where target_id = %s"
        " and action = 'license.machine_activated' order by created_at limit 1)",
        pro["id"],
    )
    assert validate(client, key, fingerprint=fourth)["code"] == "VALID"
    assert validate(client, key, fingerprint=fingerprint())["code"] == "ACTIVATION_LIMIT_EXCEEDED"


def test_deactivation_limit_hits_at_exactly_n_for_clients_and_admins(
    client: TestClient, team: dict[str, Account], pro: dict[str, Any], sql: Sql
) -> None:
    key = pro["license_key"]
    sql("update licenses set deactivation_limit = 2 where id = %s", pro["id"])
    fleet = [fingerprint("fleet") for _ in range(4)]
    for machine in fleet:
        validate(client, key, fingerprint=machine)
    assert deactivate(client, key, fleet[0])["code"] == "DEACTIVATED"
    by_id = {
        m["fingerprint_label"]: m["id"] for m in machines(client, team["OWNER"], pro["id"])["data"]
    }
    assert (
        admin_deactivate(client, team["ADMIN"], pro["id"], by_id[label(fleet[1])]).status_code
        == 200
    )
    refused = deactivate(client, key, fleet[2])
    assert (refused["deactivated"], refused["code"]) == (False, "DEACTIVATION_LIMIT_EXCEEDED")
    assert refused["detail"] == (
        "This license's limit of 2 deactivations per 1 day is reached; try again later."
    )
    response = admin_deactivate(client, team["ADMIN"], pro["id"], by_id[label(fleet[3])])
    assert response.status_code == 409
    assert response.json()["type"].endswith("/conflict")
    assert validate(client, key, fingerprint=fleet[2])["activation"]["new"] is False  # still held
    sql(
        "update audit_log set created_at = now() - interval '2 days'"
        " where target_id = %s and action = 'license.machine_deactivated'"
        " and detail->>'by' = 'client'",
        pro["id"],
    )
    assert deactivate(client, key, fleet[2])["code"] == "DEACTIVATED"
    assert deactivate(client, key, fleet[3])["code"] == "DEACTIVATION_LIMIT_EXCEEDED"


@pytest.mark.parametrize("round_", range(3))
def test_seats_stay_exact_while_machines_come_go_and_lapse(
    client: TestClient, pro: dict[str, Any], sql: Sql, round_: int
) -> None:
    key = pro["license_key"]
    sql("update licenses set lease_seconds = 600 where id = %s", pro["id"])
    holders = [fingerprint(f"holder{round_}") for _ in range(SEATS)]
    for machine in holders:
        assert validate(client, key, fingerprint=machine)["code"] == "VALID"
    # two holders stopped validating long ago; three deactivate while SEATS + 12 newcomers race
    sql(
        "update license_activations set last_seen_at = now() - interval '1 hour'"
        " where license_id = %s and fingerprint_digest = any(%s)",
        pro["id"],
        [hashlib.sha256(m.encode()).digest() for m in holders[:2]],
    )
    newcomers = [fingerprint(f"racer{round_}") for _ in range(SEATS + 12)]
    jobs = [("validate", m) for m in newcomers] + [("deactivate", m) for m in holders[2:]]
    jobs = jobs[::2] + jobs[1::2]  # interleave the deactivations with the activations

    def run(job: tuple[str, str]) -> dict[str, Any]:
        kind, machine = job
        if kind == "validate":
            return validate(client, key, fingerprint=machine)
        return deactivate(client, key, machine)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    codes = Counter(r["code"] for r in results)
    assert codes["DEACTIVATED"] == 3
    won = codes["VALID"]
    assert codes["SEAT_LIMIT_EXCEEDED"] == SEATS + 12 - won
    assert 2 <= won <= SEATS  # the lapsed seats at least; never more than exist
    assert max(r["license"]["seats_used"] for r in results) <= SEATS
    # afterwards, exactly the free seats remain: filling them ends at SEATS, not one more
    late = [validate(client, key, fingerprint=fingerprint("late")) for _ in range(SEATS + 1)]
    assert [r["code"] for r in late].count("VALID") == SEATS - won
    assert sql(
        "select count(*) from license_activations where license_id = %s and deactivated_at is null",
        pro["id"],
    ) == [(SEATS,)]
    events = Counter(
        action
        for (action,) in sql(
            "select action from audit_log where target_id = %s and action like 'license.machine%%'",
            pro["id"],
        )
    )
    assert events == {
        "license.machine_activated": SEATS + SEATS,  # the holders, then SEATS newcomers
        "license.machine_deactivated": 3,
        "license.machine_lease_expired": 2,
    }


def test_free_is_one_definition_for_signup_and_the_cli(
    signup: Callable[..., Account], database: TestDatabase
) -> None:
    free = DEFAULTS["FREE"]
    owner = signup()
    issued = issue(database.system_dsn, owner.org_id, "--tier", "FREE")
    for license_ in (owner.license, issued):
        assert (
            license_["seats"],
            license_["machine_bound"],
            tuple(license_["features"]),
            license_["lease_seconds"],
            license_["activation_limit"],
            license_["deactivation_limit"],
            license_["churn_window_seconds"],
        ) == (
            free.seats,
            free.machine_bound,
            free.features,
            None,
            free.activation_limit,
            free.deactivation_limit,
            free.churn_window_seconds,
        )


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "OPTIONS"])
def test_client_deactivation_is_post_only_whatever_the_spec_order(
    client: TestClient, method: str
) -> None:
    # /licenses/deactivate is listed after /licenses/{license_id}: still not a license id.
    response = client.request(method, "/api/v1/licenses/deactivate")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
