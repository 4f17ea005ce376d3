"""License-signing key rotation: certificates of a retired key verify with the served JWKS."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from app.auth.keys import generate_pem
from app.config import Settings
from app.licensing import certificates
from app.main import create_app
from tests.conftest import CHEAP_HASHING, TestDatabase

Server = Callable[..., TestClient]


@pytest.fixture
def start_server(database: TestDatabase, tmp_path: Path) -> Iterator[Server]:
    """In-process apps sharing a data dir (so the same access-token key), each with the
    license keys it is given."""
    with ExitStack() as servers:

        def start(**env: str) -> TestClient:
            settings = Settings.from_env(
                {
                    "DATABASE_URL": database.app_dsn,
                    "DATABASE_SYSTEM_URL": database.system_dsn,
                    "CODITECT_DATA_DIR": str(tmp_path / "data"),
                    "CODITECT_VALIDATE_RESPONSES": "true",
                }
                | env
            )
            settings = dataclasses.replace(settings, password_hashing=CHEAP_HASHING)
            client = TestClient(create_app(settings), raise_server_exceptions=False)
            return servers.enter_context(client)

        yield start


def certificate_of(client: TestClient, key: str) -> str:
    # One machine: a FREE license may have a single seat.
    response = client.post(
        "/api/v1/licenses/validate",
        json={"license_key": key, "fingerprint": "rotation-machine-0001"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["code"] == "VALID"
    certificate: str = response.json()["certificate"]
    return certificate


def verify_with_jwks(client: TestClient, certificate: str) -> dict[str, Any]:
    """What a client does offline: the certificate's kid, among the JWKS's license keys."""
    header = jwt.get_unverified_header(certificate)
    assert header["typ"] == certificates.TYPE
    listed = client.get("/.well-known/jwks.json").json()["keys"]
    candidates = [k for k in listed if k["signs"] == "license_certificate"]
    jwk = next((k for k in candidates if k["kid"] == header["kid"]), None)
    if jwk is None:
        raise LookupError(f"no license key {header['kid']} in the JWKS")
    claims: dict[str, Any] = jwt.decode(
        certificate, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], options={"verify_aud": False}
    )
    return claims


def test_certificates_signed_by_a_retired_key_verify_until_it_is_removed(
    start_server: Server, tmp_path: Path
) -> None:
    old_pem, new_pem = tmp_path / "license-old.pem", tmp_path / "license-new.pem"
    old, new = generate_pem(old_pem), generate_pem(new_pem)

    before = start_server(LICENSE_SIGNING_KEY_FILE=str(old_pem))
    signed_up = before.post(
        "/api/v1/auth/signup",
        json={
            "email": f"rotation-{uuid.uuid4().hex[:8]}@example.test",
            "password": "rotation password 1",
            "full_name": "Rita Rotation",
            "organization_name": "Rotation Org",
        },
    )
    assert signed_up.status_code == 201, signed_up.text
    license_key = signed_up.json()["license"]["license_key"]
    old_certificate = certificate_of(before, license_key)
    assert jwt.get_unverified_header(old_certificate)["kid"] == old.kid

    # Rotated: the new key signs, the old one is configured as retired.
    during = start_server(
        LICENSE_SIGNING_KEY_FILE=str(new_pem), LICENSE_PREVIOUS_KEY_FILES=str(old_pem)
    )
    assert verify_with_jwks(during, old_certificate)["sub"] == signed_up.json()["license"]["id"]
    new_certificate = certificate_of(during, license_key)
    assert jwt.get_unverified_header(new_certificate)["kid"] == new.kid
    assert verify_with_jwks(during, new_certificate)["sub"] == signed_up.json()["license"]["id"]

    # After the offline window the retired key is removed: its certificates no longer verify.
    after = start_server(LICENSE_SIGNING_KEY_FILE=str(new_pem))
    with pytest.raises(LookupError):
        verify_with_jwks(after, old_certificate)
    assert verify_with_jwks(after, new_certificate)
