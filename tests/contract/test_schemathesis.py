"""Schemathesis against a running server: every check, authenticated as a signed-up user."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import spec
from app.resolver import handler_name
from tests.app.test_serve import free_port, stop, wait_ready
from tests.conftest import TestDatabase

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# These end the session the run is authenticated with; tests/api covers them.
SESSION_ENDING = ["logout", "deleteOrganization"]
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30")


def stubbed_operations() -> list[str]:
    """Operations whose issue has not landed still answer 501 from handlers/_stub.py."""
    stubbed = []
    for _path, _method, op in spec.operations(spec.load()):
        module, _, function = handler_name(op["tags"][0], op["operationId"]).rpartition(".")
        handler = getattr(importlib.import_module(module), function)
        if "not_implemented()" in inspect.getsource(handler):
            stubbed.append(op["operationId"])
    return stubbed


@pytest.fixture(scope="module")
def server(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env |= {
        "DATABASE_URL": database.app_dsn,
        "DATABASE_SYSTEM_URL": database.system_dsn,
        "CODITECT_DATA_DIR": str(tmp_path_factory.mktemp("st-data")),
        "CODITECT_VALIDATE_RESPONSES": "true",
        "RATE_LIMIT_ANONYMOUS": "1000000/minute",
        "RATE_LIMIT_STANDARD": "1000000/minute",
        "LOG_LEVEL": "warning",
    }
    log = tmp_path_factory.mktemp("st-log") / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    print(f"server log: {log}")
    try:
        wait_ready(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def run_schemathesis(
    document: dict, base_url: str, tmp: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    path = tmp / f"spec-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(document))
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(path),
        "--url", base_url,
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", MAX_EXAMPLES,
        "--seed", "20261125",
        *extra,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )


def test_service_endpoints_pass_every_check(server: str, tmp_path: Path) -> None:
    _api, service = spec.split(spec.load())
    result = run_schemathesis(service, server + "/", tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]


def test_api_operations_pass_every_check(server: str, tmp_path: Path) -> None:
    signup = httpx.post(
        f"{server}/api/v1/auth/signup",
        json={
            "email": f"fuzz-{uuid.uuid4().hex[:8]}@example.test",
            "password": "fuzzing password 1",
            "full_name": "Fuzz Tester",
            "organization_name": "Fuzzing Org",
        },
    )
    assert signup.status_code == 201, signup.text
    token = signup.json()["tokens"]["access_token"]
    api, _service = spec.split(spec.load())
    excluded = [*SESSION_ENDING, *stubbed_operations()]
    flags = [flag for op in excluded for flag in ("--exclude-operation-id", op)]
    result = run_schemathesis(
        api, server + "/api/v1", tmp_path, "-H", f"Authorization: Bearer {token}", *flags
    )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Tested:" in result.stdout
