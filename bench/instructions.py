"""Instructions per request in process, counted by callgrind: repeatable to a fraction of a percent.

CPU time per request swings by 10-20% from run to run on a shared VM; the number of
instructions the Python process executes for a request does not. Needs valgrind (with its
callgrind.h header) and a C compiler: a six-line helper switches counting on for the measured
requests only, so start-up and warm-up are not counted.
Run: .venv/bin/python -m bench instructions [--n 200] [--scenarios validate_activated,...]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import data, inprocess, servers

HEADER = Path("/usr/include/valgrind/callgrind.h")
TOGGLE_C = """#include <valgrind/callgrind.h>
void count_on(void) {
    CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT;
}
void count_off(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_STOP_INSTRUMENTATION; }
"""
DEFAULT_SCENARIOS = {
    "product": [
        "validate_activated",
        "list_projects_page1",
        "list_projects_deep",
        "get_current_user",
    ],
    "fastapi": [
        "validate_activated",
        "list_projects_page1",
        "list_projects_deep",
        "get_current_user",
    ],
    "fastapi+rl": [
        "validate_activated",
        "list_projects_page1",
        "list_projects_deep",
        "get_current_user",
    ],
    "floor": [
        "validate_activated",
        "list_projects_page1",
        "list_projects_deep",
        "get_current_user",
    ],
}
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def missing_tools() -> list[str]:
    missing = [tool for tool in ("valgrind", "cc") if shutil.which(tool) is None]
    return missing + ([] if HEADER.exists() else [str(HEADER)])


def run(n: int, scenarios: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """{app: {scenario: instructions per request}} over small-scale data."""
    missing = missing_tools()
    if missing:
        needs = ", ".join(missing)
        raise SystemExit(f"bench instructions needs {needs} (apt-get install valgrind gcc)")
    from bench.__main__ import prepare_context

    workdir = Path(tempfile.mkdtemp(prefix="coditect-instructions-"))
    toggle = workdir / "toggle.so"
    (workdir / "toggle.c").write_text(TOGGLE_C)
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", "-o", toggle, workdir / "toggle.c"], check=True
    )
    cluster = data.start_database(workdir)
    try:
        admin = cluster.admin_dsn()
        data.load(admin, data.SCALES["small"])
        app_dsn, system_dsn = cluster.dsn("coditect_app"), cluster.dsn("coditect_system")
        env = servers.server_env(app_dsn, system_dsn, workdir / "data")
        product = servers.start_product(env, 1)
        try:
            ctx = prepare_context(product.base, admin, workdir / "data", data.SCALES["small"])
        finally:
            product.stop()
        keep = ("token", "deep_cursor", "validate_body", "huge_keys", "login_body")
        (workdir / "ctx.json").write_text(json.dumps({k: ctx[k] for k in keep}))
        (workdir / "env.json").write_text(json.dumps(env))
        out: dict[str, dict[str, int]] = {}
        for app_name, names in scenarios.items():
            for name in names:
                count = _count(workdir, toggle, app_name, name, n)
                out.setdefault(app_name, {})[name] = count
                print(f"  {app_name:10} {name:26} {count:>12,} instructions/request (n={n})")
        print_ratios(out)
        return out
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def print_ratios(out: dict[str, dict[str, int]]) -> None:
    """Per scenario, the other app's instructions over the product's: the product's speed
    relative to it, comparable with the requests/s ratios of `bench run` (above 1.0 the
    product does less work per request)."""
    product = out.get("product", {})
    for name, count in product.items():
        ratios = [
            f"product vs {peer} {out[peer][name] / count:.3f}x"
            for peer in ("fastapi", "fastapi+rl", "floor")
            if out.get(peer, {}).get(name)
        ]
        if ratios:
            print(f"  {name:26} instructions " + "  ".join(ratios))


def _count(workdir: Path, toggle: Path, app_name: str, scenario: str, n: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--collect-atstart=no",
        f"--callgrind-out-file={workdir}/callgrind.%p",
        sys.executable,
        "-m",
        "bench.instructions",
        "--child",
        app_name,
        scenario,
        str(n),
        str(workdir),
        str(toggle),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(found[1]) // n


def child(app_name: str, scenario: str, n: int, workdir: Path, toggle: Path) -> None:
    """Runs under callgrind: warm up, then count exactly n requests."""
    ctx = json.loads((workdir / "ctx.json").read_text())
    env = json.loads((workdir / "env.json").read_text())
    os.environ.update(env)
    counter = ctypes.CDLL(str(toggle))

    async def go() -> None:
        if app_name == "product":
            from app.config import Settings
            from app.main import create_app

            app: Any = create_app(Settings.from_env(env))
        elif app_name in ("fastapi", "fastapi+rl"):
            from bench import fastapi_peer

            app = fastapi_peer.create_app(rate_limited=app_name == "fastapi+rl")
        else:
            from bench import floor

            app = floor.create_app()
        request = inprocess.requests_for(ctx)[scenario]
        async with inprocess.Lifespan(app) as life:
            warm = await inprocess.measure(app, life.state, request, 200)
            if warm["errors"]:
                raise RuntimeError(f"{app_name} {scenario}: warm-up requests failed")
            counter.count_on()
            statuses = [(await inprocess.call(app, life.state, **request(i)))[0] for i in range(n)]
            counter.count_off()
        if any(not 200 <= s < 300 for s in statuses):
            raise RuntimeError(f"{app_name} {scenario}: measured requests failed: {statuses}")

    asyncio.run(go())


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        app_name, scenario, n, workdir, toggle = argv[1:6]
        child(app_name, scenario, int(n), Path(workdir), Path(toggle))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench instructions")
    parser.add_argument("--n", type=int, default=200, help="measured requests per scenario")
    parser.add_argument("--scenarios", help="comma-separated; default: the hot ones")
    args = parser.parse_args(argv)
    scenarios = DEFAULT_SCENARIOS
    if args.scenarios:
        wanted = args.scenarios.split(",")
        scenarios = {
            app: [s for s in wanted if s in names] for app, names in DEFAULT_SCENARIOS.items()
        }
    run(args.n, scenarios)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
