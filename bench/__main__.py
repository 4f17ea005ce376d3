"""python -m bench run [--scale small|medium|full] [--connections 32,64] [--duration 20]

python -m bench instructions [--n 200] [--scenarios ...]: instructions per request (valgrind)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import data, inprocess, instructions, load, report, servers, sqlchecks

PRODUCT_SCENARIOS = [
    "validate_activated",
    "validate_new_fingerprint",
    "list_projects_page1",
    "list_projects_deep",
    "get_current_user",
    "login",
]
# The FastAPI peer (with and without its rate limiter) and the floor run every hot scenario;
# login is argon2id, the same work whatever the framework.
PEER_SCENARIOS = [
    "validate_activated",
    "validate_new_fingerprint",
    "list_projects_page1",
    "list_projects_deep",
    "get_current_user",
]
PEERS = ["fastapi", "fastapi+rl", "floor"]
RESULTS_DIR = Path(__file__).parent / "results"


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def prepare_context(base: str, admin_dsn: str, data_dir: Path, scale: data.Scale) -> dict[str, Any]:
    from app.auth.keys import KeySet
    from app.licensing.certificates import fingerprint_digest
    from app.licensing.keys import key_digest
    from app.rules.pagination import CursorCodec

    login_body = {"email": data.BIG_ORG_OWNER, "password": data.PASSWORD}
    r = httpx.post(base + "/api/v1/auth/login", json=login_body, timeout=30)
    r.raise_for_status()
    token = r.json()["access_token"]
    claims = _claims(token)
    # The deep cursor: the server signs cursors with a key derived from its token key, which
    # lives in CODITECT_DATA_DIR; built here for the row at deep_offset and checked below.
    with psycopg.connect(admin_dsn) as conn:
        row = conn.execute(
            "select created_at, id from projects where organization_id = %s "
            "and deleted_at is null order by created_at desc, id desc offset %s limit 1",
            (data.org_id(1), scale.deep_offset - 1),
        ).fetchone()
    assert row is not None
    keys = KeySet.load(data_dir, None, None)
    cursor = CursorCodec(keys.cursor_secret()).encode(
        "projects", _uuid(claims["org"]), row[0], row[1]
    )
    check = httpx.get(
        base + "/api/v1/projects",
        params={"limit": 50, "cursor": cursor},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    check.raise_for_status()
    print(
        f"  deep page: cursor after row {scale.deep_offset:,} answers "
        f"{len(check.json()['data'])} rows"
    )
    return {
        "token": token,
        "org_id": claims["org"],
        "user_id": claims["sub"],
        "session_id": claims["sid"],
        "deep_cursor": cursor,
        "deep_after": (row[0], row[1]),
        "login_body": login_body,
        "validate_body": {
            "license_key": data.HOT_KEY,
            "fingerprint": data.HOT_FINGERPRINT,
            "hostname": "bench-host",
        },
        "huge_keys": data.HUGE_KEYS,
        "hot_key_digest": key_digest(data.HOT_KEY),
        "hot_fpr": fingerprint_digest(data.HOT_FINGERPRINT),
    }


def _uuid(text: str) -> Any:
    import uuid

    return uuid.UUID(text)


def scenarios(ctx: dict[str, Any]) -> dict[str, load.Scenario]:
    return {
        "validate_activated": load.Scenario(
            "validate_activated", "POST", "/api/v1/licenses/validate", body=ctx["validate_body"]
        ),
        "validate_new_fingerprint": load.Scenario(
            "validate_new_fingerprint",
            "POST",
            "/api/v1/licenses/validate",
            new_fingerprints=ctx["huge_keys"],
        ),
        "list_projects_page1": load.Scenario(
            "list_projects_page1", "GET", "/api/v1/projects?limit=50", token=ctx["token"]
        ),
        "list_projects_deep": load.Scenario(
            "list_projects_deep",
            "GET",
            f"/api/v1/projects?limit=50&cursor={ctx['deep_cursor']}",
            token=ctx["token"],
        ),
        "get_current_user": load.Scenario(
            "get_current_user", "GET", "/api/v1/auth/me", token=ctx["token"]
        ),
        "login": load.Scenario("login", "POST", "/api/v1/auth/login", body=ctx["login_body"]),
    }


def drive_one(
    server: servers.Server,
    pgdata: Path,
    scenario: load.Scenario,
    wrk: str | None,
    connections: int,
    duration: int,
) -> dict[str, Any]:
    settled = servers.wait_until_quiet()
    meter = servers.CpuMeter(server, pgdata)
    meter.start()
    r = load.run_load(wrk, server.base, scenario, connections, duration)
    r.update(meter.stop())
    r["settled_s"] = settled
    print(
        f"  {server.name:10} {scenario.name:26} @{connections:<3} {r['rps']:>9.1f} rps  "
        f"p50 {r['p50_ms']:.2f}  p99 {r['p99_ms']:.2f} ms  errors {r['errors']}  "
        f"cpu server {r['server_cpu_s']}s postgres {r['postgres_cpu_s']}s "
        f"other {r['other_cpu_s']}s",
        flush=True,
    )
    return r


def drive_rounds(
    servers_by_name: dict[str, servers.Server],
    pgdata: Path,
    ctx: dict[str, Any],
    wrk: str | None,
    conns: list[int],
    duration: int,
    rounds: int,
) -> dict[str, Any]:
    """`rounds` rounds; in each, every scenario on the product and then, right after, on each
    peer (the order of the peers rotating from round to round): this machine's speed drifts
    over minutes, so ratios are taken from runs made side by side. Each figure kept is the
    run with the median requests/s of its rounds; every round's requests/s is kept beside it."""
    table = scenarios(ctx)
    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for round_no in range(rounds):
        print(f"  -- round {round_no + 1} of {rounds}", flush=True)
        peers = PEERS[round_no % len(PEERS) :] + PEERS[: round_no % len(PEERS)]
        for name in PRODUCT_SCENARIOS:
            for c in conns:
                for server_name in ["product", *peers]:
                    if server_name != "product" and name not in PEER_SCENARIOS:
                        continue
                    r = drive_one(
                        servers_by_name[server_name], pgdata, table[name], wrk, c, duration
                    )
                    runs.setdefault(server_name, {}).setdefault(name, {}).setdefault(
                        str(c), []
                    ).append(r)
    out: dict[str, Any] = {}
    for server_name, by_scenario in runs.items():
        for name, by_conns in by_scenario.items():
            for level, results in by_conns.items():
                ordered = sorted(results, key=lambda r: r["rps"])
                median = dict(ordered[(len(ordered) - 1) // 2])
                median["rounds_rps"] = [r["rps"] for r in results]
                median["errors"] = sum(r["errors"] for r in results)
                out.setdefault(server_name, {}).setdefault(name, {})[level] = median
    return out


def ratios(http: dict[str, Any], conns: list[int]) -> dict[str, dict[str, float]]:
    """product requests/s over each peer's, per scenario and connection count (medians)."""
    out: dict[str, dict[str, float]] = {}
    for name in PEER_SCENARIOS:
        for c in conns:
            mine = http["product"][name][str(c)]["rps"]
            out[f"{name}@{c}"] = {
                f"product/{peer}": round(mine / max(http[peer][name][str(c)]["rps"], 0.001), 3)
                for peer in PEERS
            }
    return out


def run(args: argparse.Namespace) -> int:
    scale = data.SCALES[args.scale]
    conns = [int(c) for c in args.connections.split(",")]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="coditect-bench-"))
    results: dict[str, Any] = {
        "config": {
            "command": " ".join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]]),
            "scale": scale.__dict__,
            "connections": conns,
            "duration_s": args.duration,
            "workers": args.workers,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "started": stamp,
        }
    }
    out_dir = Path(args.output) if args.output else RESULTS_DIR
    print(f"[1/7] database: fresh embedded PostgreSQL in {workdir}", flush=True)
    cluster = data.start_database(workdir)
    product = None
    peers: dict[str, servers.Server] = {}
    try:
        admin = cluster.admin_dsn()
        app_dsn, system_dsn = cluster.dsn("coditect_app"), cluster.dsn("coditect_system")
        pgdata = workdir / "pgdata"
        results["data"] = data.load(admin, scale)
        env = servers.server_env(app_dsn, system_dsn, workdir / "data")
        wrk = None if args.python_load else load.ensure_wrk(allow_install=not args.no_install)
        results["config"]["load_generator"] = wrk or "python-httpx (fallback)"
        print(f"[2/7] product: coditect-cloud serve --workers {args.workers}", flush=True)
        product = servers.start_product(env, args.workers)
        ctx = prepare_context(product.base, admin, workdir / "data", scale)
        print(
            "[3/7] peers: the FastAPI peer, the same with its `limits` dependency, and the bare"
            " Starlette floor, served like the product",
            flush=True,
        )
        peers["fastapi"] = servers.start_peer(env, args.workers)
        peers["fastapi+rl"] = servers.start_peer(env, args.workers, rate_limited=True)
        peers["floor"] = servers.start_floor(env, args.workers)
        print(
            f"[4/7] load: {results['config']['load_generator']}, {args.duration}s per run, "
            f"{args.rounds} rounds, each scenario on the product then on each peer",
            flush=True,
        )
        results["http"] = drive_rounds(
            {"product": product, **peers}, pgdata, ctx, wrk, conns, args.duration, args.rounds
        )
        results["peer_rss_mb_per_worker"] = {}
        for name, peer in list(peers.items()):
            results["peer_rss_mb_per_worker"][name] = peer.worker_rss_mb()
            peer.stop()
            del peers[name]
        print("[5/7] /healthz under 10 concurrent logins", flush=True)
        results["healthz_under_logins"] = load.healthz_under_logins(
            product.base, ctx["login_body"], 10, min(10.0, float(args.duration))
        )
        print(f"  {results['healthz_under_logins']}")
        results["rss_mb_per_worker"] = product.worker_rss_mb()
        print(f"  RSS per worker after the run: {results['rss_mb_per_worker']} MB")
        product.stop()
        product = None
        results["ratios"] = ratios(results["http"], conns)
        print("[6/7] in-process CPU per request (direct ASGI calls)", flush=True)
        os.environ.update(
            {
                k: v
                for k, v in env.items()
                if k not in os.environ or k.startswith(("DATABASE", "CODITECT", "RATE", "LOG"))
            }
        )
        results["inprocess"] = inprocess_all(env, ctx, args.inprocess_n)
        print("[7/7] RLS on vs off, EXPLAIN (ANALYZE, BUFFERS)", flush=True)
        results["rls"] = sqlchecks.rls_compare(admin, app_dsn, ctx)
        results["explain"] = sqlchecks.explain_hot(app_dsn, ctx)
        for name, plan in results["explain"].items():
            print(f"\n-- {name}\n{plan}")
    finally:
        for s in (product, *peers.values()):
            if s is not None:
                s.stop()
        cluster.stop()
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    main_conns = 32 if 32 in conns else conns[0]
    results["targets"] = report.targets(results, main_conns)
    report.print_tables(results)
    path, png = report.write(results, out_dir, stamp)
    print(f"\nresults: {path}" + (f"\nchart:   {png}" if png else ""))
    return 0


