"""Settings, read once from the environment at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable has a value the server cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw) if raw else None


@dataclass(frozen=True)
class PasswordHashing:
    """argon2id's cost: OWASP's minimum (19 MiB, 2 iterations, 1 lane). Never read from the
    environment, so production cannot be configured below it; tests pass a cheaper one."""

    time_cost: int = 2
    memory_kib: int = 19_456
    parallelism: int = 1


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    database_admin_url: str | None
    database_system_url: str | None
    data_dir: Path
    pool_size: int
    pool_timeout_s: float
    statement_timeout_ms: int
    jwt_private_key_file: Path | None
    jwt_previous_key_files: tuple[Path, ...]
    license_signing_key_file: Path | None
    jwt_issuer: str
    jwt_audience: str
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    rate_limit_anonymous: str
    rate_limit_standard: str
    rate_limit_enterprise: str
    rate_limit_storage_url: str
    max_body_bytes: int
    max_header_bytes: int
    max_header_count: int
    validate_responses: bool
    swagger_ui: bool
    password_hashing: PasswordHashing = PasswordHashing()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        previous = tuple(
            Path(p) for p in env.get("JWT_PREVIOUS_KEY_FILES", "").split(os.pathsep) if p
        )
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            database_admin_url=env.get("DATABASE_ADMIN_URL") or None,
            database_system_url=env.get("DATABASE_SYSTEM_URL") or None,
            data_dir=Path(env.get("CODITECT_DATA_DIR") or ".coditect").resolve(),
            pool_size=_int(env, "DATABASE_POOL_SIZE", 10, 1, 200),
            pool_timeout_s=_seconds(env, "DATABASE_POOL_TIMEOUT_SECONDS", 5.0, 0.1, 300.0),
            statement_timeout_ms=_int(env, "DATABASE_STATEMENT_TIMEOUT_MS", 10_000, 100, 600_000),
            jwt_private_key_file=_path(env, "JWT_PRIVATE_KEY_FILE"),
            jwt_previous_key_files=previous,
            license_signing_key_file=_path(env, "LICENSE_SIGNING_KEY_FILE"),
            jwt_issuer=env.get("JWT_ISSUER") or "https://api.coditect.ai",
            jwt_audience=env.get("JWT_AUDIENCE") or "coditect-cloud",
            access_token_ttl_s=_int(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 60, 3600),
            refresh_token_ttl_s=_int(
                env, "REFRESH_TOKEN_TTL_SECONDS", 30 * 86400, 3600, 90 * 86400
            ),
            rate_limit_anonymous=env.get("RATE_LIMIT_ANONYMOUS") or "10/minute",
            rate_limit_standard=env.get("RATE_LIMIT_STANDARD") or "100/minute",
            rate_limit_enterprise=env.get("RATE_LIMIT_ENTERPRISE") or "1000/minute",
            rate_limit_storage_url=env.get("RATE_LIMIT_STORAGE_URL") or "memory://",
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
            max_header_bytes=_int(env, "MAX_HEADER_BYTES", 16_384, 1024, 1_048_576),
            max_header_count=_int(env, "MAX_HEADER_COUNT", 100, 10, 10_000),
            validate_responses=_bool(env, "CODITECT_VALIDATE_RESPONSES", False),
            swagger_ui=_bool(env, "CODITECT_SWAGGER_UI", True),
        )
