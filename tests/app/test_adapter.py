"""The fence around Connexion: versions checked, preparation kept, the layout enforced."""

from __future__ import annotations

import ast
import copy
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from connexion.decorators import StarletteDecorator
from connexion.uri_parsing import OpenAPIURIParser
from starlette.testclient import TestClient

from app import adapter
from app.adapter import validation
from app.adapter.openapi31 import JSONBodyValidator, Parameter31Validator
from app.config import SPEC_VALIDATED, ConfigError, Settings
from app.edge import spec
from app.main import create_app
from app.ops import cli

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("connexion", "starlette", "uvicorn")


def signed_up_bearer(client: TestClient, name: str) -> dict[str, str]:
    """The Authorization header of a new organization's owner."""
    slug = name.lower().replace(" ", "-")
    signed_up = client.post(
        "/api/v1/auth/signup",
        json={
            "email": f"{slug}@example.test",
            "password": f"the password of {slug}",
            "full_name": name,
            "organization_name": name,
        },
    )
    assert signed_up.status_code == 201, signed_up.text
    return {"Authorization": f"Bearer {signed_up.json()['tokens']['access_token']}"}


def test_an_untested_framework_version_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter.check_versions()  # what is installed is what pyproject.toml pins
    real = adapter.metadata.version
    monkeypatch.setattr(
        adapter.metadata, "version", lambda name: "3.4.0" if name == "connexion" else real(name)
    )
    with pytest.raises(adapter.UntestedFramework, match=r"connexion 3\.4\.0 .*>=3\.3,<3\.4"):
        create_app(Settings.from_env({}))


