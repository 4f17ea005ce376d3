"""Schemathesis against a running server: every check, as a signed-up user, and the operator
API with an operator key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.edge import spec
from tests.conftest import TestDatabase
from tests.servers import UNLIMITED, running_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# These end the session the run is authenticated with; tests/api covers them.
SESSION_ENDING = ["logout", "deleteOrganization"]
# Operator operations take an operator key, not a user's token: run on their own below.
OPERATOR_TAG = "operator"
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30")


@pytest.fixture(scope="module")
def server(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"CODITECT_VALIDATE_RESPONSES": "true", **UNLIMITED}
    with running_server(database, tmp_path_factory.mktemp("st-server"), **env) as url:
        yield url


def signup(server: str, email: str, password: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server}/api/v1/auth/signup",
        json={
            "email": email,
            "password": password,
            "full_name": "Fuzz Tester",
            "organization_name": "Fuzzing Org",
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def login_example() -> dict[str, str]:
    """The spec's first login example: signing it up lets the examples phase log in for real."""
    body = spec.load()["paths"]["/auth/login"]["post"]["requestBody"]["content"]["application/json"]
    example: dict[str, str] = next(iter(body["examples"].values()))["value"]
    return example


def activate_machine(server: str, license_key: str) -> str:
    """A machine holding a seat of the license: the id deactivateLicenseMachine is given."""
    response = httpx.post(
        f"{server}/api/v1/licenses/validate",
        json={"license_key": license_key, "fingerprint": f"fuzz-machine-{uuid.uuid4().hex}"},
    )
    assert response.json()["code"] == "VALID", response.text
    machine_id: str = response.json()["activation"]["id"]
    return machine_id


def peers_config(
    tmp: Path, tokens: dict[str, str], organization_id: str, license_id: str, machine_id: str
) -> Path:
    """schemathesis.toml plus two tenants as peers, for object_level_authorization, and the
    first peer's organization, license and machine ids: any other id is a 404 by design
    (tests/api covers those), so without them those operations would rarely reach their
    success path. (A machine deactivated once answers 200 again, unchanged.)"""
    wfc = tmp / "peers.json"
    wfc.write_text(
        json.dumps(
            {
                "auth": [
                    {
                        "name": name,
                        "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {t}"}],
                    }
                    for name, t in tokens.items()
                ]
            }
        )
    )
    config = tmp / "schemathesis.toml"
    names = ", ".join(f'"{n}"' for n in tokens)
    config.write_text(
        (ROOT / "schemathesis.toml").read_text()
        + f'\n[auth.wfc]\npath = "{wfc}"\nuser = "{next(iter(tokens))}"\npeers = [{names}]\n'
        + '\n[[operations]]\ninclude-operation-id = ["getOrganization", "updateOrganization"]\n'
        + f'parameters = {{ organization_id = "{organization_id}" }}\n'
        + '\n[[operations]]\ninclude-operation-id = ["listLicenseMachines"]\n'
        + f'parameters = {{ license_id = "{license_id}" }}\n'
        + '\n[[operations]]\ninclude-operation-id = ["deactivateLicenseMachine"]\n'
        + f'parameters = {{ license_id = "{license_id}", machine_id = "{machine_id}" }}\n'
    )
    return config


def operations_with_2xx(har: Path, document: dict[str, Any], base: str) -> dict[str, set[int]]:
    """Statuses each operation answered during the run, from Schemathesis' HAR report."""
    routes = []
    for path, method, op in spec.operations(document):
        parts = re.split(r"(\{[^/}]+\})", base + path)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        routes.append((re.compile(f"^{pattern}$"), method.upper(), op["operationId"], "{" in path))
    routes.sort(key=lambda r: r[3])  # fixed paths win over templated ones
    seen: dict[str, set[int]] = {}
    for entry in json.loads(har.read_text())["log"]["entries"]:
        url_path = urlsplit(entry["request"]["url"]).path
        for pattern, method, operation_id, _templated in routes:
            if method == entry["request"]["method"] and pattern.match(url_path):
                seen.setdefault(operation_id, set()).add(entry["response"]["status"])
                break
    return seen


