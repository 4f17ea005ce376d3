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
import psycopg
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
# Ends every other session of the run's user (the spare one revokeSession is given) and
# changes the password the examples log in with: it runs on its own, after the rest.
RUN_LAST = ["changePassword"]
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


def example_body(path: str) -> dict[str, Any]:
    body = spec.load()["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    value: dict[str, Any] = next(iter(body["examples"].values()))["value"]
    return value


def example_user_id(operation_id: str) -> str:
    for _path, _method, op in spec.operations(spec.load()):
        if op["operationId"] == operation_id:
            (parameter,) = [p for p in op["parameters"] if p.get("name") == "invited_user_id"]
            return str(parameter["example"])
    raise LookupError(operation_id)


def state_for_the_run(server: str, database: TestDatabase, alice: dict[str, Any]) -> dict[str, str]:
    """What the operations on server state need to succeed once, made from the spec's own
    examples so the examples phase reaches their success path: a spare session of alice's
    (given as a parameter), invited users with the example ids of resendInvitation and
    revokeInvitation (a path parameter of its own name: Schemathesis feeds one operation's
    examples to every parameter of that name, and deleteUser would delete the user first),
    and the example reset, invitation and refresh tokens stored as digests."""
    api = f"{server}/api/v1"
    headers = {"Authorization": f"Bearer {alice['tokens']['access_token']}"}
    httpx.post(f"{api}/auth/login", json=login_example()).raise_for_status()
    sessions = httpx.get(f"{api}/auth/sessions", headers=headers).json()["data"]
    spare = next(s["id"] for s in sessions if not s["current"])
    body = {"email": f"inv-{uuid.uuid4().hex[:8]}@example.test", "full_name": "I", "role": "GUEST"}
    response = httpx.post(f"{api}/users", json=body, headers=headers)
    response.raise_for_status()
    accepting = response.json()["id"]
    carol = signup(server, f"carol-{uuid.uuid4().hex[:8]}@example.test", "carol's password 1")
    # Not carol's: her password reset ends every session she has.
    dave = signup(server, f"dave-{uuid.uuid4().hex[:8]}@example.test", "dave's password 12")
    org = alice["organization"]["id"]
    with psycopg.connect(database.superuser_dsn, autocommit=True) as conn:
        for operation_id in ("resendInvitation", "revokeInvitation"):
            conn.execute(
                "insert into users (id, organization_id, email, full_name, role, status)"
                " values (%s, %s, %s, 'Invited', 'GUEST', 'INVITED')",
                (example_user_id(operation_id), org, f"{operation_id}@example.test"),
            )
        conn.execute(
            "update account_tokens set token_digest = sha256(%s::bytea) where user_id = %s",
            (example_body("/auth/invitation/accept")["token"].encode(), accepting),
        )
        conn.execute(
            "insert into account_tokens (organization_id, user_id, purpose, token_digest,"
            " expires_at) values (%s, %s, 'password_reset', sha256(%s::bytea),"
            " now() + interval '1 hour')",
            (
                carol["organization"]["id"],
                carol["user"]["id"],
                example_body("/auth/password/reset/confirm")["token"].encode(),
            ),
        )
        conn.execute(
            "insert into sessions (organization_id, user_id, refresh_digest, expires_at)"
            " values (%s, %s, sha256(%s::bytea), now() + interval '1 day')",
            (
                dave["organization"]["id"],
                dave["user"]["id"],
                example_body("/auth/refresh")["refresh_token"].encode(),
            ),
        )
    return {"revokeSession": f'session_id = "{spare}"'}


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
    tmp: Path, tokens: dict[str, str], organization_id: str, fixed: dict[str, str]
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
        + "".join(
            f'\n[[operations]]\ninclude-operation-id = ["{op}"]\nparameters = {{ {value} }}\n'
            for op, value in fixed.items()
        )
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
    document: dict[str, Any],
    base_url: str,
    tmp: Path,
    *extra: str,
    config: Path | None = None,
    phases: str = "examples,coverage,fuzzing,stateful",
) -> subprocess.CompletedProcess[str]:
    path = tmp / f"spec-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(document))
    command = [
        sys.executable, "-m", "schemathesis.cli",
        *(["--config-file", str(config)] if config else []),
        "run", str(path),
        "--url", base_url,
        "--checks", "all",
        "--phases", phases,
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


def test_api_operations_pass_every_check(
    server: str, database: TestDatabase, tmp_path: Path
) -> None:
    example = login_example()
    alice = signup(server, example["email"], example["password"])
    bob = signup(server, f"fuzz-{uuid.uuid4().hex[:8]}@example.test", "fuzzing password 1")
    tokens = {"alice": alice["tokens"]["access_token"], "bob": bob["tokens"]["access_token"]}
    fixed = state_for_the_run(server, database, alice)
    license_id = alice["license"]["id"]
    machine_id = activate_machine(server, alice["license"]["license_key"])
    fixed["listLicenseMachines"] = f'license_id = "{license_id}"'
    fixed["deactivateLicenseMachine"] = f'license_id = "{license_id}", machine_id = "{machine_id}"'
    api, _service = spec.split(spec.load())
    excluded = SESSION_ENDING
    config = peers_config(tmp_path, tokens, alice["organization"]["id"], fixed)
    # The last run signs in as a user of its own with the examples' password: the main run may
    # end alice's session (another OWNER it created lets her demote and delete herself).
    erin = signup(server, f"erin-{uuid.uuid4().hex[:8]}@example.test", example["password"])
    last_dir = tmp_path / "last"
    last_dir.mkdir()
    last_tokens = {"erin": erin["tokens"]["access_token"], "bob": tokens["bob"]}
    last_config = peers_config(last_dir, last_tokens, erin["organization"]["id"], {})
    seen: dict[str, set[int]] = {}
    for name, flags, phases, run_config in (
        (
            "run",
            ["--exclude-tag", OPERATOR_TAG]
            + [f for op in excluded + RUN_LAST for f in ("--exclude-operation-id", op)],
            "examples,coverage,fuzzing,stateful",
            config,
        ),
        # No links lead to or from these operations: no stateful phase.
        (
            "last",
            [f for op in RUN_LAST for f in ("--include-operation-id", op)],
            "examples,coverage,fuzzing",
            last_config,
        ),
    ):
        har = tmp_path / f"{name}.har"
        result = run_schemathesis(
            api,
            server + "/api/v1",
            tmp_path,
            "--report", "har", "--report-har-path", str(har),
            *flags,
            config=run_config,
            phases=phases,
        )  # fmt: skip
        print(result.stdout[-3000:])
        assert result.returncode == 0, result.stdout[-6000:]
        for op, statuses in operations_with_2xx(har, api, "/api/v1").items():
            seen.setdefault(op, set()).update(statuses)
    # A run that only ever saw 401s would pass vacuously: every operation must have succeeded.
    tested = [
        op["operationId"]
        for _p, _m, op in spec.operations(api)
        if op["operationId"] not in excluded and OPERATOR_TAG not in op["tags"]
    ]
    assert without_2xx(seen, tested) == {}


def without_2xx(seen: dict[str, set[int]], tested: list[str]) -> dict[str, list[int]]:
    return {
        op: sorted(seen.get(op, set()))
        for op in tested
        if not any(200 <= s < 300 for s in seen.get(op, set()))
    }


def never_succeeded(har: Path, api: dict[str, Any], tested: list[str]) -> dict[str, list[int]]:
    return without_2xx(operations_with_2xx(har, api, "/api/v1"), tested)


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
