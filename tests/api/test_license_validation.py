"""validateLicense: the documented code order, exact seats under concurrency, certificates."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from app.auth.keys import SigningKey
from app.licensing import certificates
from tests.api.conftest import Account
from tests.api.test_license_cli import issue, license_cli, validate
from tests.conftest import TestDatabase

Sql = Callable[..., list[tuple[Any, ...]]]
ISSUER = "https://api.coditect.ai"
SEATS = 5


def fingerprint(label: str = "machine") -> str:
    return f"{label}-{uuid.uuid4().hex}"


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def jwks_key(client: TestClient, kid: str) -> Any:
    """The public key for `kid`, from nothing but the published JWKS."""
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    found = [k for k in keys if k["kid"] == kid]
    if len(found) != 1:
        raise jwt.InvalidKeyError(f"no key {kid!r} in the JWKS")
    return jwt.PyJWK(found[0]).key


def verify(client: TestClient, certificate: str, **options: Any) -> dict[str, Any]:
    header = jwt.get_unverified_header(certificate)
    claims: dict[str, Any] = jwt.decode(
        certificate,
        jwks_key(client, header["kid"]),
        algorithms=["EdDSA"],
        issuer=ISSUER,
        options={"require": ["iss", "sub", "iat", "exp"]},
        **options,
    )
    return claims


@pytest.fixture
def pro(database: TestDatabase, signup: Callable[..., Account]) -> dict[str, Any]:
    """A machine-bound PRO license with SEATS seats, of a fresh organization."""
    owner = signup()
    issued = issue(database.system_dsn, owner.org_id, "--tier", "PRO", "--seats", str(SEATS))
    return issued | {"owner": owner}


def test_an_unknown_key_is_not_found_with_a_200(client: TestClient) -> None:
    response = client.post(
        "/api/v1/licenses/validate",
        json={"license_key": "cdt_live_" + "x" * 43, "nonce": "nonce-123456"},
    )
    assert response.status_code == 200
    result = response.json()
    assert result == {
        "valid": False,
        "code": "NOT_FOUND",
        "detail": "No license matches this key.",
        "license": None,
        "activation": None,
        "certificate": None,
        "nonce": "nonce-123456",
        "ts": result["ts"],
    }
    assert abs(datetime.fromisoformat(result["ts"]) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"license_key": "short"},
        {"license_key": "cdt_live_" + "x" * 43, "fingerprint": "too-short"},
        {"license_key": "cdt_live_" + "x" * 43, "seats": 100},
        {"license_key": "cdt_live_" + "x" * 43, "nonce": "1234"},
    ],
)
def test_malformed_requests_are_400(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/api/v1/licenses/validate", json=body)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/validation-error")


def test_the_signup_license_takes_one_machine(
    client: TestClient, signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    key = owner.license["license_key"]
    first, second = fingerprint("laptop"), fingerprint("desktop")

    required = validate(client, key)
    assert (required["valid"], required["code"]) == (False, "FINGERPRINT_REQUIRED")
    assert required["license"]["machine_bound"] is True
    assert required["activation"] is None

    taken = validate(client, key, fingerprint=first, hostname="laptop.example")
    assert (taken["valid"], taken["code"]) == (True, "VALID")
    assert taken["detail"] == "License is valid; this machine now holds a seat."
    assert taken["activation"]["new"] is True
    assert taken["license"] == {
        "id": owner.license["id"],
        "tier": "FREE",
        "status": "ACTIVE",
        "seats": 1,
        "seats_used": 1,
        "features": ["core", "cli"],
        "expires_at": None,
        "machine_bound": True,
        "lease_seconds": None,
    }

    again = validate(client, key, fingerprint=first)
    assert (again["code"], again["activation"]["new"]) == ("VALID", False)
    assert again["activation"]["id"] == taken["activation"]["id"]
    assert again["activation"]["activated_at"] == taken["activation"]["activated_at"]
    assert again["license"]["seats_used"] == 1

    full = validate(client, key, fingerprint=second, nonce="nonce-full-1")
    assert (full["valid"], full["code"]) == (False, "SEAT_LIMIT_EXCEEDED")
    assert full["detail"] == "All 1 seats are in use; deactivate a machine or add seats."
    assert (full["activation"], full["certificate"], full["nonce"]) == (None, None, "nonce-full-1")

    rows = sql(
        "select fingerprint_digest, hostname from license_activations where license_id = %s",
        owner.license["id"],
    )
    assert rows == [(sha256(first), "laptop.example")]


def test_fingerprints_are_stored_only_as_digests(
    client: TestClient, pro: dict[str, Any], sql: Sql
) -> None:
    machine = fingerprint("secret-fingerprint")
    assert validate(client, pro["license_key"], fingerprint=machine)["code"] == "VALID"
    (row,) = sql(
        "select row_to_json(a)::text, fingerprint_digest from license_activations as a"
        " where license_id = %s",
        pro["id"],
    )
    assert machine not in row[0]
    assert row[1] == sha256(machine)


def test_a_freed_seat_can_be_taken_and_a_deactivated_machine_comes_back(
    client: TestClient, pro: dict[str, Any], sql: Sql
) -> None:
    key = pro["license_key"]
    machines = [fingerprint() for _ in range(SEATS)]
    for taken, machine in enumerate(machines, 1):
        activated = validate(client, key, fingerprint=machine)
        assert (activated["code"], activated["license"]["seats_used"]) == ("VALID", taken)
    late = fingerprint("late")
    refused = validate(client, key, fingerprint=late)
    assert (refused["code"], refused["license"]["seats_used"]) == ("SEAT_LIMIT_EXCEEDED", SEATS)
    # an administrator frees the first machine's seat
    sql(
        "update license_activations set deactivated_at = now(), deactivation_reason = 'deactivated'"
        " where license_id = %s and fingerprint_digest = %s",
        pro["id"],
        sha256(machines[0]),
    )
    taken = validate(client, key, fingerprint=late)
    assert (taken["code"], taken["activation"]["new"]) == ("VALID", True)
    assert validate(client, key, fingerprint=machines[0])["code"] == "SEAT_LIMIT_EXCEEDED"
    sql(
        "update license_activations set deactivated_at = now(), deactivation_reason = 'deactivated'"
        " where license_id = %s and fingerprint_digest = %s",
        pro["id"],
        sha256(late),
    )
    back = validate(client, key, fingerprint=machines[0])
    assert (back["code"], back["activation"]["new"]) == ("VALID", True)
    assert back["license"]["seats_used"] == SEATS
    assert sql("select count(*) from license_activations where license_id = %s", pro["id"]) == [
        (SEATS + 1,)
    ]


def test_last_seen_is_written_only_when_stale(
    client: TestClient, pro: dict[str, Any], sql: Sql
) -> None:
    key, machine = pro["license_key"], fingerprint()
    validate(client, key, fingerprint=machine, hostname="first.example")

    def stored() -> tuple[Any, ...]:
        (row,) = sql(
            "select last_seen_at, updated_at, hostname from license_activations"
            " where license_id = %s",
            pro["id"],
        )
        return row

    before = stored()
    again = validate(client, key, fingerprint=machine, hostname="first.example")
    assert stored() == before  # fresh: no write
    # the response still says this validation is the machine's last
    assert datetime.fromisoformat(again["activation"]["last_seen_at"]) > before[0]

    sql(
        "update license_activations set last_seen_at = now() - interval '2 minutes'"
        " where license_id = %s",
        pro["id"],
    )
    stale = stored()
    validate(client, key, fingerprint=machine)
    touched = stored()
    assert touched[0] > stale[0]
    assert touched[2] == "first.example"  # not sent: kept
    # a new hostname is written at once
    validate(client, key, fingerprint=machine, hostname="renamed.example")
    assert stored()[2] == "renamed.example"


def test_a_blank_hostname_is_no_hostname(client: TestClient, pro: dict[str, Any], sql: Sql) -> None:
    result = validate(client, pro["license_key"], fingerprint=fingerprint(), hostname="   ")
    assert result["code"] == "VALID"
    assert sql("select hostname from license_activations where license_id = %s", pro["id"]) == [
        (None,)
    ]


@pytest.mark.parametrize(
    ("arrange", "fields", "code", "detail"),
    [
        # every case also breaks every later rule, so only the order decides the code
        (
            "update licenses set status = 'REVOKED', starts_at = now() - interval '2 days',"
            " expires_at = now() - interval '1 day' where id = %(license)s;"
            "update organizations set status = 'SUSPENDED' where id = %(org)s",
            {},
            "REVOKED",
            "The license was revoked.",
        ),
        (
            "update licenses set status = 'SUSPENDED', starts_at = now() - interval '2 days',"
            " expires_at = now() - interval '1 day' where id = %(license)s",
            {},
            "SUSPENDED",
            "The license is suspended.",
        ),
        (
            "update organizations set status = 'SUSPENDED' where id = %(org)s;"
            "update licenses set starts_at = now() + interval '1 day' where id = %(license)s",
            {},
            "SUSPENDED",
            "The organization holding this license is suspended.",
        ),
        (
            "update licenses set starts_at = '2999-01-01T00:00:00Z' where id = %(license)s",
            {},
            "NOT_YET_VALID",
            "The license starts at 2999-01-01T00:00:00Z.",
        ),
        (
            "update licenses set starts_at = '2020-01-01', expires_at = '2021-01-31T23:59:59Z'"
            " where id = %(license)s",
            {},
            "EXPIRED",
            "The license expired at 2021-01-31T23:59:59Z.",
        ),
        ("update licenses set seats = 1 where id = %(license)s", {}, "FINGERPRINT_REQUIRED", None),
        (
            "update licenses set seats = 1 where id = %(license)s",
            {"fingerprint": "a-second-machine-000"},
            "SEAT_LIMIT_EXCEEDED",
            None,
        ),
        (
            "update licenses set seats = 1 where id = %(license)s",
            {"fingerprint": "the-first-machine-00"},
            "VALID",
            "License is valid.",
        ),
        ("update licenses set deleted_at = now() where id = %(license)s", {}, "NOT_FOUND", None),
        (
            "update organizations set deleted_at = now() where id = %(org)s",
            {},
            "NOT_FOUND",
            None,
        ),
    ],
)
def test_codes_are_checked_in_the_documented_order(
    client: TestClient,
    pro: dict[str, Any],
    database: TestDatabase,
    arrange: str,
    fields: dict[str, str],
    code: str,
    detail: str | None,
) -> None:
    key = pro["license_key"]
    assert validate(client, key, fingerprint="the-first-machine-00")["code"] == "VALID"
    with psycopg.connect(database.superuser_dsn) as conn:
        for statement in arrange.split(";"):
            conn.execute(statement, {"license": pro["id"], "org": pro["organization_id"]})
    result = validate(client, key, nonce="order-nonce", **fields)
    assert result["code"] == code
    assert result["valid"] is (code == "VALID")
    assert (result["certificate"] is not None) is (code == "VALID")
    assert (result["activation"] is not None) is (code == "VALID")
    assert result["nonce"] == "order-nonce"
    assert (result["license"] is None) is (code == "NOT_FOUND")
    if detail is not None:
        assert result["detail"] == detail


def test_a_deleted_organizations_license_does_not_validate(
    client: TestClient, signup: Callable[..., Account]
) -> None:
    owner = signup()
    key = owner.license["license_key"]
    assert validate(client, key, fingerprint=fingerprint())["code"] == "VALID"
    deleted = client.delete(f"/api/v1/organizations/{owner.org_id}", headers=owner.headers)
    assert deleted.status_code == 204
    result = validate(client, key, fingerprint=fingerprint())
    assert (result["code"], result["license"]) == ("NOT_FOUND", None)


@pytest.mark.parametrize("round_", range(3))
def test_seats_are_exact_under_concurrent_activation(
    client: TestClient, pro: dict[str, Any], sql: Sql, round_: int
) -> None:
    # SEATS + 12 machines at once; several rounds, as a lost race may not show every time.
    machines = [fingerprint(f"racer{round_}-{i}") for i in range(SEATS + 12)]
    with ThreadPoolExecutor(max_workers=len(machines)) as pool:
        results = list(
            pool.map(lambda m: validate(client, pro["license_key"], fingerprint=m), machines)
        )
    codes = Counter(r["code"] for r in results)
    assert codes == {"VALID": SEATS, "SEAT_LIMIT_EXCEEDED": 12}
    assert all(r["activation"]["new"] for r in results if r["valid"])
    assert max(r["license"]["seats_used"] for r in results) == SEATS
    assert sql(
        "select count(*), count(*) filter (where deactivated_at is null)"
        " from license_activations where license_id = %s",
        pro["id"],
    ) == [(SEATS, SEATS)]
    winners = {sha256(m) for m, r in zip(machines, results, strict=True) if r["valid"]}
    stored = sql(
        "select fingerprint_digest from license_activations where license_id = %s", pro["id"]
    )
    assert {r[0] for r in stored} == winners


def test_one_machine_validating_concurrently_takes_one_seat(
    client: TestClient, pro: dict[str, Any], sql: Sql
) -> None:
    machine = fingerprint("twin")
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(lambda _: validate(client, pro["license_key"], fingerprint=machine), range(10))
        )
    assert {r["code"] for r in results} == {"VALID"}
    assert sum(r["activation"]["new"] for r in results) == 1
    assert len({r["activation"]["id"] for r in results}) == 1
    assert sql("select count(*) from license_activations where license_id = %s", pro["id"]) == [
        (1,)
    ]


def test_a_floating_license_counts_machines_in_use_at_once(
    client: TestClient, database: TestDatabase, signup: Callable[..., Account], sql: Sql
) -> None:
    owner = signup()
    site = issue(
        database.system_dsn,
        owner.org_id,
        "--tier",
        "ENTERPRISE",
        "--seats",
        "1",
        "--no-machine-bound",
    )
    assert (site["machine_bound"], site["lease_seconds"]) == (False, 3600)
    key_only = validate(client, site["license_key"])
    assert (key_only["code"], key_only["certificate"]) == ("FINGERPRINT_REQUIRED", None)
    assert key_only["license"]["lease_seconds"] == 3600
    first, second = fingerprint("first"), fingerprint("second")
    held = validate(client, site["license_key"], fingerprint=first)
    assert (held["code"], held["activation"]["new"]) == ("VALID", True)
    assert validate(client, site["license_key"], fingerprint=second)["code"] == (
        "SEAT_LIMIT_EXCEEDED"
    )
    claims = verify(client, held["certificate"])
    assert claims["fpr"] == sha256(first).hex()
    assert claims["exp"] - claims["iat"] == 3600  # never beyond the lease
    # the first machine stops validating: once its lease is over, the seat is the next one's
    sql(
        "update license_activations set last_seen_at = now() - interval '61 minutes'"
        " where license_id = %s",
        site["id"],
    )
    taken = validate(client, site["license_key"], fingerprint=second)
    assert (taken["code"], taken["license"]["seats_used"]) == ("VALID", 1)
    assert sql(
        "select count(*) filter (where deactivated_at is null),"
        " count(*) filter (where deactivation_reason = 'lease_expired')"
        " from license_activations where license_id = %s",
        site["id"],
    ) == [(1, 1)]


def test_the_certificate_verifies_offline_with_only_the_jwks(
    client: TestClient, pro: dict[str, Any]
) -> None:
    machine = fingerprint()
    result = validate(client, pro["license_key"], fingerprint=machine, nonce="n-5f2b9c1e7a3d4f60")
    certificate = result["certificate"]
    header = jwt.get_unverified_header(certificate)
    assert header["alg"] == "EdDSA"
    assert header["typ"] == "coditect-license+jwt"
    # the license key signs certificates; the access-token key does not
    token_kid = jwt.get_unverified_header(pro["owner"].tokens["access_token"])["kid"]
    assert header["kid"] != token_kid
    claims = verify(client, certificate)
    ts = int(datetime.fromisoformat(result["ts"]).timestamp())
    assert claims == {
        "iss": ISSUER,
        "sub": pro["id"],
        "org": pro["organization_id"],
        "tier": "PRO",
        "features": pro["features"],
        "seats": SEATS,
        "fpr": hashlib.sha256(machine.encode()).hexdigest(),
        "nonce": "n-5f2b9c1e7a3d4f60",
        "iat": ts,
        "exp": ts + 7 * 86400,  # perpetual: the offline window bounds it
    }
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(certificate, jwks_key(client, token_kid), algorithms=["EdDSA"], issuer=ISSUER)


def flip_a_byte(certificate: str, segment: int) -> str:
    parts = certificate.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[segment] + "=" * (-len(parts[segment]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    parts[segment] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return ".".join(parts)


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_a_tampered_certificate_fails(
    client: TestClient, pro: dict[str, Any], segment: int
) -> None:
    certificate = validate(client, pro["license_key"], fingerprint=fingerprint())["certificate"]
    verify(client, certificate)
    tampered = flip_a_byte(certificate, segment)
    assert tampered != certificate
    with pytest.raises(jwt.PyJWTError):
        verify(client, tampered)


def test_the_certificate_never_outlives_the_license(
    client: TestClient, pro: dict[str, Any], database: TestDatabase, sql: Sql
) -> None:
    assert (
        license_cli(
            database.system_dsn,
            "extend",
            pro["id"],
            "--expires-at",
            (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        )[0]
        == 0
    )
    ((expires_at,),) = sql("select expires_at from licenses where id = %s", pro["id"])
    result = validate(client, pro["license_key"], fingerprint=fingerprint())
    claims = verify(client, result["certificate"])
    assert claims["exp"] == int(expires_at.timestamp())
    assert claims["exp"] <= expires_at.timestamp()
    assert datetime.fromisoformat(result["license"]["expires_at"]) == expires_at


def test_an_expired_certificate_fails(client: TestClient) -> None:
    keys = client.app.runtime.keys  # type: ignore[attr-defined]
    issued_at = datetime.now(UTC) - timedelta(days=8)
    certificate = certificates.issue(
        keys.license_key,
        issuer=ISSUER,
        license_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        tier="PRO",
        features=["core"],
        seats=3,
        fingerprint=sha256("machine"),
        nonce=None,
        now=issued_at,
        expires_at=None,
    )
    claims = verify(client, certificate, leeway=timedelta(days=2))  # genuine, just old
    assert claims["exp"] - claims["iat"] == 7 * 86400
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(client, certificate)


def test_certificate_expiry_is_capped_by_the_license_expiry() -> None:
    key = SigningKey(Ed25519PrivateKey.generate(), "test-kid")
    now = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    soon = now + timedelta(hours=5, microseconds=999_999)
    common: dict[str, Any] = {
        "issuer": ISSUER,
        "license_id": uuid.uuid4(),
        "organization_id": uuid.uuid4(),
        "tier": "FREE",
        "features": [],
        "seats": 1,
        "fingerprint": None,
        "nonce": "abcdefgh",
        "now": now,
    }
    options = {"verify_exp": False}
    capped = jwt.decode(
        certificates.issue(key, expires_at=soon, **common),
        key.public,
        algorithms=["EdDSA"],
        options=options,
    )
    assert capped["exp"] == int((now + timedelta(hours=5)).timestamp())
    windowed = jwt.decode(
        certificates.issue(key, expires_at=now + timedelta(days=365), **common),
        key.public,
        algorithms=["EdDSA"],
        options=options,
    )
    assert windowed["exp"] - windowed["iat"] == 7 * 86400
    leased = jwt.decode(
        certificates.issue(
            key, expires_at=now + timedelta(days=365), lease=timedelta(minutes=10), **common
        ),
        key.public,
        algorithms=["EdDSA"],
        options=options,
    )
    assert leased["exp"] - leased["iat"] == 600  # offline use never outlasts the seat
    past_lease = jwt.decode(
        certificates.issue(key, expires_at=None, lease=timedelta(days=30), **common),
        key.public,
        algorithms=["EdDSA"],
        options=options,
    )
    assert past_lease["exp"] - past_lease["iat"] == 7 * 86400  # a long lease: the window
