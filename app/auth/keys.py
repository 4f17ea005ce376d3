"""Ed25519 signing keys for access tokens and license certificates, and the public JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    kid: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.public, self.kid)


def public_jwk(public: Ed25519PublicKey, kid: str) -> dict[str, str]:
    x = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(x),
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
    }


def thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that is stable for the key and says nothing else."""
    x = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(x)}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def load_pem(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return SigningKey(key, thumbprint(key.public_key()))


def generate_pem(path: Path) -> SigningKey:
    """Create a development key once; later starts load the same file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    log.warning("generated a development signing key at %s", path)
    return load_pem(path)


def load_or_generate(configured: Path | None, fallback: Path) -> SigningKey:
    if configured is not None:
        return load_pem(configured)
    if fallback.exists():
        return load_pem(fallback)
    try:
        return generate_pem(fallback)
    except FileExistsError:  # another worker generated it first
        return load_pem(fallback)


def _derive(key: SigningKey, purpose: bytes) -> bytes:
    raw = key.private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return hashlib.sha256(b"coditect " + purpose + b"\0" + raw).digest()


# The JWKS member saying what a key signs (a CODITECT member: RFC 7517 lets a JWK carry
# members of its own), so a client verifying a certificate can refuse access-token keys.
SIGNS = "signs"
SIGNS_ACCESS_TOKENS = "access_token"
SIGNS_LICENSE_CERTIFICATES = "license_certificate"


@dataclass(frozen=True)
class KeySet:
    """The current keys sign; retired keys keep verifying (and stay in the JWKS) until
    removed from the configuration."""

    token_key: SigningKey
    license_key: SigningKey
    retired_token_keys: tuple[SigningKey, ...] = ()
    retired_license_keys: tuple[SigningKey, ...] = ()
    _verifiers: dict[str, Ed25519PublicKey] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for key in (self.token_key, *self.retired_token_keys):
            self._verifiers[key.kid] = key.public

    def token_verifier(self, kid: str) -> Ed25519PublicKey | None:
        return self._verifiers.get(kid)

    def cursor_secret(self) -> bytes:
        """A MAC key for pagination cursors, derived from the token key: no extra secret to run."""
        return _derive(self.token_key, b"pagination cursors")

    def sealing_secrets(self) -> list[bytes]:
        """AES keys for stored idempotent results (they may hold license keys), derived from
        the license keys, newest first: results sealed before a rotation still open while the
        retired key is configured (at least the 7-day offline window; results live 24 h)."""
        keys = (self.license_key, *self.retired_license_keys)
        return [_derive(k, b"idempotent results") for k in keys]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        listed: list[dict[str, str]] = []
        seen: set[str] = set()
        for signs, keys in (
            (SIGNS_ACCESS_TOKENS, (self.token_key, *self.retired_token_keys)),
            (SIGNS_LICENSE_CERTIFICATES, (self.license_key, *self.retired_license_keys)),
        ):
            for key in keys:
                if key.kid not in seen:  # a key configured twice is listed once
                    seen.add(key.kid)
                    listed.append({**key.jwk(), SIGNS: signs})
        return {"keys": listed}

    @classmethod
    def load(
        cls,
        data_dir: Path,
        token_key_file: Path | None,
        license_key_file: Path | None,
        retired_token_key_files: tuple[Path, ...] = (),
        retired_license_key_files: tuple[Path, ...] = (),
    ) -> KeySet:
        """The configured PEM files; without them, development keys kept in the data dir."""
        keys_dir = data_dir / "keys"
        return cls(
            token_key=load_or_generate(token_key_file, keys_dir / "jwt-ed25519.pem"),
            license_key=load_or_generate(license_key_file, keys_dir / "license-ed25519.pem"),
            retired_token_keys=tuple(load_pem(p) for p in retired_token_key_files),
            retired_license_keys=tuple(load_pem(p) for p in retired_license_key_files),
        )