def run_schemathesis(
    document: dict[str, Any], base_url: str, tmp: Path, *extra: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    path = tmp / f"spec-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(document))
    command = [
        sys.executable, "-m", "schemathesis.cli",
        *(["--config-file", str(config)] if config else []),
        "run", str(path),
        "--url", base_url,
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
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
    example = login_example()
    alice = signup(server, example["email"], example["password"])
    bob = signup(server, f"fuzz-{uuid.uuid4().hex[:8]}@example.test", "fuzzing password 1")
    tokens = {"alice": alice["tokens"]["access_token"], "bob": bob["tokens"]["access_token"]}
    api, _service = spec.split(spec.load())
    excluded = SESSION_ENDING
    flags = [flag for op in excluded for flag in ("--exclude-operation-id", op)]
    har = tmp_path / "run.har"
    result = run_schemathesis(
        api,
        server + "/api/v1",
        tmp_path,
        "--report", "har", "--report-har-path", str(har),
        "--exclude-tag", OPERATOR_TAG,
        *flags,
        config=peers_config(
            tmp_path,
            tokens,
            alice["organization"]["id"],
            alice["license"]["id"],
            activate_machine(server, alice["license"]["license_key"]),
        ),
    )  # fmt: skip
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:]
    # A run that only ever saw 401s would pass vacuously: every operation must have succeeded.
    tested = [
        op["operationId"]
        for _p, _m, op in spec.operations(api)
        if op["operationId"] not in excluded and OPERATOR_TAG not in op["tags"]
    ]
    assert never_succeeded(har, api, tested) == {}


def never_succeeded(har: Path, api: dict[str, Any], tested: list[str]) -> dict[str, list[int]]:
    seen = operations_with_2xx(har, api, "/api/v1")
    return {
        op: sorted(seen.get(op, set()))
        for op in tested
        if not any(200 <= s < 300 for s in seen.get(op, set()))
    }


def operator_config(
    tmp: Path, organization_id: str, licenses: dict[str, str], machine_id: str
) -> Path:
    """schemathesis.toml plus the ids the operator operations act on: a random id is a 404 by
    design (tests/api covers those), and each status change gets a license it can make once
    (revoked is final, so suspend and revoke must not share one); the machine is one of the
    license of deactivateOperatorLicenseMachine."""
    config = tmp / "schemathesis-operator.toml"
    text = (ROOT / "schemathesis.toml").read_text()
    text += '\n[[operations]]\ninclude-operation-id = ["issueOperatorLicense"]\n'
    text += f'parameters = {{ organization_id = "{organization_id}" }}\n'
    for operation_id, license_id in licenses.items():
        text += f'\n[[operations]]\ninclude-operation-id = ["{operation_id}"]\n'
        extra = (
            f', machine_id = "{machine_id}"'
            if operation_id == "deactivateOperatorLicenseMachine"
            else ""
        )
        text += f'parameters = {{ license_id = "{license_id}"{extra} }}\n'
    config.write_text(text)
    return config


def test_operator_operations_pass_every_check(
    server: str, database: TestDatabase, tmp_path: Path
) -> None:
    from tests.api.test_operator import new_key

    key = new_key(database, "licenses:write")
    headers = {"Authorization": f"Bearer {key['key']}"}
    owner = signup(server, f"fuzz-op-{uuid.uuid4().hex[:8]}@example.test", "fuzzing password 2")
    org_id = owner["organization"]["id"]

    keys: dict[str, str] = {}

    def license_for(operation_id: str) -> str:
        response = httpx.post(
            f"{server}/api/v1/operator/organizations/{org_id}/licenses",
            json={"tier": "PRO", "seats": 5, "name": operation_id},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        keys[operation_id] = response.json()["license_key"]
        license_id: str = response.json()["id"]
        return license_id

    licenses = {
        op: license_for(op)
        for op in (
            "getOperatorLicense",
            "updateOperatorLicense",
            "suspendOperatorLicense",
            "reinstateOperatorLicense",
            "revokeOperatorLicense",
            "listOperatorLicenseMachines",
            "deactivateOperatorLicenseMachine",
        )
    }
    activate_machine(server, keys["listOperatorLicenseMachines"])
    machine_id = activate_machine(server, keys["deactivateOperatorLicenseMachine"])
    suspended = httpx.post(
        f"{server}/api/v1/operator/licenses/{licenses['reinstateOperatorLicense']}/suspend",
        headers=headers,
    )
    assert suspended.status_code == 200, suspended.text
    api, _service = spec.split(spec.load())
    har = tmp_path / "operator.har"
    result = run_schemathesis(
        api,
        server + "/api/v1",
        tmp_path,
        "--report", "har", "--report-har-path", str(har),
        "--include-tag", OPERATOR_TAG,
        "--header", f"Authorization: Bearer {key['key']}",
        config=operator_config(tmp_path, org_id, licenses, machine_id),
    )  # fmt: skip
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:]
    operations = spec.operations(api)
    tested = [op["operationId"] for _p, _m, op in operations if OPERATOR_TAG in op["tags"]]
    assert len(tested) == 10
    assert never_succeeded(har, api, tested) == {}
