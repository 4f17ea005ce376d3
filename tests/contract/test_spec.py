"""openapi.yaml: valid OpenAPI 3.1, the naming conventions, and a handler for every operation."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from app import problems
from app.adapter import openapi31
from app.adapter.resolver import handler_name
from app.edge import spec
from app.licensing.admin import BOUNDED_TERMS

OPERATIONS = {
    "auth": {
        "signup",
        "login",
        "logout",
        "refreshTokens",
        "getCurrentUser",
        "listSessions",
        "revokeSession",
        "changePassword",
        "requestPasswordReset",
        "resetPassword",
        "acceptInvitation",
    },
    "organizations": {"getOrganization", "updateOrganization", "deleteOrganization"},
    "users": {
        "listUsers",
        "createUser",
        "getUser",
        "updateUser",
        "deleteUser",
        "resendInvitation",
        "revokeInvitation",
    },
    "licenses": {
        "listLicenses",
        "getLicense",
        "updateLicense",
        "validateLicense",
        "deactivateLicense",
        "listLicenseMachines",
        "deactivateLicenseMachine",
    },
    "projects": {"listProjects", "createProject", "getProject", "updateProject", "deleteProject"},
    "service": {"getHealth", "getReadiness", "getJwks", "getMetrics"},
    "operator": {
        "listOperatorOrganizations",
        "listOperatorLicenses",
        "getOperatorLicense",
        "issueOperatorLicense",
        "updateOperatorLicense",
        "suspendOperatorLicense",
        "reinstateOperatorLicense",
        "revokeOperatorLicense",
        "listOperatorLicenseMachines",
        "deactivateOperatorLicenseMachine",
    },
    "audit": {"listAuditEvents"},
}
SCHEMAS = [
    "Problem",
    "TokenPair",
    "SignupRequest",
    "SignupResponse",
    "LoginRequest",
    "RefreshRequest",
    "Me",
    "Organization",
    "OrganizationUpdate",
    "User",
    "UserCreate",
    "UserUpdate",
    "UserPage",
    "License",
    "LicenseUpdate",
    "LicensePage",
    "LicenseValidationRequest",
    "LicenseValidationResult",
    "Project",
    "ProjectCreate",
    "ProjectUpdate",
    "ProjectPage",
    "OperatorOrganizationPage",
    "OperatorLicenseIssue",
    "OperatorLicenseUpdate",
    "OperatorLicenseStatusChange",
    "LicenseMachine",
    "LicenseMachinePage",
    "LicenseDeactivationRequest",
    "LicenseDeactivationResult",
    "AuditEvent",
    "AuditEventPage",
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return spec.load()


def test_the_spec_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    openapi31.validate_spec(document)
    assert document["servers"] == [{"url": "/api/v1"}]


def test_operations_have_the_design_names_and_one_tag(document: dict[str, Any]) -> None:
    found: dict[str, set[str]] = {}
    for _path, _method, op in spec.operations(document):
        assert len(op["tags"]) == 1, op["operationId"]
        found.setdefault(op["tags"][0], set()).add(op["operationId"])
    assert found == OPERATIONS


def test_every_operation_id_resolves_to_a_handler(document: dict[str, Any]) -> None:
    for _path, _method, op in spec.operations(document):
        module_name, _, function = handler_name(op["tags"][0], op["operationId"]).rpartition(".")
        handler = getattr(importlib.import_module(module_name), function, None)
        assert callable(handler), f"{op['operationId']} -> {module_name}.{function}"


def test_component_schema_names(document: dict[str, Any]) -> None:
    assert set(SCHEMAS) <= set(document["components"]["schemas"])


def test_errors_are_problem_json_and_nothing_is_default(document: dict[str, Any]) -> None:
    responses = document["components"].get("responses", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return responses[ref.rsplit("/", 1)[1]] if ref else node

    for path, method, op in spec.operations(document):
        assert "default" not in op["responses"], f"{method} {path}"
        for status in ("429", "500"):
            assert status in op["responses"], f"{method} {path} lacks {status}"
        for status, response in op["responses"].items():
            if int(status) >= 400 and (path, status) != ("/readyz", "503"):
                # /readyz answers 503 with its readiness document, which says what is not ready.
                content = resolve(response)["content"]
                assert list(content) == ["application/problem+json"], f"{method} {path} {status}"


def test_service_paths_are_served_from_the_root(document: dict[str, Any]) -> None:
    api, service = spec.split(document)
    assert set(service["paths"]) == {"/healthz", "/readyz", "/.well-known/jwks.json", "/metrics"}
    assert not set(api["paths"]) & set(service["paths"])


def test_every_write_documents_the_409_a_concurrent_change_can_cause(
    document: dict[str, Any],
) -> None:
    # Any write can meet a deadlock (40P01) or a serialization failure (40001), which the
    # one SQLSTATE mapping answers with 409.
    for sqlstate in ("40001", "40P01"):
        problem = problems.from_sqlstate(sqlstate)
        assert problem is not None
        assert problem.status == 409
    for path, method, op in spec.operations(document):
        if method != "get":
            assert "409" in op["responses"], f"{method} {path}"


def test_no_cursor_is_offered_as_an_example_to_send(document: dict[str, Any]) -> None:
    # Cursors are signed by the server's key: any example would be refused (400
    # invalid-cursor), yet Swagger UI's "Try it out" and Schemathesis' examples phase send it.
    cursor = document["components"]["parameters"]["Cursor"]
    assert cursor["name"] == "cursor"
    assert "example" not in cursor
    assert "examples" not in cursor
    assert "example" not in cursor["schema"]
    assert "examples" not in cursor["schema"]


def test_every_operation_on_the_database_documents_the_503_of_a_database_fault(
    document: dict[str, Any],
) -> None:
    # Every /api/v1 operation opens a transaction; a database that cannot serve is a 503.
    for sqlstate in ("08006", "53300", "57P01"):
        problem = problems.from_sqlstate(sqlstate)
        assert problem is not None
        assert problem.status == 503
    api, _service = spec.split(document)
    # The operator API's 503 also covers a server without the system role configured.
    operator_503 = document["components"]["responses"]["OperatorUnavailable"]
    assert "database" in operator_503["description"]
    assert "Retry-After" in operator_503["headers"]
    for path, method, op in spec.operations(api):
        expected = "OperatorUnavailable" if "operator" in op["tags"] else "DatabaseUnavailable"
        assert op["responses"].get("503") == {"$ref": f"#/components/responses/{expected}"}, (
            f"{method} {path}"
        )


def test_every_operation_with_a_body_documents_415(document: dict[str, Any]) -> None:
    # A body of another media type, or one without a Content-Type, answers 415.
    for path, method, op in spec.operations(document):
        if "requestBody" in op:
            assert op["responses"].get("415") == {
                "$ref": "#/components/responses/UnsupportedMediaType"
            }, f"{method} {path}"


def test_every_operation_documents_the_431_of_the_header_limits(document: dict[str, Any]) -> None:
    assert problems.TITLES["request-header-fields-too-large"][0] == 431
    for path, method, op in spec.operations(document):
        assert op["responses"].get("431") == {
            "$ref": "#/components/responses/RequestHeaderFieldsTooLarge"
        }, f"{method} {path}"


def test_every_response_declares_the_security_headers(document: dict[str, Any]) -> None:
    # The edge stamps them on every response; Cache-Control is no-store unless the operation
    # declares its own (the public key set).
    responses = document["components"]["responses"]
    security = {
        "X-Content-Type-Options": "#/components/headers/X-Content-Type-Options",
        "X-Frame-Options": "#/components/headers/X-Frame-Options",
        "Referrer-Policy": "#/components/headers/Referrer-Policy",
    }
    for path, method, op in spec.operations(document):
        for status, response in op["responses"].items():
            ref = response.get("$ref")
            headers = (responses[ref.rsplit("/", 1)[1]] if ref else response)["headers"]
            for name, target in security.items():
                assert headers.get(name) == {"$ref": target}, f"{method} {path} {status} {name}"
            expected = "#/components/headers/Cache-Control-No-Store"
            if (path, status) == ("/.well-known/jwks.json", "200"):
                expected = "#/components/headers/Cache-Control"
            assert headers.get("Cache-Control") == {"$ref": expected}, f"{method} {path} {status}"


@pytest.mark.parametrize("schema", ["OperatorLicenseIssue", "OperatorLicenseUpdate"])
def test_operator_license_terms_have_the_tiers_bounds(
    document: dict[str, Any], schema: str
) -> None:
    """The request bodies bound the lease and the churn limits as app/licensing/tiers.py
    does (admin.BOUNDED_TERMS), so the API and the CLI refuse the same values."""
    properties = document["components"]["schemas"][schema]["properties"]
    for term, (low, high) in BOUNDED_TERMS.items():
        assert (properties[term]["minimum"], properties[term]["maximum"]) == (low, high), term
