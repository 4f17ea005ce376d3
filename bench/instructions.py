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
import time
from pathlib import Path
from typing import Any

import httpx

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


def run(n: int, scenarios: dict[str, list[str]], served: bool = False) -> dict[str, dict[str, int]]:
    """{app: {scenario: instructions per request}} over small-scale data: in process (direct
    ASGI calls), or `served` (each app behind its own uvicorn, one worker, HTTP requests)."""
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
        how = "served" if served else "in process"
        for app_name, names in scenarios.items():
            for name in names:
                if served:
                    count = _count_served(workdir, env, app_name, name, n, ctx)
                else:
                    count = _count(workdir, toggle, app_name, name, n)
                out.setdefault(app_name, {})[name] = count
                print(f"  {app_name:10} {name:26} {count:>12,} instructions/request, {how} (n={n})")
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


_PEER = ["{python}", "-m", "bench.fastapi_peer", "--workers", "1", "--port", "{port}"]
SERVED_COMMANDS = {
    "product": ["{bin}/coditect-cloud", "serve", "--workers", "1", "--port", "{port}"],
    "fastapi": _PEER,
    "fastapi+rl": [*_PEER, "--rate-limit"],
    "floor": ["{python}", "-m", "bench.floor", "--workers", "1", "--port", "{port}"],
}


def _count_served(
    workdir: Path, env: dict[str, str], app_name: str, scenario: str, n: int, ctx: dict[str, Any]
) -> int:
    """The app served by uvicorn under callgrind: the HTTP parsing, the ASGI server and the
    response's headers count too. Counting is zeroed after a warm-up and dumped after n
    sequential requests (callgrind_control), so start-up and shutdown are not counted."""
    port = servers.free_port()
    command = [
        part.format(bin=servers.VENV_BIN, python=sys.executable, port=port)
        for part in SERVED_COMMANDS[app_name]
    ]
    out = workdir / f"served-{app_name.replace('+', '-')}-{scenario}"
    # The product's outbox poll runs every 2 s: under callgrind a request takes ~40x longer,
    # so the poll would be counted 40x over; at real speed it is ~1 poll per 4,000 requests.
    served_env = {**env, "MAIL_POLL_INTERVAL_MS": "600000"}
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *command],
        env=served_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_served(base, proc)
        request = inprocess.requests_for(ctx)[scenario]
        with httpx.Client(base_url=base, timeout=120) as client:
            for i in range(100):
                _served_call(client, request(i))
            subprocess.run(
                ["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True
            )
            for i in range(n):
                _served_call(client, request(i))
            subprocess.run(
                ["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True
            )
        dumped = Path(f"{out}.{proc.pid}.1").read_text()
        found = SUMMARY.search(dumped)
        if found is None:
            raise RuntimeError(f"no summary in callgrind's dump of {app_name} {scenario}")
        return int(found[1]) // n
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


SUMMARY = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def _wait_served(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600  # imports under callgrind take a minute or two
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server under callgrind exited with {proc.returncode}")
        try:
            httpx.get(base + "/api/v1/projects", timeout=10)
            return
        except httpx.HTTPError:
            time.sleep(1)
    raise RuntimeError("the server under callgrind did not start")


def _served_call(client: httpx.Client, request: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {request['token']}"} if request.get("token") else {}
    response = client.request(
        request["method"],
        request["path"] + (f"?{request['query']}" if request.get("query") else ""),
        json=request.get("body"),
        headers=headers,
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"{request['path']}: {response.status_code} {response.text[:200]}")


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

    # The event loop every server here runs on (uvicorn picks uvloop): the stdlib loop spends
    # Python instructions on each wake-up, per database round trip, that no server pays.
    try:
        import uvloop
    except ImportError:
        asyncio.run(go())
    else:
        uvloop.run(go())


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        app_name, scenario, n, workdir, toggle = argv[1:6]
        child(app_name, scenario, int(n), Path(workdir), Path(toggle))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench instructions")
    parser.add_argument("--n", type=int, default=200, help="measured requests per scenario")
    parser.add_argument("--scenarios", help="comma-separated; default: the hot ones")
    parser.add_argument(
        "--served",
        action="store_true",
        help="count each app behind uvicorn (HTTP included), not by direct ASGI calls",
    )
    args = parser.parse_args(argv)
    scenarios = DEFAULT_SCENARIOS
    if args.scenarios:
        wanted = args.scenarios.split(",")
        scenarios = {
            app: [s for s in wanted if s in names] for app, names in DEFAULT_SCENARIOS.items()
        }
    run(args.n, scenarios, served=args.served)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
