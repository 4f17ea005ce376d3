"""`coditect-cloud license issue|suspend|reinstate|revoke|extend`, run as the system role."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.licensing.tiers import DEFAULT_FEATURES, DEFAULTS
from app.ops import license_admin
from tests.api.conftest import Account
from tests.conftest import TestDatabase


def license_cli(system_dsn: str | None, *argv: str) -> tuple[int, str, str]:
    """Run `coditect-cloud license ...`; returns (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="coditect-cloud")
    license_admin.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["license", *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = license_admin.run(args, system_dsn)
    return status, out.getvalue(), err.getvalue()


def issue(system_dsn: str, organization: str, *argv: str) -> dict[str, Any]:
    """A new license of `organization` (id or slug), with its full key."""
    status, out, err = license_cli(system_dsn, "issue", "--organization", organization, *argv)
    assert status == 0, err
    issued: dict[str, Any] = json.loads(out)
    return issued


def validate(client: TestClient, key: str, **fields: str) -> dict[str, Any]:
    response = client.post("/api/v1/licenses/validate", json={"license_key": key, **fields})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_issue_prints_the_key_once_and_stores_only_its_digest(
    client: TestClient,
    database: TestDatabase,
    signup: Callable[..., Account],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    owner = signup()
    issued = issue(
        database.system_dsn,
        owner.organization["slug"],
        "--tier",
        "pro",
        "--seats",
        "25",
        "--name",
        "Robotics team",
        "--days",
        "365",
    )
    key = issued["license_key"]
    assert key.startswith("cdt_live_")
    assert len(key) >= 40
    assert issued["key_prefix"] == key[:12]
    assert issued["tier"] == "PRO"
    assert issued["seats"] == 25
    assert issued["seats_used"] == 0
    assert issued["machine_bound"] is True
    assert issued["features"] == list(DEFAULT_FEATURES["PRO"])
    assert issued["organization_id"] == owner.org_id
    starts = datetime.fromisoformat(issued["starts_at"])
    assert datetime.fromisoformat(issued["expires_at"]) - starts == timedelta(days=365)
    stored = sql(
        "select key_digest, key_prefix from licenses where id = %s",
        issued["id"],
    )
    assert stored == [(hashlib.sha256(key.encode()).digest(), key[:12])]
    # the key is in no column, in any form but its digest
    assert sql(
        "select count(*) from licenses as l where strpos(row_to_json(l)::text, %s) > 0", key
    ) == [(0,)]
    # the tenant API shows it, without the key
    shown = client.get(f"/api/v1/licenses/{issued['id']}", headers=owner.headers).json()
    assert shown["name"] == "Robotics team"
    assert "license_key" not in shown
    assert key not in json.dumps(shown)
    assert validate(client, key, fingerprint="cli-machine-0000001")["code"] == "VALID"
    actions = sql(
        "select action, actor_id, detail->>'tier' from audit_log where target_id = %s"
        " order by created_at",
        issued["id"],
    )
    assert actions == [("license.issued", None, "PRO"), ("license.machine_activated", None, None)]


def test_issue_options(database: TestDatabase, signup: Callable[..., Account]) -> None:
    owner = signup()
    starts = datetime(2030, 1, 1, tzinfo=UTC)
    issued = issue(
        database.system_dsn,
        owner.org_id,
        "--tier",
        "ENTERPRISE",
        "--seats",
        "500",
        "--no-machine-bound",
        "--feature",
        "core",
        "--feature",
        "sso",
        "--starts-at",
        "2030-01-01",
        "--expires-at",
        "2031-01-01T00:00:00Z",
    )
    assert issued["machine_bound"] is False
    assert issued["features"] == ["core", "sso"]
    assert datetime.fromisoformat(issued["starts_at"]) == starts
    assert datetime.fromisoformat(issued["expires_at"]) == datetime(2031, 1, 1, tzinfo=UTC)
    assert issued["name"] == "Enterprise license"


def test_issue_refuses_unknown_organizations_and_bad_dates(
    database: TestDatabase, signup: Callable[..., Account]
) -> None:
    owner = signup()
    status, _, err = license_cli(
        database.system_dsn,
        "issue",
        "--organization",
        "no-such-org",
        "--tier",
        "PRO",
        "--seats",
        "1",
    )
    assert status == 1
    assert "no live organization" in err
    status, _, err = license_cli(
        database.system_dsn,
        "issue",
        "--organization",
        owner.org_id,
        "--tier",
        "PRO",
        "--seats",
        "1",
        "--starts-at",
        "2030-01-01",
        "--expires-at",
        "2029-01-01",
    )
    assert status == 1
    assert "expire after it starts" in err
    status, _, err = license_cli(
        database.system_dsn,
        "issue",
        "--organization",
        owner.org_id,
        "--tier",
        "PRO",
        "--seats",
        "100001",
    )
    assert status == 1
    assert "licenses_seats_check" in err
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        license_cli(database.system_dsn, "issue", "--organization", owner.org_id, "--seats", "0")
    assert license_cli(None, "suspend", owner.org_id)[0] == 2


def test_status_changes_are_seen_by_the_very_next_validation(
    client: TestClient,
    database: TestDatabase,
    signup: Callable[..., Account],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    owner = signup()
    issued = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "2")
    key, license_id = issued["license_key"], issued["id"]
    machine = {"fingerprint": "status-machine-00001"}
    assert validate(client, key, **machine)["code"] == "VALID"

    status, out, _ = license_cli(database.system_dsn, "suspend", license_id, "--reason", "unpaid")
    assert status == 0
    assert json.loads(out)["status"] == "SUSPENDED"
    suspended = validate(client, key, **machine)
    assert (suspended["valid"], suspended["code"]) == (False, "SUSPENDED")
    assert suspended["certificate"] is None
    assert license_cli(database.system_dsn, "suspend", license_id)[0] == 1  # already suspended

    assert license_cli(database.system_dsn, "reinstate", license_id)[0] == 0
    assert validate(client, key, **machine)["code"] == "VALID"

    assert license_cli(database.system_dsn, "revoke", license_id)[0] == 0
    assert validate(client, key, **machine)["code"] == "REVOKED"
    # revocation is final
    for command in ("reinstate", "suspend", "revoke"):
        status, _, err = license_cli(database.system_dsn, command, license_id)
        assert status == 1, command
        assert "REVOKED" in err
    assert license_cli(database.system_dsn, "extend", license_id, "--days", "30")[0] == 1
    assert validate(client, key, **machine)["code"] == "REVOKED"

    audit = sql(
        "select action, detail->>'from', detail->>'to', detail->>'reason' from audit_log"
        " where target_id = %s and action not like 'license.machine%%' order by created_at",
        license_id,
    )
    assert audit == [
        ("license.issued", None, None, None),
        ("license.suspended", "ACTIVE", "SUSPENDED", "unpaid"),
        ("license.reinstated", "SUSPENDED", "ACTIVE", None),
        ("license.revoked", "ACTIVE", "REVOKED", None),
    ]


def test_extend(
    client: TestClient,
    database: TestDatabase,
    signup: Callable[..., Account],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    owner = signup()
    issued = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "1")
    key, license_id = issued["license_key"], issued["id"]
    assert issued["expires_at"] is None
    # --days needs an expiry to extend
    status, _, err = license_cli(database.system_dsn, "extend", license_id, "--days", "30")
    assert (status, "perpetual" in err) == (1, True)

    sql(
        "update licenses set starts_at = now() - interval '60 days',"
        " expires_at = now() - interval '1 day' where id = %s",
        license_id,
    )
    assert validate(client, key, fingerprint="extend-machine-0001")["code"] == "EXPIRED"
    # an expired license is extended from now
    status, out, _ = license_cli(database.system_dsn, "extend", license_id, "--days", "30")
    assert status == 0
    expires = datetime.fromisoformat(json.loads(out)["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert validate(client, key, fingerprint="extend-machine-0001")["code"] == "VALID"
    # a live one from its current expiry
    status, out, _ = license_cli(database.system_dsn, "extend", license_id, "--days", "10")
    assert datetime.fromisoformat(json.loads(out)["expires_at"]) == expires + timedelta(days=10)

    status, out, _ = license_cli(
        database.system_dsn, "extend", license_id, "--expires-at", "2040-06-30T12:00:00+02:00"
    )
    assert datetime.fromisoformat(json.loads(out)["expires_at"]) == datetime(
        2040, 6, 30, 10, tzinfo=UTC
    )
    status, out, _ = license_cli(database.system_dsn, "extend", license_id, "--perpetual")
    assert json.loads(out)["expires_at"] is None
    status, _, err = license_cli(
        database.system_dsn, "extend", license_id, "--expires-at", "2000-01-01"
    )
    assert status == 1
    assert "expire after it starts" in err
    operator_actions = sql(
        "select action from audit_log where target_id = %s and action not like 'license.machine%%'"
        " order by created_at",
        license_id,
    )
    assert [r[0] for r in operator_actions] == [
        "license.issued",
        *["license.extended"] * 4,
    ]


def test_unknown_and_deleted_licenses_are_refused(
    database: TestDatabase,
    signup: Callable[..., Account],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    owner = signup()
    status, _, err = license_cli(
        database.system_dsn, "suspend", "00000000-0000-4000-8000-000000000000"
    )
    assert status == 1
    assert "no live license" in err
    sql("update licenses set deleted_at = now() where organization_id = %s", owner.org_id)
    status, _, _ = license_cli(database.system_dsn, "revoke", owner.license["id"])
    assert status == 1


def test_issue_takes_a_lease_and_churn_limits_within_the_tiers_bounds(
    database: TestDatabase, signup: Callable[..., Account]
) -> None:
    owner = signup()
    issued = issue(
        database.system_dsn,
        owner.org_id,
        "--tier",
        "PRO",
        "--lease-seconds",
        "900",
        "--activation-limit",
        "7",
        "--churn-window-seconds",
        "3600",
    )
    assert (issued["lease_seconds"], issued["activation_limit"]) == (900, 7)
    assert issued["churn_window_seconds"] == 3600
    assert issued["deactivation_limit"] == DEFAULTS["PRO"].deactivation_limit
    for option, value in (("--lease-seconds", "299"), ("--churn-window-seconds", "59")):
        with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            license_cli(
                database.system_dsn, "issue", "--organization", owner.org_id, "--tier", "PRO",
                option, value,
            )  # fmt: skip
