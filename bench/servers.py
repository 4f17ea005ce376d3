"""Product, FastAPI peer and floor servers as subprocesses; CPU and RSS of them and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(app_dsn: str, system_dsn: str, data_dir: Path) -> dict[str, str]:
    limit = "100000000/minute"
    return dict(
        os.environ,
        DATABASE_URL=app_dsn,
        DATABASE_SYSTEM_URL=system_dsn,
        CODITECT_DATA_DIR=str(data_dir),
        RATE_LIMIT_ANONYMOUS=limit,
        RATE_LIMIT_STANDARD=limit,
        RATE_LIMIT_ENTERPRISE=limit,
        CODITECT_VALIDATE_RESPONSES="false",
        # The longest lifetime allowed: the benchmark's token must outlive a run of rounds
        # (15 minutes, the default, ran out midway through a loaded VM's runs).
        ACCESS_TOKEN_TTL_SECONDS="3600",  # noqa: S106 (a lifetime, not a secret)
        LOG_LEVEL="warning",
    )


class Server:
    """A server process tree (uvicorn supervisor + workers)."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, ready: str, workers: int
    ):
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.base + ready, timeout=2).status_code < 500:
                    self._wait_for_listeners(workers, deadline)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{name} did not start on port {port}")

    def _wait_for_listeners(self, workers: int, deadline: float) -> None:
        """The first worker up answers readiness; connections opened before the others listen
        would all stay with it (each worker has its own SO_REUSEPORT socket on Linux)."""
        while self._listening_pids() < workers and time.monotonic() < deadline:
            time.sleep(0.2)

    def _listening_pids(self) -> int:
        pids = {p.pid for p in self.processes()}
        return len(
            {
                c.pid
                for c in psutil.net_connections("tcp")
                if c.pid in pids and c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
            }
        )

    def processes(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def worker_rss_mb(self) -> list[float]:
        parent = psutil.Process(self.proc.pid)
        out = []
        for child in parent.children(recursive=True):
            try:
                # uvicorn's multiprocess workers; skip the resource tracker and such.
                if "multiprocessing.resource_tracker" in " ".join(child.cmdline()):
                    continue
                out.append(round(child.memory_info().rss / 2**20, 1))
            except psutil.NoSuchProcess:
                pass
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_product(env: dict[str, str], workers: int) -> Server:
    port = free_port()
    cmd = [
        str(VENV_BIN / "coditect-cloud"),
        "serve",
        "--workers",
        str(workers),
        "--port",
        str(port),
    ]
    return Server("product", cmd, env, port, "/healthz", workers)


def start_floor(env: dict[str, str], workers: int) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.floor", "--workers", str(workers), "--port", str(port)]
    return Server("floor", cmd, env, port, "/api/v1/projects", workers)


def start_peer(env: dict[str, str], workers: int, rate_limited: bool = False) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.fastapi_peer", "--workers", str(workers)]
    cmd += ["--port", str(port), *(["--rate-limit"] if rate_limited else [])]
    name = "fastapi+rl" if rate_limited else "fastapi"
    return Server(name, cmd, env, port, "/api/v1/projects", workers)


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


class CpuMeter:
    """CPU seconds used by the server tree and by PostgreSQL between start() and stop()."""

    def __init__(self, server: Server, pgdata: Path):
        self.server = server
        self.pgdata = pgdata

    def start(self) -> None:
        self._m0 = machine_busy_seconds()
        self._s0 = cpu_seconds(self.server.processes())
        self._p0 = cpu_seconds(postgres_processes(self.pgdata))

    def stop(self) -> dict[str, Any]:
        s1 = cpu_seconds(self.server.processes())
        p1 = cpu_seconds(postgres_processes(self.pgdata))
        # Backends that started during the run count from zero; ones that exited are lost.
        server = sum(v - self._s0.get(k, 0.0) for k, v in s1.items())
        pg = sum(v - self._p0.get(k, 0.0) for k, v in p1.items())
        machine = machine_busy_seconds() - self._m0
        return {
            "server_cpu_s": round(server, 2),
            "postgres_cpu_s": round(pg, 2),
            # Everything else busy on the machine meanwhile: the load generator, and any
            # other work sharing the cores (which makes the run's numbers unreliable).
            "other_cpu_s": round(machine - server - pg, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }


def machine_busy_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def wait_until_quiet(max_s: float = 15.0, window_s: float = 0.5, busy_cores: float = 0.3) -> float:
    """Waits (at most `max_s`) until the machine is quiet: under `busy_cores` busy over a
    `window_s` window. A run that starts while the last one's work is still draining (the
    logins a server keeps hashing after wrk stops: ~1 s on two cores) measured that work too:
    the first validation run after the product's login scenario had twice its p99. Returns
    the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < max_s:
        before = machine_busy_seconds()
        time.sleep(window_s)
        if (machine_busy_seconds() - before) / window_s < busy_cores:
            break
    return round(time.monotonic() - started, 2)