def inprocess_all(env: dict[str, str], ctx: dict[str, Any], n: int) -> dict[str, Any]:
    from app.config import Settings
    from app.main import create_app
    from bench import fastapi_peer, floor

    def product_app() -> Any:
        return create_app(Settings.from_env(env))

    t = time.perf_counter()
    out = {
        "product": asyncio.run(inprocess.run_all(product_app, ctx, PRODUCT_SCENARIOS, n)),
        "fastapi": asyncio.run(inprocess.run_all(fastapi_peer.create_app, ctx, PEER_SCENARIOS, n)),
        "fastapi+rl": asyncio.run(
            inprocess.run_all(fastapi_peer.create_limited_app, ctx, PEER_SCENARIOS, n)
        ),
        "floor": asyncio.run(inprocess.run_all(floor.create_app, ctx, PEER_SCENARIOS, n)),
    }
    for app_name, scen in out.items():
        for name, r in scen.items():
            print(
                f"  {app_name:10} {name:26} {r['cpu_us_per_request']:>8.1f} µs CPU/request "
                f"(n={r['n']}, errors={r['errors']})"
            )
    print(f"  ({time.perf_counter() - t:.0f}s)")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["instructions"]:
        return instructions.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("instructions", help="instructions per request under callgrind (valgrind)")
    r = sub.add_parser("run", help="load data, drive product and floor, write results")
    r.add_argument("--scale", choices=sorted(data.SCALES), default="full")
    r.add_argument("--connections", default="32,64", help="comma-separated, e.g. 32,64")
    r.add_argument("--duration", type=int, default=20, help="seconds per scenario and level")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians kept)")
    r.add_argument("--inprocess-n", type=int, default=2000, help="requests per in-process figure")
    r.add_argument("--python-load", action="store_true", help="use the Python load generator")
    r.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    r.add_argument("--output", help="results directory (default bench/results)")
    r.add_argument("--workdir", help="keep the database here instead of a temporary directory")
    r.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
