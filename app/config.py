"""Settings, read once from the environment at start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# Set by `coditect-cloud serve` for its workers (see Settings.spec_validated_sha256).
SPEC_VALIDATED = "CODITECT_SPEC_VALIDATED"


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


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _forwarded_allow_ips(env: Mapping[str, str]) -> str:
    """Which peers may set the client address (X-Forwarded-For): addresses or networks,
    comma-separated, or `*`. Checked here so a typo fails at start, not as a silently
    ignored entry."""
    raw = env.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"FORWARDED_ALLOW_IPS must list addresses or networks (or *), got {entry!r}"
            ) from None
    return ",".join(entries)


LOG_FORMATS = ("json", "text")


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
    license_previous_key_files: tuple[Path, ...]
    jwt_issuer: str
    jwt_audience: str
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    rate_limit_anonymous: str
    rate_limit_standard: str
    rate_limit_enterprise: str
    rate_limit_operator: str
    rate_limit_storage_url: str
    rate_limit_store_timeout_ms: int
    rate_limit_store_retry_s: float
    max_body_bytes: int
    max_header_bytes: int
    max_header_count: int
    validate_responses: bool
    swagger_ui: bool
    # Holds the SMTP password: kept out of repr, so it never reaches a log line.
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str = "CODITECT <no-reply@localhost>"
    public_base_url: str = "http://127.0.0.1:8000"
    mail_poll_interval_ms: int = 2000
    log_level: str = "info"
    # json or text; see from_env for the default.
    log_format: str = "json"
    access_log: bool = True
    forwarded_allow_ips: str = "127.0.0.1"
    shutdown_grace_s: int = 20
    password_hashing: PasswordHashing = PasswordHashing()
    # Where `serve` listens unless --host/--port say otherwise. PORT is what Cloud Run (and
    # most platforms) set; HOST is 0.0.0.0 in the container image.
    host: str = "127.0.0.1"
    port: int = 8000
    # Not for operators: `coditect-cloud serve` validates the contract once and hands its
    # workers the SHA-256 of the openapi.yaml it validated (CODITECT_SPEC_VALIDATED); a
    # worker serving those same bytes skips the check (and the ~15 MB its validator costs).
    spec_validated_sha256: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def paths(name: str) -> tuple[Path, ...]:
            return tuple(Path(p) for p in env.get(name, "").split(os.pathsep) if p)

        return cls(
            database_url=env.get("DATABASE_URL") or None,
            database_admin_url=env.get("DATABASE_ADMIN_URL") or None,
            database_system_url=env.get("DATABASE_SYSTEM_URL") or None,
            data_dir=Path(env.get("CODITECT_DATA_DIR") or ".coditect").resolve(),
            pool_size=_int(env, "DATABASE_POOL_SIZE", 10, 1, 200),
            pool_timeout_s=_seconds(env, "DATABASE_POOL_TIMEOUT_SECONDS", 5.0, 0.1, 300.0),
            statement_timeout_ms=_int(env, "DATABASE_STATEMENT_TIMEOUT_MS", 10_000, 100, 600_000),
            jwt_private_key_file=_path(env, "JWT_PRIVATE_KEY_FILE"),
            jwt_previous_key_files=paths("JWT_PREVIOUS_KEY_FILES"),
            license_signing_key_file=_path(env, "LICENSE_SIGNING_KEY_FILE"),
            license_previous_key_files=paths("LICENSE_PREVIOUS_KEY_FILES"),
            jwt_issuer=env.get("JWT_ISSUER") or "https://api.coditect.ai",
            jwt_audience=env.get("JWT_AUDIENCE") or "coditect-cloud",
            access_token_ttl_s=_int(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 60, 3600),
            refresh_token_ttl_s=_int(
                env, "REFRESH_TOKEN_TTL_SECONDS", 30 * 86400, 3600, 90 * 86400
            ),
            rate_limit_anonymous=env.get("RATE_LIMIT_ANONYMOUS") or "10/minute",
            rate_limit_standard=env.get("RATE_LIMIT_STANDARD") or "100/minute",
            rate_limit_enterprise=env.get("RATE_LIMIT_ENTERPRISE") or "1000/minute",
            rate_limit_operator=env.get("RATE_LIMIT_OPERATOR") or "600/minute",
            rate_limit_storage_url=env.get("RATE_LIMIT_STORAGE_URL") or "memory://",
            rate_limit_store_timeout_ms=_int(env, "RATE_LIMIT_STORE_TIMEOUT_MS", 50, 1, 5_000),
            rate_limit_store_retry_s=_seconds(
                env, "RATE_LIMIT_STORE_RETRY_SECONDS", 5.0, 0.1, 300.0
            ),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
            max_header_bytes=_int(env, "MAX_HEADER_BYTES", 16_384, 1024, 1_048_576),
            max_header_count=_int(env, "MAX_HEADER_COUNT", 100, 10, 10_000),
            validate_responses=_bool(env, "CODITECT_VALIDATE_RESPONSES", False),
            swagger_ui=_bool(env, "CODITECT_SWAGGER_UI", True),
            smtp_url=_smtp_url(env),
            mail_from=_mail_from(env),
            public_base_url=_base_url(env),
            mail_poll_interval_ms=_int(env, "MAIL_POLL_INTERVAL_MS", 2000, 50, 600_000),
            log_level=_choice(
                env, "LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
            ),
            # Text for a developer at a terminal (the embedded database is the development
            # set-up); JSON lines wherever a real database is configured, i.e. anywhere a log
            # collector reads the output.
            log_format=_choice(
                env, "LOG_FORMAT", "text" if not env.get("DATABASE_URL") else "json", LOG_FORMATS
            ),
            access_log=_bool(env, "ACCESS_LOG", True),
            forwarded_allow_ips=_forwarded_allow_ips(env),
            shutdown_grace_s=_int(env, "SHUTDOWN_GRACE_SECONDS", 20, 0, 3600),
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000, 1, 65535),
            spec_validated_sha256=env.get(SPEC_VALIDATED) or None,
        )


def _smtp_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("SMTP_URL") or None
    if raw is not None:
        parts = urlsplit(raw)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            # The value may hold a password: name the variable, never echo it.
            raise ConfigError("SMTP_URL must be smtp://[user:password@]host[:port] or smtps://...")
    return raw


def _mail_from(env: Mapping[str, str]) -> str:
    raw = env.get("MAIL_FROM")
    if not raw:
        if env.get("SMTP_URL"):
            raise ConfigError("MAIL_FROM is required when SMTP_URL is set")
        return "CODITECT <no-reply@localhost>"
    if "@" not in raw or "\n" in raw or "\r" in raw:
        raise ConfigError(f"MAIL_FROM must be an email address, got {raw!r}")
    return raw


def _base_url(env: Mapping[str, str]) -> str:
    raw = env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"PUBLIC_BASE_URL must be an http(s) URL without query, got {raw!r}")
    return raw.rstrip("/")
