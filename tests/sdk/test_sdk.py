"""The generated Python SDK works: openapi-python-client builds it from openapi.yaml without a
single warning, and a consumer drives a real scenario through it against a running server."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest

from app.edge import spec
from tests.conftest import TestDatabase
from tests.servers import UNLIMITED, running_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "coditect_client"
ISSUER = "https://api.coditect.ai"
PASSWORD = "sdk consumer password 1"


class SDK:
    """The generated package, imported from a temporary directory."""

    def __init__(self) -> None:
        self.package: Any = importlib.import_module(PACKAGE)
        self.models: Any = importlib.import_module(f"{PACKAGE}.models")

    def op(self, tag: str, operation_id: str) -> Any:
        """The module of one operation: `api/<tag>/<snake_case operationId>.py`."""
        module: ModuleType = importlib.import_module(f"{PACKAGE}.api.{tag}.{snake(operation_id)}")
        return module

    def client(self, base_url: str, token: str | None = None) -> Any:
        options = {
            "base_url": base_url,
            "raise_on_unexpected_status": True,
            "timeout": httpx.Timeout(30),
        }
        if token is None:
            return self.package.Client(**options)
        return self.package.AuthenticatedClient(token=token, **options)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def generate(out: Path, *source: str) -> Path:
    """openapi-python-client's package for the contract at `source` (`--path FILE` or `--url
    URL`), in out/coditect_client; failing on any warning."""
    config = out / "openapi-python-client.yaml"
    # No post hooks: by default the generator runs `ruff` on its output, and a missing `ruff`
    # on PATH is a warning, which --fail-on-warning would turn into a failure unrelated to the spec.
    config.write_text(
        f"package_name_override: {PACKAGE}\n"
        "project_name_override: coditect-client\n"
        "post_hooks: []\n"
    )
    command = [
        sys.executable, "-m", "openapi_python_client", "generate",
        *source,
        "--config", str(config),
        "--meta", "none",
        "--output-path", str(out / PACKAGE),
        "--fail-on-warning",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=out, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"openapi-python-client failed or warned:\n{output}"
    assert "Warning" not in output, output
    return out / PACKAGE


def files_of(package: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(package)): f.read_bytes()
        for f in sorted(package.rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package generated from openapi.yaml."""
    return generate(tmp_path_factory.mktemp("sdk"), "--path", str(ROOT / "openapi.yaml"))


@pytest.fixture(scope="module")
def sdk(generated: Path) -> Iterator[SDK]:
    out = generated.parent
    sys.path.insert(0, str(out))
    try:
        yield SDK()
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-server")


@pytest.fixture(scope="module")
def server(database: TestDatabase, server_dir: Path) -> Iterator[str]:
    # No SMTP_URL: account mail goes to the server's log (server_dir/server.log).
    env = {"CODITECT_VALIDATE_RESPONSES": "true", "MAIL_POLL_INTERVAL_MS": "100", **UNLIMITED}
    with running_server(database, server_dir, **env) as url:
        yield url


def mailed_token(log: Path, recipient: str, page: str, timeout: float = 30) -> str:
    """The token of the link mailed to `recipient`, read from the log the mail went to."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _before, found, after = log.read_text().partition(f" to {recipient} not sent")
        match = re.search(rf"https?://\S+/{page}\?token=([A-Za-z0-9_-]+)", after)
        if found and match:
            return match.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no {page} mail for {recipient} in {log}")


def parsed(response: Any, expected: type, status: int) -> Any:
    """The typed body of an SDK `Response`, checked to be the model the spec promises."""
    body = response.content.decode(errors="replace")
    assert response.status_code == status, body
    assert isinstance(response.parsed, expected), body
    return response.parsed


def test_every_operation_is_a_module_named_after_its_operation_id(sdk: SDK) -> None:
    for _path, _method, operation in spec.operations(spec.load()):
        module = sdk.op(operation["tags"][0], operation["operationId"])
        for function in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"):
            assert callable(getattr(module, function)), (operation["operationId"], function)
    schemas = spec.load()["components"]["schemas"]
    for name in ("Problem", "SignupResponse", "Me", "Project", "ProjectPage"):
        assert name in schemas
        assert hasattr(sdk.models, name), name


def test_a_consumer_signs_up_pages_projects_and_validates_its_license(
    sdk: SDK, server: str
) -> None:
    m = sdk.models
    api = f"{server}/api/v1"

    # signup: no token; the one time the full license key is shown.
    email = f"sdk-{uuid.uuid4().hex[:10]}@example.test"
    with sdk.client(api) as anonymous:
        response = sdk.op("auth", "signup").sync_detailed(
            client=anonymous,
            body=m.SignupRequest(
                email=email,
                password=PASSWORD,
                full_name="Sam SDK",
                organization_name=f"SDK Org {uuid.uuid4().hex[:6]}",
            ),
        )
    created = parsed(response, m.SignupResponse, 201)
    assert response.headers["Location"].endswith(f"/organizations/{created.organization.id}")
    assert isinstance(created.tokens, m.TokenPair)
    assert created.tokens.token_type == "Bearer"
    assert created.user.role == m.UserRole.OWNER
    issued = created.license_
    assert isinstance(issued, m.IssuedLicense)
    assert issued.tier == m.LicenseTier.FREE
    assert issued.license_key.startswith(issued.key_prefix)

    with sdk.client(api, created.tokens.access_token) as client:
        # me
        me = parsed(sdk.op("auth", "getCurrentUser").sync_detailed(client=client), m.Me, 200)
        assert me.user.id == created.user.id
        assert me.user.email == email
        assert me.organization.id == created.organization.id

        # createProject, several times; each answers 201 with a Location and a typed Project.
        create = sdk.op("projects", "createProject")
        names = [f"sdk-project-{i}" for i in range(5)]
        projects = []
        for i, name in enumerate(names):
            body = m.ProjectCreate(
                name=name,
                description=None if i % 2 else f"Project number {i}",
                metadata=m.Metadata.from_dict({"index": i}),
            )
            response = create.sync_detailed(client=client, body=body)
            project = parsed(response, m.Project, 201)
            assert response.headers["Location"].endswith(f"/projects/{project.id}")
            assert project.name == name
            assert project.description == (None if i % 2 else f"Project number {i}")
            assert project.status == m.ProjectStatus.ACTIVE
            assert project.created_by == created.user.id
            assert project.metadata["index"] == i
            projects.append(project)

        # listProjects: newest first, two a page, following next_cursor to the end. A project
        # created after the first page is newer than every cursor: no page shows it, nothing
        # is duplicated or skipped.
        list_projects = sdk.op("projects", "listProjects")
        first = parsed(list_projects.sync_detailed(client=client, limit=2), m.ProjectPage, 200)
        pages = [first]
        late = parsed(
            create.sync_detailed(client=client, body=m.ProjectCreate(name="sdk-project-late")),
            m.Project,
            201,
        )
        while pages[-1].next_cursor is not None:
            response = list_projects.sync_detailed(
                client=client, limit=2, cursor=pages[-1].next_cursor
            )
            pages.append(parsed(response, m.ProjectPage, 200))
        assert [len(page.data) for page in pages] == [2, 2, 1]
        assert all(isinstance(p, m.Project) for page in pages for p in page.data)
        seen = [p.id for page in pages for p in page.data]
        assert seen == [p.id for p in reversed(projects)]

        response = list_projects.sync_detailed(client=client, limit=100)
        everything = parsed(response, m.ProjectPage, 200)
        assert [p.id for p in everything.data] == [late.id, *seen]
        assert everything.next_cursor is None

        # An error is a typed Problem (application/problem+json), not an exception.
        response = list_projects.sync_detailed(client=client, cursor="not-a-cursor")
        problem = parsed(response, m.Problem, 400)
        assert problem.type_ == "https://problems.coditect.ai/invalid-cursor"
        assert problem.status == 400

    # validateLicense with the key from signup: no token, the key is the credential.
    validate = sdk.op("licenses", "validateLicense")
    fingerprint = f"sdk-machine-{uuid.uuid4().hex}"
    with sdk.client(api) as anonymous:
        if issued.machine_bound:
            response = validate.sync_detailed(
                client=anonymous, body=m.LicenseValidationRequest(license_key=issued.license_key)
            )
            refused = parsed(response, m.LicenseValidationResult, 200)
            assert refused.valid is False
            assert refused.code == m.ValidationCode.FINGERPRINT_REQUIRED
            assert refused.certificate is None
        response = validate.sync_detailed(
            client=anonymous,
            body=m.LicenseValidationRequest(
                license_key=issued.license_key,
                fingerprint=fingerprint,
                hostname="sdk-test.example.test",
                nonce="sdk-nonce-1234",
            ),
        )
    result = parsed(response, m.LicenseValidationResult, 200)
    assert result.valid is True, result.detail
    assert result.code == m.ValidationCode.VALID
    assert result.nonce == "sdk-nonce-1234"
    assert isinstance(result.license_, m.LicenseSummary)
    assert result.license_.id == issued.id
    assert result.license_.tier == m.LicenseTier.FREE
    if issued.machine_bound:
        assert isinstance(result.activation, m.LicenseActivation)
    assert isinstance(result.certificate, str)

    # The certificate verifies offline against the JWKS, fetched through the SDK too (a service
    # endpoint: served at the root, outside /api/v1).
    with sdk.client(server) as root:
        jwks = parsed(sdk.op("service", "getJwks").sync_detailed(client=root), m.Jwks, 200)
    kid = jwt.get_unverified_header(result.certificate)["kid"]
    [key] = [k for k in jwks.keys if k.kid == kid]
    claims = jwt.decode(
        result.certificate,
        jwt.PyJWK(key.to_dict()).key,
        algorithms=["EdDSA"],
        issuer=ISSUER,
        options={"require": ["iss", "sub", "iat", "exp"]},
    )
    assert claims["sub"] == str(issued.id)
    assert claims["org"] == str(created.organization.id)
    assert claims["nonce"] == "sdk-nonce-1234"

    # The laptop is replaced: the OWNER lists the license's machines and deactivates the old
    # one; the new laptop takes the freed seat at once; on uninstall it frees it itself.
    replacement = f"sdk-machine-{uuid.uuid4().hex}"
    with sdk.client(api, created.tokens.access_token) as client:
        listed = parsed(
            sdk.op("licenses", "listLicenseMachines").sync_detailed(issued.id, client=client),
            m.LicenseMachinePage,
            200,
        )
        [old_machine] = listed.data
        assert old_machine.holds_seat is True
        assert old_machine.hostname == "sdk-test.example.test"
        released = parsed(
            sdk.op("licenses", "deactivateLicenseMachine").sync_detailed(
                issued.id, old_machine.id, client=client
            ),
            m.LicenseMachine,
            200,
        )
        assert released.holds_seat is False
    with sdk.client(api) as anonymous:
        response = validate.sync_detailed(
            client=anonymous,
            body=m.LicenseValidationRequest(
                license_key=issued.license_key, fingerprint=replacement
            ),
        )
        taken = parsed(response, m.LicenseValidationResult, 200)
        assert (taken.code, taken.activation.new) == (m.ValidationCode.VALID, True)
        response = sdk.op("licenses", "deactivateLicense").sync_detailed(
            client=anonymous,
            body=m.LicenseDeactivationRequest(
                license_key=issued.license_key, fingerprint=replacement
            ),
        )
        freed = parsed(response, m.LicenseDeactivationResult, 200)
        assert (freed.deactivated, freed.code) == (True, m.DeactivationCode.DEACTIVATED)
        assert freed.license_.seats_used == 0


def test_the_served_contract_generates_the_same_client_as_the_file(
    generated: Path, server: str, tmp_path: Path
) -> None:
    # The served document is the authored one: the same models by the same names, the service
    # operations included, and not one warning (a resolved copy warned of duplicate models).
    from_url = generate(tmp_path, "--url", f"{server}/api/v1/openapi.json")
    served, authored = files_of(from_url), files_of(generated)
    assert "models/problem.py" in served
    assert "api/service/get_health.py" in served
    assert sorted(served) == sorted(authored)
    assert [name for name in authored if served[name] != authored[name]] == []


def test_an_unauthenticated_call_answers_a_typed_problem(sdk: SDK, server: str) -> None:
    with sdk.client(f"{server}/api/v1", token="not-a-jwt") as client:
        response = sdk.op("auth", "getCurrentUser").sync_detailed(client=client)
    problem = parsed(response, sdk.models.Problem, 401)
    assert problem.type_ == "https://problems.coditect.ai/unauthorized"
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_an_admin_invites_a_user_who_accepts_and_signs_in(
    sdk: SDK, server: str, server_dir: Path
) -> None:
    m = sdk.models
    api = f"{server}/api/v1"
    with sdk.client(api) as anonymous:
        response = sdk.op("auth", "signup").sync_detailed(
            client=anonymous,
            body=m.SignupRequest(
                email=f"sdk-owner-{uuid.uuid4().hex[:10]}@example.test",
                password=PASSWORD,
                full_name="Olu Owner",
                organization_name=f"SDK Invites {uuid.uuid4().hex[:6]}",
            ),
        )
    owner = parsed(response, m.SignupResponse, 201)

    # createUser without a password invites: the user exists, INVITED, and cannot sign in.
    email = f"sdk-invitee-{uuid.uuid4().hex[:10]}@example.test"
    with sdk.client(api, owner.tokens.access_token) as client:
        response = sdk.op("users", "createUser").sync_detailed(
            client=client,
            body=m.UserCreate(email=email, full_name="Ines Invitee", role=m.UserRole.MEMBER),
        )
    invited = parsed(response, m.User, 201)
    assert invited.status == m.UserStatus.INVITED

    token = mailed_token(server_dir / "server.log", email, "accept-invitation")
    chosen = "the invitee's own passphrase"
    with sdk.client(api) as anonymous:
        response = sdk.op("auth", "acceptInvitation").sync_detailed(
            client=anonymous, body=m.InvitationAcceptance(token=token, password=chosen)
        )
        parsed(response, m.TokenPair, 200)
        again = sdk.op("auth", "acceptInvitation").sync_detailed(
            client=anonymous, body=m.InvitationAcceptance(token=token, password=chosen)
        )
        assert parsed(again, m.Problem, 401).status == 401, "the token works once"
        response = sdk.op("auth", "login").sync_detailed(
            client=anonymous, body=m.LoginRequest(email=email, password=chosen)
        )
    signed_in = parsed(response, m.TokenPair, 200)
    with sdk.client(api, signed_in.access_token) as client:
        me = parsed(sdk.op("auth", "getCurrentUser").sync_detailed(client=client), m.Me, 200)
    assert me.user.id == invited.id
    assert me.user.status == m.UserStatus.ACTIVE
    assert me.organization.id == owner.organization.id
