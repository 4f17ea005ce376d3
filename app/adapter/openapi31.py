"""OpenAPI 3.1 for Connexion 3: JSON Schema 2020-12 validators compiled once per schema (Rust
to accept, Python to explain), the spec check install() uses, and 400s for undecodable bodies."""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from typing import Any

import jsonschema_rs
import orjson
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import InvalidSpecification, NonConformingResponseBody
from connexion.lifecycle import ConnexionRequest
from connexion.validators import (
    AbstractRequestBodyValidator,
    JSONResponseBodyValidator,
    ParameterValidator,
)
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.protocols import Validator
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from app.adapter.operations import PARSED_BODY_KEY, QUERY_KEY, RAW_BODY_KEY
from app.problems import Problem

log = logging.getLogger(__name__)

_FORMATS = FormatChecker()
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


@_FORMATS.checks("email")
def is_email(instance: object) -> bool:
    """An addr-spec with a dot-atom local part and a hostname: jsonschema's own check only
    looks for an "@", so addresses no mail system accepts would be stored and echoed back."""
    if not isinstance(instance, str):
        return True
    return len(instance) <= 254 and _EMAIL.fullmatch(instance) is not None


def ecma_anchors(pattern: str) -> str:
    """The pattern with each `$` that anchors (outside a character class, not escaped) as
    `\\Z`: JSON Schema patterns are ECMA-262, where `$` is the end of the string; Python's `$`
    also matches before a final newline, so `^[a-z]+$` accepted "acme\\n"."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            # A "]" first in a class (after an optional "^") is a literal in Python.
            start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            start += pattern[start : start + 1] == "]"
            out.append(pattern[i:start])
            i, in_class = start, True
            continue
        elif char == "$":
            char = "\\Z"
        out.append(char)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=1024)  # patterns come from the spec, never from a request
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_anchors(pattern))


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # jsonschema's own `pattern` keyword, with ECMA-262 anchors.
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Draft202012 = validators.extend(Draft202012Validator, {"pattern": _pattern})


class CheckedValidator:
    """A schema's two compiled validators: jsonschema-rs decides whether an instance is valid,
    and only for an invalid one does the Python validator say why.

    Valid requests are the hot path: the Rust check of a license validation's body takes
    ~0.5 µs where `jsonschema` took ~29 µs. The Python validator stays the reference for the
    errors (the same fields and messages as before) and for the verdict, an instance being
    accepted when either finds it valid: they agree on everything the spec uses (ECMA-262
    anchored patterns, the addr-spec email check given to both, formats, integers of any
    size; tests/app/test_openapi31.py compares them), and where the Rust one is stricter
    (`\\d` and `\\w` are ASCII in ECMA-262) the Python one has the last word, as before.
    """

    def __init__(self, schema: Mapping[str, Any], python: Validator) -> None:
        self.schema = python.schema
        self._python = python
        self._rust = _rust_validator(schema)

    @property
    def compiled_in_rust(self) -> bool:
        return self._rust is not None

    def is_valid(self, instance: Any) -> bool:
        return self.rust_accepts(instance) or self._python.is_valid(instance)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        if self.rust_accepts(instance):
            return iter(())
        return self._python.iter_errors(instance)

    def rust_accepts(self, instance: Any) -> bool:
        if self._rust is None:
            return False
        try:
            return bool(self._rust.is_valid(instance))
        except (ValueError, TypeError):
            # A value that is not JSON data (jsonschema-rs refuses it): the Python one judges.
            return False


def _rust_validator(schema: Mapping[str, Any]) -> Any:
    """jsonschema-rs for `schema`, or None where it cannot compile it (a reference it cannot
    resolve offline): then the Python validator alone decides, as it did before."""
    try:
        return jsonschema_rs.Draft202012Validator(
            with_reachable_components(schema),
            validate_formats=True,
            formats={"email": is_email},
            offline=True,
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError):
        return None


# A local reference into the components: "#/components/<section>/<name>".
_LOCAL_COMPONENT = re.compile(r"#/components/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)")


def with_reachable_components(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` with only the components its references reach. Connexion attaches the whole
    `components` section to every body schema, and jsonschema-rs keeps its own compiled copy
    of the document it is given: ~0.75 MB per validator with all of openapi.yaml's
    components, ~0.2 MB with the ones it uses (a worker serving every operation holds one
    per body and parameter schema; measured 2026-11-30). References it cannot follow here
    (another form, an unknown name) leave the schema as it was given."""
    components = schema.get("components")
    if not isinstance(components, Mapping):
        return dict(schema)
    reached: dict[str, dict[str, Any]] = {}
    pending: list[Any] = [{k: v for k, v in schema.items() if k != "components"}]
    while pending:
        node = pending.pop()
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                match = _LOCAL_COMPONENT.fullmatch(ref)
                section = components.get(match[1]) if match else None
                if not isinstance(section, Mapping) or match is None or match[2] not in section:
                    return dict(schema)
                kept = reached.setdefault(match[1], {})
                if match[2] not in kept:
                    kept[match[2]] = section[match[2]]
                    pending.append(section[match[2]])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return {**schema, "components": reached}


