"""Load generators: wrk (with Lua) when installed, otherwise asyncio + httpx in this process."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LUA_DIR = Path(__file__).parent / "wrk"


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    token: str | None = None
    new_fingerprints: list[str] | None = None  # license keys: activate a new machine each call
    extra: dict[str, Any] = field(default_factory=dict)


def ensure_wrk(allow_install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not allow_install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print("  wrk: not installed, and not root with apt-get: using the Python load generator")
        return None
    print("  wrk: not installed; running `apt-get install -y wrk` (root) ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    print(f"  wrk: {'installed at ' + found if found else 'install failed: Python fallback'}")
    return found


def run_wrk(
    wrk: str, base: str, sc: Scenario, connections: int, duration: int, threads: int = 1
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_LUA_DIR=str(LUA_DIR), BENCH_RUN=uuid.uuid4().hex[:8])
    if sc.new_fingerprints:
        script = "validate_new.lua"
        env["BENCH_KEYS"] = ",".join(sc.new_fingerprints)
    elif sc.method == "POST":
        script = "post_json.lua"
        env["BENCH_BODY"] = json.dumps(sc.body)
    else:
        script = "get_auth.lua"
        env["BENCH_TOKEN"] = sc.token or ""
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / script),
        base + sc.path,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": raw["status_errors"] + raw["socket_errors"],
        "error_detail": {"status>=400": raw["status_errors"], "socket": raw["socket_errors"]},
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _python_load(
    base: str, sc: Scenario, connections: int, duration: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    run = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {sc.token}"} if sc.token else {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                body = sc.body
                if sc.new_fingerprints:
                    n = next(counter)
                    keys = sc.new_fingerprints
                    body = {
                        "license_key": keys[n % len(keys)],
                        "fingerprint": f"new-py-{run}-{n}",
                        "hostname": "bench-new",
                    }
                t = time.perf_counter()
                try:
                    r = await client.request(sc.method, sc.path, json=body, headers=headers)
                    ok = 200 <= r.status_code < 300
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t)
                errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "tool": "python-httpx",
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=0) * 1000,
        "errors": errors,
        "error_detail": {"non-2xx or failed": errors},
    }


def run_load(
    wrk: str | None, base: str, sc: Scenario, connections: int, duration: int
) -> dict[str, Any]:
    if wrk:
        return run_wrk(wrk, base, sc, connections, duration)
    return asyncio.run(_python_load(base, sc, connections, duration))


async def _healthz_under_logins(
    base: str, login_body: dict[str, Any], logins: int, duration: float
) -> dict[str, Any]:
    stop = time.perf_counter() + duration
    login_count = 0
    login_errors = 0
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:

        async def login_loop() -> None:
            nonlocal login_count, login_errors
            while time.perf_counter() < stop:
                r = await client.post("/api/v1/auth/login", json=login_body)
                login_count += 1
                login_errors += r.status_code != 200

        async def healthz_loop() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30.0) as probe:
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    await probe.get("/healthz")
                    latencies.append(time.perf_counter() - t)
                    await asyncio.sleep(0.005)

        await asyncio.gather(healthz_loop(), *(login_loop() for _ in range(logins)))
    return {
        "concurrent_logins": logins,
        "duration_s": duration,
        "logins": login_count,
        "login_errors": login_errors,
        "healthz_requests": len(latencies),
        "healthz_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "healthz_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "healthz_max_ms": round(max(latencies, default=0) * 1000, 2),
    }


def healthz_under_logins(
    base: str, login_body: dict[str, Any], logins: int = 10, duration: float = 10.0
) -> dict[str, Any]:
    return asyncio.run(_healthz_under_logins(base, login_body, logins, duration))
