"""A fresh embedded database loaded at scale, server-side (generate_series), as the superuser."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from app.auth import passwords
from app.config import PasswordHashing
from db import embedded, migrations

PASSWORD = "bench-password-123"  # noqa: S105 - the loaded users' password
HOT_KEY = "cdt_live_bench_1_1"  # org 1, license 1: activated fingerprint below
HOT_FINGERPRINT = "bench-fingerprint-1-1"
HUGE_KEYS = [f"cdt_live_bench_huge_{n}" for n in range(1, 6)]  # seats 100,000 each
BIG_ORG_OWNER = "owner@org1.bench.example"


@dataclass(frozen=True)
class Scale:
    name: str
    organizations: int
    users_per_org: int
    licenses_per_org: int
    projects: int  # in all, including the big organization's
    big_org_projects: int
    deep_offset: int  # rows skipped before the deep page of the big organization


SCALES = {
    "small": Scale("small", 2, 3, 5, 50, 40, 20),
    "medium": Scale("medium", 200, 5, 100, 200_000, 100_000, 50_000),
    "full": Scale("full", 1_000, 10, 100, 1_000_000, 100_000, 50_000),
}


def org_id(i: int) -> str:
    return str(_md5_uuid(f"org-{i}"))


def _md5_uuid(text: str) -> str:
    h = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - a deterministic id, not security
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _step(conn: psycopg.Connection[Any], label: str, sql: str, params: Any = None) -> None:
    t = time.perf_counter()
    print(f"  load: {label} ...", end="", flush=True)
    cur = conn.execute(sql, params)
    conn.commit()
    print(f" {cur.rowcount:,} rows in {time.perf_counter() - t:.1f}s", flush=True)


def load(admin_dsn: str, scale: Scale) -> dict[str, Any]:
    """Everything through the superuser (RLS does not apply); returns what the scenarios need."""
    started = time.perf_counter()
    pw_hash = passwords.Passwords(PasswordHashing()).hasher.hash(PASSWORD)
    n, u, lpo = scale.organizations, scale.users_per_org, scale.licenses_per_org
    rest = scale.projects - scale.big_org_projects
    with psycopg.connect(admin_dsn) as conn:
        conn.execute("set synchronous_commit = off")
        _step(
            conn,
            f"{n:,} organizations",
            "insert into organizations (id, name, slug) "
            "select md5('org-' || i)::uuid, 'Bench Org ' || i, 'bench-org-' || i "
            "from generate_series(1, %s) as i",
            (n,),
        )
        _step(
            conn,
            f"{n * u:,} users",
            "insert into users (id, organization_id, email, full_name, role, password_hash) "
            "select md5('user-' || i || '-' || j)::uuid, md5('org-' || i)::uuid, "
            "case when j = 1 then 'owner@org' || i || '.bench.example' "
            "     else 'user' || j || '@org' || i || '.bench.example' end, "
            "'Bench User ' || i || '-' || j, "
            "(case when j = 1 then 'OWNER' when j = 2 then 'ADMIN' else 'MEMBER' end)::user_role, "
            "%s from generate_series(1, %s) as i, generate_series(1, %s) as j",
            (pw_hash, n, u),
        )
        _step(
            conn,
            "organization owners",
            "update organizations set owner_id = md5('user-' || substr(slug, 11) || '-1')::uuid "
            "where slug like 'bench-org-%%'",
        )
        _step(
            conn,
            f"{n * lpo:,} licenses",
            "insert into licenses (organization_id, name, key_prefix, key_digest, tier, seats, "
            "features) "
            "select md5('org-' || i)::uuid, 'License ' || k, "
            "left('cdt_live_bench_' || i || '_' || k, 12), "
            "sha256(convert_to('cdt_live_bench_' || i || '_' || k, 'UTF8')), "
            "(array['FREE','PRO','ENTERPRISE'])[1 + (i + k) %% 3]::license_tier, 10, "
            "array['sync','offline'] "
            "from generate_series(1, %s) as i, generate_series(1, %s) as k",
            (n, lpo),
        )
        _step(
            conn,
            f"{len(HUGE_KEYS)} licenses with 100,000 seats",
            "insert into licenses (organization_id, name, key_prefix, key_digest, tier, seats) "
            "select md5('org-2')::uuid, 'Huge ' || h, left('cdt_live_bench_huge_' || h, 12), "
            "sha256(convert_to('cdt_live_bench_huge_' || h, 'UTF8')), 'ENTERPRISE', 100000 "
            "from generate_series(1, %s) as h",
            (len(HUGE_KEYS),),
        )
        # Activations keyed by (org i, license k): fingerprint "bench-fingerprint-i-k".
        _step(
            conn,
            f"{n * lpo:,} activations (fingerprint bench-fingerprint-<org>-<license>)",
            "insert into license_activations (organization_id, license_id, fingerprint_digest, "
            "hostname) "
            "select l.organization_id, l.id, "
            "sha256(convert_to('bench-fingerprint-' || i || '-' || k, 'UTF8')), "
            "'bench-host' "
            "from generate_series(1, %s) as i cross join generate_series(1, %s) as k "
            "join licenses l on l.key_digest = "
            "  sha256(convert_to('cdt_live_bench_' || i || '_' || k, 'UTF8'))",
            (n, lpo),
        )
        _step(
            conn,
            f"{scale.big_org_projects:,} projects in the big organization",
            "insert into projects (organization_id, name, description, created_by, metadata, "
            "created_at, updated_at) "
            "select md5('org-1')::uuid, 'Project ' || p, 'Benchmark project number ' || p, "
            "md5('user-1-1')::uuid, jsonb_build_object('n', p), "
            "now() - p * interval '1 second', now() - p * interval '1 second' "
            "from generate_series(1, %s) as p",
            (scale.big_org_projects,),
        )
        if rest > 0 and n > 1:
            per = max(1, -(-rest // (n - 1)))  # rounded up: at least `projects` in all
            _step(
                conn,
                f"{per * (n - 1):,} projects in the other {n - 1:,} organizations",
                "insert into projects (organization_id, name, description, created_by, metadata, "
                "created_at, updated_at) "
                "select md5('org-' || i)::uuid, 'Project ' || p, 'Benchmark project ' || p, "
                "md5('user-' || i || '-1')::uuid, jsonb_build_object('n', p), "
                "now() - p * interval '1 second', now() - p * interval '1 second' "
                "from generate_series(2, %s) as i, generate_series(1, %s) as p",
                (n, per),
            )
        conn.autocommit = True
        t = time.perf_counter()
        print("  load: VACUUM ANALYZE ...", end="", flush=True)
        conn.execute("vacuum analyze")
        print(f" {time.perf_counter() - t:.1f}s", flush=True)
        counts = {
            table: _count(conn, table)
            for table in ("organizations", "users", "licenses", "license_activations", "projects")
        }
    elapsed = time.perf_counter() - started
    print(f"  loaded {counts} in {elapsed:.1f}s", flush=True)
    return {"scale": asdict(scale), "counts": counts, "load_seconds": round(elapsed, 1)}


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def start_database(workdir: Path) -> embedded.Cluster:
    cluster = embedded.start(workdir / "pgdata")
    cluster.ensure_database()
    migrations.apply(cluster.admin_dsn())
    return cluster