class CompiledValidators:
    """One compiled 2020-12 validator per schema object, shared by every request."""

    def __init__(self) -> None:
        # Keyed by id(); the schema is kept alive in the value so the id is never reused.
        self._compiled: dict[int, tuple[Mapping[str, Any], CheckedValidator]] = {}
        self._lock = threading.Lock()

    def __call__(self, schema: Mapping[str, Any]) -> CheckedValidator:
        hit = self._compiled.get(id(schema))
        if hit is not None:
            return hit[1]
        python = Draft202012(schema, format_checker=_FORMATS)
        target = _referenced_component(schema)
        if target is not None:
            # Connexion hands over {"$ref": ..., "components": ...}: following that $ref on
            # every call was a third of a body's validation. Evolved from the root validator,
            # references inside the target still resolve against the whole document.
            python = python.evolve(schema=target)
        validator = CheckedValidator(schema, python)
        with self._lock:
            self._compiled[id(schema)] = (schema, validator)
        return validator

    def __len__(self) -> int:
        return len(self._compiled)


# Nineteen digits in a row: maybe an integer beyond 64 bits (2**63 has 19 digits).
_LONG_NUMBER = re.compile(rb"\d{19}")

_COMPONENT_REF = re.compile(r"#/components/schemas/([A-Za-z0-9_.-]+)")


