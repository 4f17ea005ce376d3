"""RLS on vs off for the list query, and EXPLAIN (ANALYZE, BUFFERS) for each hot query."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

import psycopg

from db import Query, queries

LIST_FIRST = queries("projects").list_projects_first


def _round_trip_ms(conn: psycopg.Connection[Any], q: Query, params: dict[str, Any]) -> float:
    t = time.perf_counter()
    conn.execute(q.sql, params).fetchall()
    return (time.perf_counter() - t) * 1000


def _execution_ms(conn: psycopg.Connection[Any], q: Query, params: dict[str, Any]) -> float:
    # TIMING OFF: per-node clock reads would charge the policy's extra plan nodes for
    # EXPLAIN's own overhead; the total execution time is still measured.
    plan = conn.execute("explain (analyze, timing off, format json) " + q.sql, params).fetchone()
    assert plan is not None
    return float(plan[0][0]["Execution Time"])


def set_context(conn: psycopg.Connection[Any], ctx: dict[str, Any]) -> None:
    conn.execute(
        "select app.set_tenant(%s, %s, 'OWNER')", (ctx["org_id"], ctx["user_id"])
    ).fetchall()


def rls_compare(admin_dsn: str, app_dsn: str, ctx: dict[str, Any], n: int = 300) -> dict[str, Any]:
    """The same statement as the superuser (RLS bypassed) and as the app role with the tenant
    context set, sample by sample in turn, so neither side gets warmer caches or a quieter
    moment than the other."""
    params = {"organization_id": ctx["org_id"], "limit": 51}
    with psycopg.connect(admin_dsn) as off, psycopg.connect(app_dsn) as on:
        set_context(on, ctx)
        for _ in range(10):  # warm up, and past psycopg's prepare threshold
            for conn in (off, on):
                conn.execute(LIST_FIRST.sql, params).fetchall()
        off_ms, on_ms, off_plan, on_plan = [], [], [], []
        for _ in range(n):
            off_ms.append(_round_trip_ms(off, LIST_FIRST, params))
            on_ms.append(_round_trip_ms(on, LIST_FIRST, params))
        for _ in range(n):
            off_plan.append(_execution_ms(off, LIST_FIRST, params))
            on_plan.append(_execution_ms(on, LIST_FIRST, params))
        rows = len(on.execute(LIST_FIRST.sql, params).fetchall())
        off.rollback()
        on.rollback()
    off_explain, on_explain = statistics.median(off_plan), statistics.median(on_plan)
    med_on, med_off = statistics.median(on_ms), statistics.median(off_ms)
    return {
        "query": "projects.list_projects_first (limit 51), the 100k-project organization",
        "rows_as_app_role": rows,
        "n": n,
        "off_superuser_median_ms": round(med_off, 4),
        "on_app_role_median_ms": round(med_on, 4),
        "ratio_roundtrip_median": round(med_on / med_off, 3),
        "off_explain_execution_ms": round(off_explain, 4),
        "on_explain_execution_ms": round(on_explain, 4),
        "ratio_explain_execution": round(on_explain / off_explain, 3),
        "difference_explain_execution_us": round((on_explain - off_explain) * 1000, 1),
    }


def explain_hot(app_dsn: str, ctx: dict[str, Any]) -> dict[str, str]:
    """Plans as the app role (context set), inside a transaction that is rolled back."""
    lic, prj, ses = queries("licenses"), queries("projects"), queries("session")
    users, orgs, auth = queries("users"), queries("organizations"), queries("auth")
    org, user = ctx["org_id"], ctx["user_id"]
    cases: list[tuple[str, Query, dict[str, Any], bool]] = [
        (
            "session.begin_request",
            ses.begin_request,
            {"organization_id": org, "user_id": user, "session_id": ctx["session_id"]},
            False,
        ),
        (
            "projects.list_projects_first",
            prj.list_projects_first,
            {"organization_id": org, "limit": 51},
            True,
        ),
        (
            "projects.list_projects_after (deep)",
            prj.list_projects_after,
            {
                "organization_id": org,
                "after_created_at": ctx["deep_after"][0],
                "after_id": ctx["deep_after"][1],
                "limit": 51,
            },
            True,
        ),
        ("users.get_user", users.get_user, {"organization_id": org, "user_id": user}, True),
        ("organizations.get_organization", orgs.get_organization, {"organization_id": org}, True),
        ("auth.find_login", auth.find_login, {"email": ctx["login_body"]["email"]}, False),
        (
            "licenses.validate_license (activated)",
            lic.validate_license,
            {
                "key_digest": ctx["hot_key_digest"],
                "fingerprint_digest": ctx["hot_fpr"],
                "hostname": "bench-host",
                "seen_granularity": timedelta(seconds=60),
                "client_ip": None,
                "request_id": None,
            },
            False,
        ),
    ]
    out = {}
    with psycopg.connect(app_dsn) as conn:
        for name, q, params, needs_context in cases:
            if needs_context:
                set_context(conn, ctx)
            # Once unrecorded: a backend's first call compiles plpgsql and fills its catalog
            # caches (4 ms and ~1,000 buffers for begin_request), which no pooled request pays.
            conn.execute("explain (analyze) " + q.sql, params).fetchall()
            rows = conn.execute("explain (analyze, buffers) " + q.sql, params).fetchall()
            out[name] = "\n".join(r[0] for r in rows)
            conn.rollback()
    return out
