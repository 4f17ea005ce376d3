"""Every CHECK constraint has its match in the contract: a value the database refuses is refused
by the request schemas first, so the database never sees it."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.adapter.openapi31 import CompiledValidators
from app.edge import spec
from tests.conftest import TestDatabase

# Which request properties write each constrained column, and values the CHECK refuses (the
# test evaluates the constraint's own expression on each, so a sample the database would
# accept fails the test). Written by hand: a CHECK is an SQL expression and a request
# property does not name its column, so neither side can be derived from the other.
BLANK = ["", " ", "   "]
WRITTEN_BY_REQUESTS: dict[str, tuple[list[str], list[Any]]] = {
    # char_length(btrim(x)) >= 1: the spec's names need a character other than white space.
    "users_full_name_check": (
        ["SignupRequest.full_name", "UserCreate.full_name", "UserUpdate.full_name"],
        BLANK,
    ),
    "organizations_name_check": (
        ["SignupRequest.organization_name", "OrganizationUpdate.name"],
        BLANK,
    ),
    "projects_name_check": (["ProjectCreate.name", "ProjectUpdate.name"], BLANK),
    "licenses_name_check": (["LicenseUpdate.name"], BLANK),
    # The slug's own regex, the same in both.
    "organizations_slug_check": (
        ["OrganizationUpdate.slug"],
        ["", "-acme", "acme-", "Acme", "ac me", "acme\n", "acme_corp"],
    ),
    # The operator API's license terms: the spec's bounds are tiers.py's, the CHECKs' too.
    "licenses_lease_seconds_check": (
        ["OperatorLicenseIssue.lease_seconds", "OperatorLicenseUpdate.lease_seconds"],
        [0, 299, 31_536_001],
    ),
    "licenses_activation_limit_check": (
        ["OperatorLicenseIssue.activation_limit", "OperatorLicenseUpdate.activation_limit"],
        [0, -1],
    ),
    "licenses_deactivation_limit_check": (
        ["OperatorLicenseIssue.deactivation_limit", "OperatorLicenseUpdate.deactivation_limit"],
        [0, -1],
    ),
    "licenses_churn_window_check": (
        ["OperatorLicenseIssue.churn_window_seconds", "OperatorLicenseUpdate.churn_window_seconds"],
        [0, 59],
    ),
    # Trimmed, one "@", no white space: the spec's addr-spec format is stricter.
    "users_email_check": (
        ["SignupRequest.email", "UserCreate.email"],
        [" ada@example.test", "ada@example.test ", "ada @example.test", "ada", "@", "a@b@c"],
    ),
}

# Constraints on columns no request writes, and why.
NOT_WRITTEN_BY_REQUESTS = {
    "users_password_hash_check": "the server's argon2id hash, never a request value",
    "licenses_key_prefix_check": "made by the server from the key it generates",
    "licenses_key_digest_check": "the SHA-256 of a key the server generates",
    "licenses_seats_check": "set by the operator CLI (app.ops.license_admin), not the API",
    "licenses_features_check": "set from the tier's defaults or by the operator CLI",
    "licenses_validity_check": "dates set by the server or the operator CLI",
    "sessions_refresh_digest_check": "the SHA-256 of a token the server generates",
    "sessions_previous_refresh_digest_check": "the SHA-256 of a token the server generated",
    "sessions_rotation_check": "both columns set together by pretenant.rotate_refresh",
    "sessions_revoked_reason_check": "set by the server when it revokes a session",
    "license_activations_hostname_check": "pretenant.validate_license stores a blank hostname"
    " as none (a client tool reports what it has: tests/api/test_license_validation.py)",
    "license_activations_fingerprint_digest_check": "the SHA-256 the server computes",
    "audit_log_action_check": "action names are the server's constants",
    "spent_refresh_tokens_refresh_digest_check": "the SHA-256 of a token the server generated",
    "account_tokens_purpose_check": "the server's constants (reset, invitation)",
    "account_tokens_token_digest_check": "the SHA-256 of a token the server generates",
    "account_tokens_expiry_check": "expiry set by the server from its own lifetimes",
    "account_tokens_single_end_check": "used or revoked by the server, never both",
    "outbox_kind_check": "message kinds are the server's constants",
    "outbox_status_check": "set by the delivery worker",
    "outbox_attempts_check": "counted by the delivery worker",
    "outbox_body_check": "the body is dropped by the worker once delivered",
    "outbox_lease_check": "both columns set together by the delivery worker",
    "users_password_hash_present_check": "an invited user has no hash until acceptance",
    "license_tiers_seats_check": "reference data written by migrations (tiers.py's defaults)",
    "license_tiers_activation_limit_check": "reference data written by migrations",
    "license_tiers_deactivation_limit_check": "reference data written by migrations",
    "license_tiers_churn_window_check": "reference data written by migrations",
    "licenses_floating_lease_check": "the server gives a floating license its default lease",
    "license_activations_deactivation_reason_check": "set with deactivated_at by the server",
    "audit_log_target_type_check": "target types are the server's constants",
    "audit_log_detail_check": "written by the server from validated fields",
    "audit_log_request_id_check": "the request id the edge adopts (8 to 64) or makes",
    # pg_column_size(metadata) <= 16384 is the stored jsonb's size in bytes: JSON Schema cannot
    # express it. The spec bounds the shape (50 keys, one level of nesting, 1,000-character
    # strings) and documents the 16 KiB; a larger object reaches the CHECK and answers 400
    # validation-error (SQLSTATE 23514), and the failing row is not logged (roles.sql).
    "organizations_metadata_check": "a byte size of the stored jsonb (see the comment)",
    "users_metadata_check": "a byte size of the stored jsonb (see the comment)",
    "licenses_metadata_check": "a byte size of the stored jsonb (see the comment)",
    "projects_metadata_check": "a byte size of the stored jsonb (see the comment)",
    "license_activations_metadata_check": "a byte size of the stored jsonb (see the comment)",
}

CHECKS = """
    select c.conname, t.relname, pg_get_expr(c.conbin, c.conrelid) as expression,
           array(select a.attname from pg_attribute a
                 where a.attrelid = c.conrelid and a.attnum = any(c.conkey)) as columns,
           array(select format_type(a.atttypid, a.atttypmod) from pg_attribute a
                 where a.attrelid = c.conrelid and a.attnum = any(c.conkey)) as types
    from pg_constraint c join pg_class t on t.oid = c.conrelid
    join pg_namespace n on n.oid = t.relnamespace
    where c.contype = 'c' and n.nspname = 'public'