def test_serve_refuses_an_untested_framework_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.ops import cli

    real = adapter.metadata.version
    monkeypatch.setattr(
        adapter.metadata, "version", lambda name: "0.99.1" if name == "uvicorn" else real(name)
    )
    assert cli.main(["serve", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("coditect-cloud: uvicorn 0.99.1 is installed")
    assert "Traceback" not in error


def test_each_operation_builds_its_handler_chain_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stock Connexion builds a StarletteDecorator (the chain, the signature inspection, the URI
    # parser) on every call; prepared operations build it at their first call only.
    assert client.get("/healthz").status_code == 200
    built: list[object] = []
    original = StarletteDecorator.__init__

    def counting(self: StarletteDecorator, *args: object, **kwargs: object) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(StarletteDecorator, "__init__", counting)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert built == []


def test_each_operation_builds_its_request_validators_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stock Connexion builds the parameter and body validators (and two URI parsers) on every
    # request; prepared validation builds them once per operation, the body's once per
    # Content-Type value sent (a bounded number of them), and still checks every request.
    validate = "/api/v1/licenses/validate"
    invalid = {"license_key": "too short"}

    def post(content_type: str) -> int:
        headers = {"Content-Type": content_type}
        return client.post(
            validate, content=b'{"license_key": "too short"}', headers=headers
        ).status_code

    assert client.post(validate, json=invalid).status_code == 400
    built: list[str] = []
    for cls in (Parameter31Validator, JSONBodyValidator):
        original = cls.__init__

        def counting(
            self: object, *args: object, _original: object = original, **kwargs: object
        ) -> None:
            built.append(type(self).__name__)
            _original(self, *args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(cls, "__init__", counting)
    for _ in range(3):
        assert post("application/json") == 400
    assert built == []
    # Another Content-Type value: its own body validator, once.
    for _ in range(3):
        assert post("application/json; charset=utf-8") == 400
    assert built == ["JSONBodyValidator"]
    # Not accepted: refused every time, nothing built or remembered.
    for _ in range(3):
        assert post("text/plain") == 415
    assert built == ["JSONBodyValidator"]
    # Past the bound, a value is validated with a validator built for the request.
    built.clear()
    values = [
        f"application/json; v={i}" for i in range(validation.MAX_REMEMBERED_CONTENT_TYPES + 2)
    ]
    for _ in range(2):
        assert [post(value) for value in values] == [400] * len(values)
    free = validation.MAX_REMEMBERED_CONTENT_TYPES - 2  # two values are remembered above
    assert len(built) == free + 2 * (len(values) - free)


def test_the_query_string_is_resolved_once_per_request(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bearer = signed_up_bearer(client, "Query Once")
    resolved: list[object] = []
    original = OpenAPIURIParser.resolve_query

    def counting(self: OpenAPIURIParser, query: object) -> object:
        resolved.append(query)
        return original(self, query)

    monkeypatch.setattr(OpenAPIURIParser, "resolve_query", counting)
    page = client.get("/api/v1/projects", params={"limit": "2"}, headers=bearer)
    assert page.status_code == 200, page.text
    assert resolved == [{"limit": ["2"]}]
    # The handler got the validator's value: a limit of 2, as the page's size shows.
    for name in ("one", "two", "three"):
        made = client.post("/api/v1/projects", json={"name": name}, headers=bearer)
        assert made.status_code == 201, made.text
    page = client.get("/api/v1/projects", params={"limit": "2"}, headers=bearer)
    assert len(page.json()["data"]) == 2


# Layers that only look at the scope and hand the request on: none of them may hold a frame
# on a request's stack (app.adapter.passthrough), where each would be re-entered after every
# database round trip. Connexion's own routed look-up is in the list: the operations are
# linked past it.
PASS_THROUGH = {
    "RoutedMiddleware.__call__",
    "PassThroughRouted.__call__",
    "RoutingOperation.__call__",
    "SecurityOperation.__call__",
    "PassThroughSecurityOperation.__call__",
    "ContextOperation.__call__",
    "PassThroughContextOperation.__call__",
    "LifespanMiddleware.__call__",
    "PassThroughLifespan.__call__",
    "HeaderLimitMiddleware.__call__",
    "ProbeMiddleware.__call__",
    "LiteralPathGuard.__call__",
    "BodyLimitMiddleware.__call__",
    "DocsMiddleware.__call__",
    "LiteralRoutes.__call__",
    "PreparedRequestValidation.__call__",
    # Between the prepared operation and its handler: Connexion's response decorator.
    "AsyncResponseDecorator.__call__.<locals>.wrapper",
}


def test_layers_that_only_pass_a_request_on_hold_no_frame_on_its_stack(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import runtime
    from app.edge import middleware

    stacks: list[list[str]] = []
    handler_stacks: list[list[str]] = []
    stamp, current = middleware.security_headers, runtime.current

    def names() -> list[str]:
        frame, found = sys._getframe(2), []
        while frame is not None:
            found.append(frame.f_code.co_qualname)
            frame = frame.f_back  # type: ignore[assignment]
        return found

    def capturing(message: dict[str, object]) -> None:
        stacks.append(names())  # as the response starts, from inside the whole stack
        stamp(message)

    def capturing_current() -> object:
        handler_stacks.append(names())  # from inside a handler (and the edge)
        return current()

    monkeypatch.setattr(middleware, "security_headers", capturing)
    monkeypatch.setattr(runtime, "current", capturing_current)
    production = dataclasses.replace(app_settings, validate_responses=False)
    with TestClient(create_app(production)) as client:
        bearer = signed_up_bearer(client, "Frames")
        stacks.clear()
        handler_stacks.clear()
        assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
        assert client.get("/api/v1/projects", headers=bearer).status_code == 200
        invalid = client.post("/api/v1/licenses/validate", json={"license_key": "too short"})
        assert invalid.status_code == 400
    assert len(stacks) == 3
    for found in stacks[:2]:  # both reached their handler
        assert "PreparedOperation.__call__" in found
    in_handlers = [found for found in handler_stacks if "get_current_user" in found]
    assert in_handlers, "getCurrentUser's handler asks for the runtime"
    for found in stacks + in_handlers:
        assert "RequestContextMiddleware.__call__" in found
        assert PASS_THROUGH.isdisjoint(found), PASS_THROUGH.intersection(found)


def test_a_fault_above_the_exception_layer_is_a_500_problem(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The rate limiter runs above the exception middleware: only the last-resort layer
    # answers a fault there (stock, a TypeError and the server's plain-text 500).
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:

        async def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug in the limiter, holding hunter2")

        monkeypatch.setattr(client.app.runtime.limiter, "check", broken)  # type: ignore[attr-defined]
        response = client.get("/api/v1/projects")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://problems.coditect.ai/internal-error"
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "hunter2" not in response.text
    logged = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
    assert logged
    assert body["request_id"] in logged[0].getMessage()


def test_a_worker_skips_the_contract_check_its_supervisor_made(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    monkeypatch.setattr(
        adapter.openapi31, "validate_spec", lambda document: checked.append(document["openapi"])
    )
    validated = dataclasses.replace(app_settings, spec_validated_sha256=spec.sha256())
    create_app(validated)
    assert checked == []
    # Other bytes than the ones validated (or no word from a supervisor): checked here.
    for sha in ("0" * 64, None):
        create_app(dataclasses.replace(app_settings, spec_validated_sha256=sha))
        assert len(checked) == 2, sha  # the service API and the API
        checked.clear()


def test_serve_validates_the_contract_once_for_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SPEC_VALIDATED, raising=False)
    cli.validate_contract_for_workers()
    assert os.environ[SPEC_VALIDATED] == spec.sha256()
    monkeypatch.delenv(SPEC_VALIDATED)
    broken = copy.deepcopy(spec.load())
    broken["paths"]["/healthz"]["get"]["responses"] = "none"
    monkeypatch.setattr(spec, "load", lambda: broken)
    with pytest.raises(ConfigError, match=r"openapi\.yaml is not a valid OpenAPI document"):
        cli.validate_contract_for_workers()
    assert SPEC_VALIDATED not in os.environ
    # What the check costs is paid by the supervisor alone: a worker never imports it.
    assert as_worker(WORKER_IMPORTS).split() == ["False", "True"]


def as_worker(code: str) -> str:
    """What `code` prints in a fresh process started as `serve` starts a worker (the contract
    validated by the supervisor; a database URL that is never dialled)."""
    worker = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, SPEC_VALIDATED: spec.sha256(), "DATABASE_URL": "postgresql://x@/x"},
        capture_output=True,
        text=True,
        check=True,
    )
    return worker.stdout


WORKER_IMPORTS = """
import os, sys
from app.main import create_app
from app.ops import cli
create_app()
print("openapi_spec_validator" in sys.modules)
os.environ.pop("CODITECT_SPEC_VALIDATED")
create_app()
print("openapi_spec_validator" in sys.modules)
"""


DEFERRED_IMPORTS = """
import sys
from app.adapter import deferred
from app.main import create_app
app = create_app()
print(*[type(sys.modules[name]).__name__ for name in deferred.DEFERRED])
print(*[name in sys.modules for name in ("rich", "urllib3", "jinja2.environment", "httpx._client")])
import connexion.json_schema
get = connexion.json_schema.requests.get  # the first use
print(type(sys.modules["requests"]).__name__, get is sys.modules["requests"].get)
print(type(app.test_client()).__name__)
"""


def test_a_worker_never_loads_what_connexion_imports_for_unused_features() -> None:
    assert as_worker(DEFERRED_IMPORTS).splitlines() == [
        "DeferredModule DeferredModule DeferredModule DeferredModule DeferredModule",
        "False False False False",
        "module True",
        "TestClient",
    ]


def _probe_package(root: Path, name: str) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 42\n")
    (package / "part.py").write_text("PART = 'part'\n")


def test_a_deferred_module_is_imported_at_its_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.adapter import deferred

    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("coditect_probe_a", "coditect_probe_b")
    for name in names:
        _probe_package(tmp_path, name)
    try:
        modules: dict[str, tuple[str, ...]] = {name: () for name in names}
        assert deferred.defer_unused_imports(modules) == list(names)
        assert deferred.defer_unused_imports(modules) == []  # in place already
        import coditect_probe_a  # type: ignore[import-not-found]

        assert isinstance(sys.modules["coditect_probe_a"], deferred.DeferredModule)
        assert coditect_probe_a.VALUE == 42  # the first use imports it
        assert not isinstance(sys.modules["coditect_probe_a"], deferred.DeferredModule)
        assert sys.modules["coditect_probe_a"].VALUE == 42
        # A submodule of a package not loaded yet: the package is loaded first.
        import coditect_probe_b.part  # type: ignore[import-not-found]

        assert coditect_probe_b.part.PART == "part"
        assert sys.modules["coditect_probe_b"].VALUE == 42
        assert deferred.defer_unused_imports({"no_such_module_here": ()}) == []
    finally:
        for name in [m for m in sys.modules if m.startswith("coditect_probe_")]:
            del sys.modules[name]


def test_two_apps_with_different_settings_serve_side_by_side(
    app_settings: Settings, tmp_path: Path
) -> None:
    other = dataclasses.replace(
        app_settings,
        data_dir=tmp_path,  # its own signing keys
        rate_limit_anonymous="7/minute",
        jwt_issuer="https://other.example",
    )
    with TestClient(create_app(app_settings)) as first, TestClient(create_app(other)) as second:
        assert first.app.runtime is not second.app.runtime  # type: ignore[attr-defined]
        assert first.get("/metrics").headers["ratelimit-limit"] == "100000"
        assert second.get("/metrics").headers["ratelimit-limit"] == "7"
        bearer = signed_up_bearer(first, "Two Apps")
        assert first.get("/api/v1/auth/me", headers=bearer).status_code == 200
        # Each app verifies with its own keys: the other's token is not one of its own.
        assert second.get("/api/v1/auth/me", headers=bearer).status_code == 401
        assert second.get("/readyz").status_code == 200


def _framework_internals(path: Path) -> list[str]:
    """Imports of a private module of Connexion, Starlette or uvicorn, and `_`-attribute uses
    of a name imported from them."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, imported = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FRAMEWORKS:
                if any(part.startswith("_") for part in node.module.split(".")):
                    found.append(f"{path.name}:{node.lineno} from {node.module}")
                imported |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FRAMEWORKS:
                    if any(part.startswith("_") for part in alias.name.split(".")):
                        found.append(f"{path.name}:{node.lineno} import {alias.name}")
                    imported.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                if isinstance(base, ast.Name) and base.id in imported:
                    found.append(f"{path.name}:{node.lineno} class {node.name}({base.id})")
    return found


def test_framework_internals_are_used_only_in_the_adapter() -> None:
    outside = [
        path
        for folder in ("app", "handlers", "db")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (ROOT / "app" / "adapter") not in path.parents
    ]
    assert len(outside) > 30
    assert [hit for path in outside for hit in _framework_internals(path)] == []
    # The check sees what it looks for: the adapter does all three.
    adapter_files = (ROOT / "app" / "adapter").rglob("*.py")
    inside = [hit for path in adapter_files for hit in _framework_internals(path)]
    assert any("class" in hit for hit in inside)
    assert any("_middleware_app" in hit or "_validate_spec" in hit for hit in inside)
    assert any("starlette._utils" in hit for hit in inside)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # The lint step's command; PYTHONPATH makes `root`'s packages the ones analysed.
    executable = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(executable), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_import_contracts_hold_and_catch_a_violation(tmp_path: Path) -> None:
    kept = lint_imports(ROOT)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout
    # The same tree with a domain rule importing the HTTP edge.
    for name in ("app", "handlers", "db"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    roles = tmp_path / "app" / "rules" / "roles.py"
    roles.write_text(roles.read_text() + "\nfrom app.edge import responses  # noqa: E402\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode != 0, broken.stdout
    assert "Domain rules import no HTTP, framework or server code BROKEN" in broken.stdout
    assert "app.rules.roles -> app.edge.responses" in broken.stdout
