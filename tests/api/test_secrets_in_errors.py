"""Validation problems name the field and the rule, and never quote a secret's value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import Account, unique_email

SECRET = "Sup3rSecr3t"

# (case, value, the words of the rule the message names)
CASES: list[tuple[str, Callable[[int, int], Any], str]] = [
    ("too short", lambda low, high: SECRET[: max(1, low - 1)], "too short"),
    ("too long", lambda low, high: (SECRET * (high // len(SECRET) + 2))[: high + 1], "too long"),
    ("wrong type: number", lambda low, high: 98765432109876543, "type"),
    ("wrong type: list", lambda low, high: [SECRET * 3], "type"),
    ("wrong type: object", lambda low, high: {"value": SECRET * 3}, "type"),
    ("pattern: NUL", lambda low, high: (SECRET * 3)[: low + 2] + "\x00" + SECRET, "match"),
]

# (operation path, secret field, its length bounds, the rest of a valid body, needs a token)
FIELDS = [
    (
        "/api/v1/auth/signup",
        "password",
        (12, 256),
        {"email": "e", "full_name": "Sig Nup", "organization_name": "Secret Org"},
        False,
    ),
    ("/api/v1/auth/login", "password", (12, 256), {"email": "e"}, False),
    (
        "/api/v1/users",
        "password",
        (12, 256),
        {"email": "e", "full_name": "New User", "role": "MEMBER"},
        True,
    ),
    ("/api/v1/auth/refresh", "refresh_token", (32, 512), {}, False),
    ("/api/v1/licenses/validate", "license_key", (16, 128), {}, False),
]


def secret_parts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.split("\x00")[0], SECRET]
    if isinstance(value, int):
        return [str(value)]
    return [SECRET]


@pytest.mark.parametrize(("case", "make", "rule"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize(
    ("path", "field", "bounds", "rest", "auth"), FIELDS, ids=[f"{f[0]} {f[1]}" for f in FIELDS]
)
def test_a_secret_field_is_named_with_its_rule_and_its_value_is_never_quoted(
    client: TestClient,
    signup: Callable[..., Account],
    case: str,
    make: Callable[[int, int], Any],
    rule: str,
    path: str,
    field: str,
    bounds: tuple[int, int],
    rest: dict[str, Any],
    auth: bool,
) -> None:
    value = make(*bounds)
    body = {k: (unique_email() if v == "e" else v) for k, v in rest.items()} | {field: value}
    headers = signup().headers if auth else {}
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 400, response.text
    problem = response.json()
    errors = {e["field"]: e["message"] for e in problem["errors"]}
    assert f"body.{field}" in errors, problem
    assert rule in errors[f"body.{field}"], problem
    for part in secret_parts(value):
        assert part not in response.text, (case, response.text)


def test_other_fields_still_quote_what_was_sent(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login", json={"email": "not-an-email", "password": SECRET + "-long-enough"}
    )
    assert response.status_code == 400
    assert "'not-an-email'" in response.text
    assert SECRET not in response.text
