"""Bearer verification: only EdDSA tokens signed by our own keys, with every claim, pass."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.auth.keys import KeySet, SigningKey, thumbprint
from app.auth.verifier import TokenVerifier
from app.problems import Problem, unauthorized

ISS, AUD = "https://issuer.test", "aud-test"


def new_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(private, thumbprint(private.public_key()))


def claims(**override: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISS,
        "aud": AUD,
        "sub": str(uuid.uuid4()),
        "org": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(payload, key.private, algorithm="EdDSA", headers={"kid": key.kid, **headers})


@pytest.fixture
def keys() -> KeySet:
    return KeySet(token_key=new_key(), license_key=new_key(), retired_token_keys=(new_key(),))


@pytest.fixture
def verifier(keys: KeySet) -> TokenVerifier:
    return TokenVerifier(keys, issuer=ISS, audience=AUD)


def assert_rejected(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(Problem) as caught:
        verifier.verify(token)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_signed_by_the_current_or_a_retired_key_verifies(
    keys: KeySet, verifier: TokenVerifier
) -> None:
    payload = claims()
    principal = verifier.verify(sign(keys.token_key, payload))
    assert str(principal.user_id) == payload["sub"]
    assert str(principal.session_id) == payload["sid"]
    assert verifier.verify(sign(keys.retired_token_keys[0], claims())).organization_id


def test_foreign_key_license_key_and_unknown_kid_are_rejected(
    keys: KeySet, verifier: TokenVerifier
) -> None:
    assert_rejected(verifier, sign(new_key(), claims()))
    assert_rejected(verifier, sign(keys.license_key, claims()))
    foreign = new_key()
    assert_rejected(
        verifier,
        jwt.encode(
            claims(), foreign.private, algorithm="EdDSA", headers={"kid": keys.token_key.kid}
        ),
    )


def test_alg_none_and_hs256_confusion_are_rejected(keys: KeySet, verifier: TokenVerifier) -> None:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    import json

    header = b64(json.dumps({"alg": "none", "kid": keys.token_key.kid}).encode())
    body = b64(json.dumps(claims()).encode())
    assert_rejected(verifier, f"{header}.{body}.")
    public_x = keys.token_key.jwk()["x"].encode()
    forged = jwt.encode(claims(), public_x, algorithm="HS256", headers={"kid": keys.token_key.kid})
    assert_rejected(verifier, forged)


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "sid", "org", "exp", "iat", "jti"])
def test_every_claim_is_required(keys: KeySet, verifier: TokenVerifier, missing: str) -> None:
    assert_rejected(verifier, sign(keys.token_key, claims(**{missing: None})))


def test_expiry_issuer_audience_and_garbage(keys: KeySet, verifier: TokenVerifier) -> None:
    now = int(time.time())
    assert_rejected(verifier, sign(keys.token_key, claims(exp=now - 120, iat=now - 1000)))
    assert_rejected(verifier, sign(keys.token_key, claims(iss="https://evil.test")))
    assert_rejected(verifier, sign(keys.token_key, claims(aud="other")))
    assert_rejected(verifier, sign(keys.token_key, claims(sub="not-a-uuid")))
    for garbage in ["", "a.b.c", "x" * 50, "..", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"]:
        assert_rejected(verifier, garbage)


def test_small_clock_skew_is_allowed(keys: KeySet, verifier: TokenVerifier) -> None:
    now = int(time.time())
    assert verifier.verify(sign(keys.token_key, claims(exp=now - 5, iat=now - 900)))


def test_development_keys_are_generated_once_and_reused(tmp_path: Path) -> None:
    first = KeySet.load(tmp_path, None, None)
    second = KeySet.load(tmp_path, None, None)
    assert first.token_key.kid == second.token_key.kid
    assert first.license_key.kid != first.token_key.kid
    assert (tmp_path / "keys" / "jwt-ed25519.pem").stat().st_mode & 0o077 == 0
    jwks = first.jwks()
    assert {k["kid"] for k in jwks["keys"]} == {first.token_key.kid, first.license_key.kid}
    assert all("d" not in k for k in jwks["keys"]), "private parts never leave the server"


def test_the_jwks_serves_the_current_and_retired_keys_and_rotation_keeps_tokens_valid() -> None:
    old, new, license_key = new_key(), new_key(), new_key()
    before = KeySet(token_key=old, license_key=license_key)
    token = sign(old, claims())
    after = KeySet(token_key=new, license_key=license_key, retired_token_keys=(old,))
    assert {k["kid"] for k in after.jwks()["keys"]} == {new.kid, old.kid, license_key.kid}
    assert TokenVerifier(after, issuer=ISS, audience=AUD).verify(token)
    retired = KeySet(token_key=new, license_key=license_key)
    assert_rejected(TokenVerifier(retired, issuer=ISS, audience=AUD), token)
    assert before.token_key.kid != after.token_key.kid


def test_a_remembered_token_still_expires(
    keys: KeySet, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    token = sign(keys.token_key, claims(iat=now, exp=now + 60))
    first = verifier.verify(token)
    assert verifier.verify(token) is first, "the second check is answered from memory"
    # Past exp + skew the full check runs again (PyJWT's own clock then rejects the token;
    # its expiry handling is covered above, so here it is stood in for).
    rechecked: list[str] = []

    def full_check(again: str) -> Any:
        rechecked.append(again)
        raise unauthorized()

    monkeypatch.setattr(verifier, "_verify", full_check)
    monkeypatch.setattr(time, "time", lambda: now + 60 + 29.0)
    assert verifier.verify(token) is first
    monkeypatch.setattr(time, "time", lambda: now + 60 + 31.0)
    assert_rejected(verifier, token)
    assert rechecked == [token]


def test_only_verified_tokens_are_remembered_and_memory_is_bounded(
    keys: KeySet, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = sign(new_key(), claims())
    assert_rejected(verifier, forged)
    assert_rejected(verifier, forged)
    monkeypatch.setattr("app.auth.verifier.VERIFIED_CACHE_SIZE", 3)
    tokens = [sign(keys.token_key, claims()) for _ in range(5)]
    principals = [verifier.verify(t) for t in tokens]
    checks = 0
    original = verifier._verify

    def counting(token: str) -> Any:
        nonlocal checks
        checks += 1
        return original(token)

    monkeypatch.setattr(verifier, "_verify", counting)
    assert verifier.verify(tokens[4]) is principals[4]
    assert checks == 0
    assert verifier.verify(tokens[0]) == principals[0]
    assert checks == 1, "the oldest token was forgotten and checked again"


def test_the_jwks_says_which_key_signs_what() -> None:
    token_key, old_token, license_key, old_license = new_key(), new_key(), new_key(), new_key()
    keys = KeySet(
        token_key=token_key,
        license_key=license_key,
        retired_token_keys=(old_token,),
        retired_license_keys=(old_license,),
    )
    signs = {k["kid"]: k["signs"] for k in keys.jwks()["keys"]}
    assert signs == {
        token_key.kid: "access_token",
        old_token.kid: "access_token",
        license_key.kid: "license_certificate",
        old_license.kid: "license_certificate",
    }
    # a license key never verifies an access token
    verifier = TokenVerifier(keys, issuer=ISS, audience=AUD)
    assert_rejected(verifier, sign(old_license, claims()))
    assert_rejected(verifier, sign(license_key, claims()))


def test_sealed_results_open_after_a_license_key_rotation() -> None:
    from app.rules.idempotency import Sealer

    old, new = new_key(), new_key()
    before = KeySet(token_key=new_key(), license_key=old)
    sealed = Sealer(before.sealing_secrets()).seal(b"first result", b"ctx")
    after = KeySet(token_key=new_key(), license_key=new, retired_license_keys=(old,))
    assert Sealer(after.sealing_secrets()).open(sealed, b"ctx") == b"first result"
    assert Sealer(after.sealing_secrets()).open(sealed, b"another row") is None
    assert (
        Sealer(KeySet(token_key=new_key(), license_key=new).sealing_secrets()).open(sealed, b"ctx")
        is None
    )