"""


@pytest.fixture(scope="module")
def checks(database: TestDatabase) -> dict[str, tuple[str, str, list[str], list[str]]]:
    with psycopg.connect(database.admin_dsn) as conn:
        rows = conn.execute(CHECKS).fetchall()
    return {
        name: (table, expression, columns, types)
        for name, table, expression, columns, types in rows
    }


def test_every_check_constraint_is_matched_in_the_contract_or_not_written_by_requests(
    checks: dict[str, Any],
) -> None:
    decided = set(WRITTEN_BY_REQUESTS) | set(NOT_WRITTEN_BY_REQUESTS)
    assert set(checks) - decided == set(), "a new CHECK: match it in the spec or say why not"
    assert decided - set(checks) == set(), "a constraint listed here no longer exists"


def refused_by_the_database(database: TestDatabase, check: Any, value: Any) -> bool:
    """The constraint's own expression, evaluated on `value` in place of its column (a CHECK
    passes on null as well as on true)."""
    _table, expression, columns, types = check
    (column,), (column_type,) = columns, types
    query = f"select ({expression}) from (select %s::{column_type} as {column}) as row_"  # noqa: S608 - from the catalog
    with psycopg.connect(database.admin_dsn) as conn:
        row = conn.execute(query, (value,)).fetchone()
    assert row is not None
    return row[0] is False


def property_errors(schema_name: str, prop: str, value: Any) -> list[str]:
    document = spec.load()
    validator = CompiledValidators()(
        {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    )
    return [
        error.message
        for error in validator.iter_errors({prop: value})
        if list(error.absolute_path)[:1] == [prop]
    ]


@pytest.mark.parametrize("constraint", sorted(WRITTEN_BY_REQUESTS))
def test_the_request_schemas_refuse_what_the_check_refuses(
    constraint: str, checks: dict[str, Any], database: TestDatabase
) -> None:
    properties, refused = WRITTEN_BY_REQUESTS[constraint]
    document = spec.load()
    for value in refused:
        assert refused_by_the_database(database, checks[constraint], value), (constraint, value)
        for target in properties:
            schema_name, prop = target.split(".")
            assert prop in document["components"]["schemas"][schema_name]["properties"], target
            assert property_errors(schema_name, prop, value), f"{target} accepts {value!r}"


def test_the_request_schemas_fit_the_columns_length(checks: dict[str, Any]) -> None:
    # varchar(n) refuses a longer value too (22001): maxLength must not be larger.
    document = spec.load()
    for constraint, (properties, _refused) in WRITTEN_BY_REQUESTS.items():
        column_type = checks[constraint][3][0]
        if column_type in ("integer", "bigint", "smallint"):
            continue  # a number's bounds are checked above; it has no length
        length = int(column_type.split("(")[1].rstrip(")")) if "(" in column_type else None
        for target in properties:
            schema_name, prop = target.split(".")
            max_length = document["components"]["schemas"][schema_name]["properties"][prop].get(
                "maxLength"
            )
            assert max_length is not None, target
            assert length is None or max_length <= length, (target, column_type)


def test_a_name_with_a_character_besides_white_space_is_still_accepted() -> None:
    # \x1c is white space to Python's \s but not to ECMA-262's: the spec lists its blanks.
    for value in ("Ada", " Ada Lovelace ", "\tx", "Zoë", "\x1c"):
        assert property_errors("SignupRequest", "full_name", value) == [], value
    for value in ("\x00", " \x00", "a\x00", "\t\n\r\x0b\x0c "):
        assert property_errors("SignupRequest", "full_name", value), repr(value)


def test_a_failing_check_is_logged_without_the_row(database: TestDatabase) -> None:
    with psycopg.connect(database.admin_dsn) as admin:
        row = admin.execute("show data_directory").fetchone()
    assert row is not None
    log = Path(row[0]) / "log"  # where the embedded server (pgserver) writes its log
    logged_before = log.stat().st_size
    marker = uuid.uuid4().hex
    with psycopg.connect(database.app_dsn, autocommit=True) as app:
        settings = app.execute(
            "select current_setting('log_error_verbosity'),"
            " current_setting('log_parameter_max_length')"
        ).fetchone()
        assert settings == ("terse", "0")
        with pytest.raises(psycopg.errors.CheckViolation):
            app.execute(
                "select * from pretenant.signup(%s, %s, %s, %s, %s, %s, %s, %s, now() + interval"
                " '1 day', %s, %s)",
                (
                    f"{marker}@example.test",
                    f"$argon2id$v=19$m=8,t=1,p=1${marker}",
                    " ",  # a blank full_name fails users_full_name_check
                    f"Org {marker}",
                    f"org-{marker}",
                    hashlib.sha256(marker.encode()).digest(),
                    "cdt_test",
                    hashlib.sha256(marker.encode() * 2).digest(),
                    "pytest",
                    "127.0.0.1",
                ),
            )
    deadline = time.monotonic() + 10
    while "users_full_name_check" not in (written := log.read_bytes()[logged_before:].decode()):
        assert time.monotonic() < deadline, "the error was not logged"
        time.sleep(0.05)
    assert marker not in written
    assert "Failing row" not in written