def _referenced_component(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The component a schema that is only a local `$ref` (beside the attached components)
    points to: validating against it is validating against the schema."""
    if set(schema) != {"$ref", "components"}:
        return None
    match = _COMPONENT_REF.fullmatch(str(schema["$ref"]))
    target = schema["components"].get("schemas", {}).get(match[1]) if match else None
    return target if isinstance(target, Mapping) else None


def validate_spec(spec: Mapping[str, Any]) -> None:
    """Raise InvalidSpecification unless `spec` is a valid OpenAPI 3.0 or 3.1 document."""
    # Imported here: the validator and what it brings (pydantic, jsonschema-path) cost a
    # process ~10 MB, and `serve`'s workers never check the contract themselves.
    from openapi_spec_validator import validate as validate_openapi
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    try:
        validate_openapi(dict(spec))
    except OpenAPIValidationError as e:
        raise InvalidSpecification(str(e)) from e


def _field(path: Iterable[Any], prefix: str) -> str:
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def is_secret_name(name: object) -> bool:
    """A field whose value is a credential: any *password*, a *_token or `token` (refresh,
    access, invitation and reset tokens), a license key."""
    if not isinstance(name, str):
        return False
    name = name.lower()
    return "password" in name or name == "token" or name.endswith(("_token", "license_key"))


def is_secret_schema(schema: object) -> bool:
    """The spec marks secrets `format: password` (or `writeOnly: true`)."""
    return isinstance(schema, Mapping) and (
        schema.get("format") == "password" or schema.get("writeOnly") is True
    )


def _secret_values(instance: Any) -> list[Any]:
    """The values under secret-named keys anywhere inside `instance`."""
    found: list[Any] = []
    if isinstance(instance, Mapping):
        for key, value in instance.items():
            if is_secret_name(key):
                found.append(value)
            else:
                found += _secret_values(value)
    elif isinstance(instance, list):
        for item in instance:
            found += _secret_values(item)
    return found


def _message(error: ValidationError, field: str) -> str:
    """jsonschema's message, except that a secret's value is never quoted: the message of a
    secret field (or of an object holding one) names the rule without the value."""
    message = str(error.message)
    secret = is_secret_schema(error.schema) or is_secret_name(field.rpartition(".")[2])
    values = [error.instance] if secret else _secret_values(error.instance)
    if not values:
        return message[:1000]
    shown = repr(error.instance)
    if message.startswith(shown):
        # jsonschema's messages start with the instance: "'x' is too short".
        message = message[len(shown) :].lstrip() or "is not valid"
    for value in values:
        if repr(value) in message or (isinstance(value, str) and value and value in message):
            return f"does not satisfy {error.validator!r}"
    return message[:1000]


def field_errors(errors: Iterable[ValidationError], prefix: str) -> list[dict[str, str]]:
    """Per-field messages, naming the missing or unexpected property itself where there is one;
    the value of a secret field is never quoted."""
    out: list[dict[str, str]] = []
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        instance = error.instance if isinstance(error.instance, dict) else {}
        if error.validator == "required":
            missing = [p for p in error.validator_value if p not in instance]
            for name in missing:
                out.append({"field": _field([*path, name], prefix), "message": "is required"})
            continue
        if error.validator in ("additionalProperties", "unevaluatedProperties"):
            allowed = set(error.schema.get("properties", {}))
            for name in [k for k in instance if k not in allowed]:
                out.append({"field": _field([*path, name], prefix), "message": "is not allowed"})
            continue
        field = _field(path, prefix) or prefix
        out.append({"field": field, "message": _message(error, field)})
    return out[:100]


def _raise_invalid(errors: list[dict[str, str]]) -> None:
    if errors:
        first = errors[0]
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        raise Problem("validation-error", detail, errors=errors)


class JSONBodyValidator(AbstractRequestBodyValidator):
    """Request bodies: parsed with orjson, validated by a compiled 2020-12 validator."""

    compiled: CompiledValidators  # the application's own, set by validator_map()

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        # Without a Content-Type Connexion guesses the operation's first media type and goes
        # on: a body must say what it is (RFC 9110 leaves guessing to the recipient; we don't).
        headers = Headers(scope=scope)
        if not headers.get("content-type", "").partition(";")[0].strip():
            sent = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
            if self._required or sent:
                raise Problem(
                    "unsupported-media-type",
                    "The request has a body but no Content-Type; send application/json.",
                )
        declared = headers.get("content-length")
        if declared is None or not declared.isdigit() or not int(declared):
            # No body announced: Connexion's own path (a default body, or "is required").
            return await super().wrap_receive(receive, scope=scope)
        # Connexion's path for a body, without its async generator over the messages: read
        # them, parse and validate, and replay them to the application (-1.5% of a validation:
        # 1,673,144 -> 1,648,245 instructions, measured 2026-11-30).
        messages = []
        more = True
        while more:
            message = await receive()
            messages.append(message)
            more = message.get("more_body", False)
        body = self._decode(b"".join([m.get("body", b"") for m in messages]), scope)
        if not (body is None and self._nullable):
            self._validate(body)
        return self._insert_messages(receive, messages=messages), scope

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        return self._decode(b"".join([chunk async for chunk in stream]), scope)

    def _decode(self, raw: bytes, scope: Scope) -> Any:
        if not raw:
            return None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            # orjson rejects invalid UTF-8 as well as malformed JSON: both are the caller's error.
            raise Problem("validation-error", f"The body is not valid JSON: {e}") from None
        if _LONG_NUMBER.search(raw):
            # orjson makes integers beyond 64 bits floats: such a body is parsed by the stdlib,
            # which keeps them exact, for the validator's bounds and for the handler.
            body = json.loads(raw)
        # The handler's body argument is this document (app.operations) instead of the
        # request read and parsed again.
        extensions = scope.setdefault("extensions", {})
        extensions[RAW_BODY_KEY] = raw
        extensions[PARSED_BODY_KEY] = body
        return body

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if body is None:
            raise Problem(
                "validation-error",
                "A JSON request body is required.",
                errors=[{"field": "body", "message": "is required"}],
            )
        validator = self.compiled(self._schema)
        if not validator.rust_accepts(body):
            _raise_invalid(field_errors(validator.iter_errors(body), "body"))
        return None


class Parameter31Validator(ParameterValidator):
    """Parameters validated by compiled 2020-12 validators, reporting every failing field."""

    compiled: CompiledValidators

    def validate(self, scope: Scope) -> None:
        # With no parameters defined, only the strict check of the query string can fail.
        if not self.parameters and not scope.get("query_string"):
            return
        request = ConnexionRequest(scope, uri_parser=self.uri_parser)
        self.validate_request(request)
        # The query string as the URI parser resolved it, for the handler's arguments
        # (app.operations) instead of a second parse and resolution of the same string.
        scope.setdefault("extensions", {})[QUERY_KEY] = request.query_params

    def validate_request(self, request: ConnexionRequest) -> None:
        errors: list[dict[str, str]] = []
        if self.strict_validation:
            extra = self.validate_query_parameter_list(
                request, security_params=self.security_query_params
            )
            errors += [
                {"field": f"query.{n}", "message": "is not a known parameter"}
                for n in sorted(extra)
            ]
        sources = {
            "query": request.query_params,
            "path": request.path_params,
            "header": request.headers,
            "cookie": request.cookies,
        }
        for location, params in self.parameters.items():
            values = sources.get(location, {})
            for param in params:
                name = param["name"]
                key = name.replace("-", "_") if location == "path" else name
                value = values.get(key)
                if value is None:
                    if param.get("required"):
                        errors.append({"field": f"{location}.{name}", "message": "is required"})
                    continue
                schema = param.get("schema", {})
                errors += field_errors(
                    self.compiled(schema).iter_errors(value), f"{location}.{name}"
                )
        _raise_invalid(errors)


class JSONResponseValidator(JSONResponseBodyValidator):
    """Response bodies (tests only): the same compiled 2020-12 validators."""

    compiled: CompiledValidators

    @property
    def validator(self) -> CheckedValidator:
        return self.compiled(self._schema)

    def _validate(self, body: Any) -> None:
        errors = field_errors(self.validator.iter_errors(body), "body")
        if errors:
            log.warning("response does not conform to the spec: %s", errors)
            raise NonConformingResponseBody(detail=f"Response body does not conform: {errors}")


def validator_map(compiled: CompiledValidators | None = None) -> dict[str, Any]:
    """Connexion's validator map for one application, sharing one cache of compiled validators."""
    if compiled is None:
        compiled = CompiledValidators()

    def bound(cls: type) -> type:
        return type(cls.__name__, (cls,), {"compiled": compiled})

    return {
        "parameter": bound(Parameter31Validator),
        "body": MediaTypeDict({"*/*json": bound(JSONBodyValidator)}),
        "response": MediaTypeDict({"*/*json": bound(JSONResponseValidator)}),
    }
