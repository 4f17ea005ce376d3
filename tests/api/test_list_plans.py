"""The new keyset lists (a license's machines, the audit trail) read one page of an index."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from db import queries
from tests.api.conftest import Account
from tests.api.test_license_cli import issue
from tests.api.test_licenses import plan_nodes
from tests.conftest import TestDatabase

Sql = Callable[..., list[tuple[Any, ...]]]
FILTERS = {
    "action": None,
    "actor_id": None,
    "target_type": None,
    "target_id": None,
    "since": None,
    "until": None,
}


def explain(database: TestDatabase, owner: Account, query: str, **params: Any) -> Any:
    with psycopg.connect(database.app_dsn) as conn:
        conn.execute("select app.set_tenant(%s, %s, 'OWNER')", (owner.org_id, owner.id))
        (plan,) = conn.execute(
            "explain (analyze, costs off, timing off, summary off, format json) " + query,
            {"organization_id": owner.org_id, "limit": 21, **params},
        ).fetchone()  # type: ignore[misc]
    return plan[0]["Plan"]


def assert_one_page_of(plan: Any, index: str) -> None:
    nodes = list(plan_nodes(plan))
    kinds = [n["Node Type"] for n in nodes]
    assert kinds[0] == "Limit", json.dumps(plan)
    for slow in ("Sort", "Incremental Sort", "Seq Scan"):
        assert slow not in kinds, json.dumps(plan)
    (scan,) = [n for n in nodes if n.get("Index Name") == index]
    assert scan["Actual Rows"] == 21, json.dumps(plan)


@pytest.fixture
def owner(signup: Callable[..., Account]) -> Account:
    return signup()


def test_a_deep_page_of_machines_reads_one_page_of_the_index(
    owner: Account, database: TestDatabase, sql: Sql
) -> None:
    pro = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", "5")
    sql(
        "insert into license_activations (organization_id, license_id, fingerprint_digest,"
        " created_at) select %s, %s, sha256(gen_random_uuid()::text::bytea),"
        " now() - g * interval '1 second' from generate_series(1, 3000) as g",
        owner.org_id,
        pro["id"],
    )
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        conn.execute("analyze license_activations")
    ((after_created_at, after_id),) = sql(
        "select created_at, id from license_activations where license_id = %s"
        " order by created_at desc, id desc offset 1500 limit 1",
        pro["id"],
    )
    query = queries("licenses").list_license_machines_after.sql
    plan = explain(
        database,
        owner,
        query,
        license_id=pro["id"],
        after_created_at=after_created_at,
        after_id=after_id,
    )
    assert_one_page_of(plan, "license_activations_org_license_keyset_idx")


@pytest.mark.parametrize("action", [None, "license.updated"])
def test_a_deep_page_of_the_audit_trail_reads_one_page_of_an_index(
    owner: Account, database: TestDatabase, sql: Sql, action: str | None
) -> None:
    sql(
        "insert into audit_log (organization_id, action, target_type, created_at)"
        " select %s, case when g %% 2 = 0 then 'license.updated' else 'project.created' end,"
        " 'license', now() - g * interval '1 second' from generate_series(1, 6000) as g",
        owner.org_id,
    )
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        conn.execute("analyze audit_log")
    ((after_created_at, after_id),) = sql(
        "select created_at, id from audit_log where organization_id = %s"
        " and (%s::text is null or action = %s)"
        " order by created_at desc, id desc offset 1500 limit 1",
        owner.org_id,
        action,
        action,
    )
    plan = explain(
        database,
        owner,
        queries("audit").list_audit_events_after.sql,
        **(FILTERS | {"action": action}),
        after_created_at=after_created_at,
        after_id=after_id,
    )
    index = "audit_log_org_keyset_idx" if action is None else "audit_log_org_action_idx"
    assert_one_page_of(plan, index)
