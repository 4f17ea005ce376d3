"""The OpenAPI 3.1 support module: spec validation, 2020-12 validators compiled once, 400s."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from connexion import AsyncApp
from connexion.exceptions import InvalidSpecification
from starlette.testclient import TestClient

from app import adapter
from app.adapter import openapi31
from app.adapter.errors import render_problem
from app.edge import spec
from app.problems import Problem

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/echo": {
            "post": {
                "operationId": "tests.app.test_openapi31.echo",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "format": "int32",
                            "exclusiveMinimum": 0,
                            "maximum": 10,
                        },
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["kind", "note"],
                                "properties": {
                                    "kind": {"const": "echo"},
                                    "note": {"type": ["string", "null"], "maxLength": 5},
                                    "score": {"type": "number", "exclusiveMinimum": 0},
                                    "code": {"type": "string", "pattern": "^[a-z]+$"},
                                    "count": {"type": "integer", "maximum": 2**64},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["kind"],
                                    "properties": {"kind": {"const": "echo"}},
                                }
                            }
                        },
                    }
                },
            }
        }
    },
}


async def echo(body: dict[str, Any], limit: int | None = None) -> tuple[Any, int, dict[str, str]]:
    if body.get("note") == "boom":
        raise RuntimeError("connection to db.internal:5432 failed, password=hunter2")
    reply = {"kind": "broken"} if body.get("note") == "bad" else body
    return reply, 200, {"Content-Type": "application/json"}


# The validators the test application below compiles, to count them.
COMPILED = openapi31.CompiledValidators()


@pytest.fixture(scope="module")
def client() -> TestClient:
    adapter.install()
    app = AsyncApp(
        __name__, validator_map=openapi31.validator_map(COMPILED), strict_validation=True
    )
    app.add_api(copy.deepcopy(SPEC), validate_responses=True)
    for error in (Exception, Problem):
        app.add_error_handler(error, render_problem)
    return TestClient(app, raise_server_exceptions=False)


def post(client: TestClient, body: Any, query: str = "") -> Any:
    return client.post(f"/echo{query}", json=body)


def test_connexion_accepts_a_31_document(client: TestClient) -> None:
    assert post(client, {"kind": "echo", "note": "hi"}).status_code == 200


def test_type_array_with_null_is_enforced(client: TestClient) -> None:
    assert post(client, {"kind": "echo", "note": None}).status_code == 200
    response = post(client, {"kind": "echo", "note": 5})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "body.note"


def test_const_is_enforced(client: TestClient) -> None:
    response = post(client, {"kind": "other", "note": "x"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "body.kind", "message": "'echo' was expected"}]


def test_numeric_exclusive_minimum_is_enforced_in_body_and_query(client: TestClient) -> None:
    assert post(client, {"kind": "echo", "note": "x", "score": 0}).status_code == 400
    assert post(client, {"kind": "echo", "note": "x", "score": 0.5}).status_code == 200
    assert post(client, {"kind": "echo", "note": "x"}, "?limit=0").status_code == 400
    assert post(client, {"kind": "echo", "note": "x"}, "?limit=1").status_code == 200


def test_missing_and_unexpected_fields_are_named(client: TestClient) -> None:
    errors = post(client, {"kind": "echo", "extra": 1}).json()["errors"]
    assert {"field": "body.note", "message": "is required"} in errors
    assert {"field": "body.extra", "message": "is not allowed"} in errors


def test_unknown_query_parameter_is_rejected(client: TestClient) -> None:
    response = post(client, {"kind": "echo", "note": "x"}, "?surprise=1")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "query.surprise"


@pytest.mark.parametrize("raw", [b"\xff\xfe{not json", b'{"kind": "echo", ', b"\xc3\x28"])
def test_undecodable_or_malformed_body_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/echo", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["type"] == "https://problems.coditect.ai/validation-error"


def test_response_validation_uses_the_same_validators(client: TestClient) -> None:
    assert post(client, {"kind": "echo", "note": "bad"}).status_code == 500


def test_validators_are_compiled_once(client: TestClient) -> None:
    post(client, {"kind": "echo", "note": "x"}, "?limit=2")
    before = len(COMPILED)
    for _ in range(5):
        post(client, {"kind": "echo", "note": "x"}, "?limit=2")
    assert len(COMPILED) == before > 0


def test_an_invalid_31_document_is_refused() -> None:
    broken = copy.deepcopy(SPEC)
    broken["paths"]["/echo"]["post"]["responses"] = "nope"
    with pytest.raises(InvalidSpecification):
        openapi31.validate_spec(broken)


def test_email_format_is_an_addr_spec() -> None:
    assert openapi31.is_email("dana.okafor@acme.example")
    assert openapi31.is_email("o'brien+tag@mail.example.co")
    assert openapi31.is_email("root@localhost"), "RFC 5321 allows a dotless domain"
    for bad in [
        "'/@syo.com*",
        "no-at-sign",
        "a b@example.com",
        "a@-bad.example",
        "@example.com",
    ]:
        assert not openapi31.is_email(bad), bad


def test_an_unexpected_error_is_a_500_problem_without_internals(client: TestClient) -> None:
    response = post(client, {"kind": "echo", "note": "boom"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://problems.coditect.ai/internal-error"
    assert "hunter2" not in response.text
    assert "db.internal" not in response.text


COMPONENTS = {
    "schemas": {
        "Outer": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"inner": {"$ref": "#/components/schemas/Inner"}},
        },
        "Inner": {"type": "integer", "maximum": 3},
    }
}


def test_a_body_schema_that_is_a_reference_is_compiled_as_its_target() -> None:
    # The shape Connexion hands over: the operation's $ref with the components attached.
    schema = {"$ref": "#/components/schemas/Outer", "components": COMPONENTS}
    validator = openapi31.CompiledValidators()(schema)
    assert validator.schema is COMPONENTS["schemas"]["Outer"]
    assert validator.is_valid({"inner": 2})
    # References inside the target still resolve against the whole document.
    errors = openapi31.field_errors(validator.iter_errors({"inner": 9, "x": 1}), "body")
    assert errors == [
        {"field": "body.x", "message": "is not allowed"},
        {"field": "body.inner", "message": "9 is greater than the maximum of 3"},
    ]


def test_other_schemas_with_a_reference_are_compiled_whole() -> None:
    for schema in (
        {"$ref": "#/components/schemas/Inner", "components": COMPONENTS, "maximum": 1},
        {"$ref": "#/components/schemas/Missing", "components": COMPONENTS},
        {"$ref": "other.json#/components/schemas/Inner", "components": COMPONENTS},
    ):
        assert openapi31.CompiledValidators()(schema).schema is schema


@pytest.mark.parametrize(
    ("pattern", "instance", "matches"),
    [
        ("^[a-z]+$", "acme", True),
        ("^[a-z]+$", "acme\n", False),  # Python's $ alone would match before the newline
        ("^a\\$b$", "a$b", True),  # an escaped $ stays a literal
        ("^[$]+$", "$$", True),  # so does a $ in a class
        ("^[]$]+$", "]$", True),  # a class opened by ]
        ("^[^]$]$", "x", True),
        ("^[^]$]$", "$", False),
        ("ab$|^c", "xab", True),
        ("ab$|^c", "ab\n", False),
    ],
)
def test_patterns_anchor_as_ecma_262(pattern: str, instance: str, matches: bool) -> None:
    validator = openapi31.CompiledValidators()({"type": "string", "pattern": pattern})
    assert validator.is_valid(instance) is matches


def test_a_trailing_newline_does_not_satisfy_a_pattern(client: TestClient) -> None:
    response = post(client, {"kind": "echo", "note": "x", "code": "abc\n"})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "body.code"
    assert error["message"] == "'abc\\n' does not match '^[a-z]+$'"
    assert post(client, {"kind": "echo", "note": "x", "code": "abc"}).status_code == 200


def _spec_request_schemas() -> list[tuple[str, dict[str, Any]]]:
    """Every request body and parameter schema of openapi.yaml, as Connexion hands them over."""
    document = spec.load()
    components = document["components"]
    out: list[tuple[str, dict[str, Any]]] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for param in [*item.get("parameters", []), *operation.get("parameters", [])]:
                if "$ref" in param:
                    param = components["parameters"][param["$ref"].rsplit("/", 1)[1]]
                out.append((f"{method} {path} {param['name']}", param.get("schema", {})))
            for media in operation.get("requestBody", {}).get("content", {}).values():
                schema = {**media["schema"], "components": components}
                out.append((f"{method} {path} body", schema))
    return out


SPEC_SCHEMAS = _spec_request_schemas()


def test_every_request_schema_of_the_spec_compiles_in_rust() -> None:
    # A schema jsonschema-rs could not compile would fall back to the slow Python validator.
    assert len(SPEC_SCHEMAS) > 20
    compiled = openapi31.CompiledValidators()
    slow = [name for name, schema in SPEC_SCHEMAS if not compiled(schema).compiled_in_rust]
    assert slow == []


def _strings_at(node: Any, key: str) -> set[str]:
    """Every string value of `key` anywhere in a document."""
    if isinstance(node, dict):
        found = {node[key]} if isinstance(node.get(key), str) else set()
        return found.union(*(_strings_at(v, key) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_strings_at(v, key) for v in node))
    return set()


def test_jsonschema_rs_is_given_only_the_components_a_schema_reaches() -> None:
    # Connexion attaches every component to every body schema; jsonschema-rs keeps a copy of
    # what it is given (~0.75 MB per validator with all of them).
    bodies = [(name, schema) for name, schema in SPEC_SCHEMAS if "components" in schema]
    assert len(bodies) > 10
    everything = sum(len(entries) for entries in bodies[0][1]["components"].values())
    for name, schema in bodies:
        trimmed = openapi31.with_reachable_components(schema)
        kept = trimmed["components"]
        # Closed: every reference in what is kept resolves within it.
        for ref in _strings_at(trimmed, "$ref"):
            _, _, section, entry = ref.split("/")
            assert entry in kept[section], f"{name}: {ref} was left out"
        assert sum(len(entries) for entries in kept.values()) < everything, name
    request = {
        "$ref": "#/components/schemas/LicenseValidationRequest",
        "components": spec.load()["components"],
    }
    trimmed = openapi31.with_reachable_components(request)
    assert trimmed["components"] == {
        "schemas": {
            "LicenseValidationRequest": request["components"]["schemas"]["LicenseValidationRequest"]
        }
    }
    # A reference it cannot follow: the schema goes as given.
    unknown = {"$ref": "#/components/schemas/Nowhere", "components": request["components"]}
    assert openapi31.with_reachable_components(unknown) == unknown


# OpenAPI's own formats: annotations for the reader, which no JSON Schema validator checks.
ANNOTATION_FORMATS = {"int32", "int64", "password"}


def test_every_format_the_spec_uses_has_a_python_check() -> None:
    # jsonschema checks only the formats whose libraries are installed, and skips the rest
    # silently: without one, an invalid value jsonschema-rs refuses would be accepted by the
    # Python validator, which has the last word (pyproject.toml installs exactly these).
    used = set().union(*(_strings_at(document, "format") for document in spec.split(spec.load())))
    assert {"date-time", "email", "uuid", "uri", "uri-reference"} <= used
    unchecked = used - ANNOTATION_FORMATS - set(openapi31._FORMATS.checkers)
    assert unchecked == set()
    assert not openapi31._FORMATS.conforms("not a uri", "uri")
    assert not openapi31._FORMATS.conforms("2026-13-30T12:00:00Z", "date-time")


BIG = 2**70
EDGE_INSTANCES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    2**31,
    2**63,
    BIG,
    -BIG,
    float(BIG),
    "",
    "x",
    "a\x00b",
    "abc\n",
    "x" * 600,
    "dana.okafor@acme.example",
    "'/@syo.com*",
    "a@-bad.example",
    "root@localhost",
    '"a b"@example.com',
    "user@[127.0.0.1]",
    "2026-11-30T12:00:00Z",
    "2026-13-30T12:00:00Z",
    "2026-11-30 12:00:00Z",
    "6f9619ff-8b86-d011-b42d-00c04fc964ff",
    "6F9619FF8B86D011B42D00C04FC964FF",
    "https://example.com/a?b=c",
    "not a uri",
    [],
    ["x"],
    {},
    {"license_key": "cdt_live_" + "k" * 20},
    {"license_key": "cdt_live_" + "k" * 20, "fingerprint": "f" * 20, "nonce": "n\x00" * 8},
    {"license_key": "cdt_live_" + "k" * 20, "extra": 1},
    {"email": "dana.okafor@acme.example", "password": "correct horse battery"},
    {"email": "'/@syo.com*", "password": "correct horse battery"},
    {"email": "user@[127.0.0.1]", "password": "correct horse battery"},
    {"name": "acme", "seats": BIG},
    {"name": "acme\n", "slug": "acme\n"},
]


@pytest.mark.parametrize(("name", "schema"), SPEC_SCHEMAS, ids=[n for n, _ in SPEC_SCHEMAS])
def test_rust_and_python_validators_agree_on_the_spec(name: str, schema: dict[str, Any]) -> None:
    """jsonschema-rs decides alone for what it accepts: it must never accept what the Python
    reference rejects (big integers, NUL, trailing newlines, emails, formats)."""
    validator = openapi31.CompiledValidators()(schema)
    python = openapi31.Draft202012(schema, format_checker=openapi31._FORMATS)
    for instance in EDGE_INSTANCES:
        assert validator.rust_accepts(instance) == python.is_valid(instance), (name, instance)


def test_a_valid_instance_never_reaches_the_python_validator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validator = openapi31.CompiledValidators()({"type": "string", "pattern": "^[a-z]+$"})

    class Refusing:
        def iter_errors(self, instance: Any) -> Any:
            raise AssertionError("the Python validator ran for a valid instance")

    monkeypatch.setattr(validator, "_python", Refusing())
    assert list(validator.iter_errors("acme")) == []
    with pytest.raises(AssertionError):
        list(validator.iter_errors("Acme"))


def test_integers_beyond_64_bits_are_compared_exactly() -> None:
    validator = openapi31.CompiledValidators()({"type": "integer", "maximum": 2**64})
    assert validator.rust_accepts(2**64)
    assert not validator.rust_accepts(2**64 + 1)
    assert not validator.is_valid(2**64 + 1)


def test_a_body_integer_beyond_64_bits_is_validated_exactly(client: TestClient) -> None:
    # orjson would read 2**64 + 1 as the float 2**64 and let it through.
    raw = b'{"kind": "echo", "note": "x", "count": %d}'
    headers = {"Content-Type": "application/json"}
    assert client.post("/echo", content=raw % (2**64), headers=headers).status_code == 200
    response = client.post("/echo", content=raw % (2**64 + 1), headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body.count"
