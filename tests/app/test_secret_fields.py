"""Secret fields: marked in the spec, and their values never quoted in validation messages."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.adapter.openapi31 import field_errors, is_secret_name
from app.edge import spec

SECRET = "Sup3rSecr3t-value"


def messages(schema: dict[str, Any], instance: Any) -> list[dict[str, str]]:
    return field_errors(Draft202012Validator(schema).iter_errors(instance), "body")


@pytest.mark.parametrize(
    "name",
    ["password", "new_password", "current_password", "refresh_token", "token", "license_key"],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["email", "key_prefix", "token_type", "fingerprint", "nonce", 3])
def test_not_secret_names(name: object) -> None:
    assert not is_secret_name(name)


def test_a_field_marked_password_is_never_quoted_whatever_its_name() -> None:
    schema = {"properties": {"pin": {"type": "string", "format": "password", "minLength": 40}}}
    [error] = messages(schema, {"pin": SECRET})
    assert error == {"field": "body.pin", "message": "is too short"}


def test_an_object_holding_a_secret_is_described_without_it() -> None:
    schema = {"type": "object", "minProperties": 2, "not": {"required": ["password"]}}
    found = messages(schema, {"password": SECRET})
    assert found
    for error in found:
        assert error["field"] == "body"
        assert SECRET not in error["message"]


def test_one_of_over_a_secret_is_described_without_it() -> None:
    schema = {"properties": {"password": {"oneOf": [{"type": "integer"}, {"type": "null"}]}}}
    [error] = messages(schema, {"password": SECRET})
    assert error["field"] == "body.password"
    assert SECRET not in error["message"]
    assert "oneOf" in error["message"] or "valid" in error["message"]


def test_every_secret_named_request_field_is_marked_password_in_the_spec() -> None:
    """The name rule and the spec agree: a secret field of a request body says so in the
    spec (generated clients and Swagger UI know), and nothing else is marked."""
    document = spec.load()
    schemas = document["components"]["schemas"]
    request_schemas = set()
    for _path, _method, op in spec.operations(document):
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        ref = body.get("schema", {}).get("$ref", "")
        if ref:
            request_schemas.add(ref.rsplit("/", 1)[1])
    assert request_schemas
    marked = []
    for name in sorted(request_schemas):
        for prop, schema in schemas[name].get("properties", {}).items():
            # `format: password`, or `writeOnly: true` where a format would hide the field from
            # Schemathesis' link inference (a formatted string is never fed from a response):
            # RefreshRequest.refresh_token, which must come from a TokenPair to succeed.
            is_marked = schema.get("format") == "password" or schema.get("writeOnly") is True
            assert is_marked == is_secret_name(prop), f"{name}.{prop}"
            if is_marked:
                marked.append(f"{name}.{prop}")
    assert marked == [
        "InvitationAcceptance.token",
        "InvitationAcceptance.password",
        "LicenseDeactivationRequest.license_key",
        "LicenseValidationRequest.license_key",
        "LoginRequest.password",
        "PasswordChange.current_password",
        "PasswordChange.new_password",
        "PasswordReset.token",
        "PasswordReset.new_password",
        "RefreshRequest.refresh_token",
        "SignupRequest.password",
        "UserCreate.password",
    ]
