"""Settings from the environment."""

from pathlib import Path
from typing import Any

import pytest

from app.config import ConfigError, Settings


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path(".coditect").resolve()
    assert settings.rate_limit_anonymous == "10/minute"
    assert settings.rate_limit_standard == "100/minute"
    assert settings.rate_limit_enterprise == "1000/minute"
    assert settings.rate_limit_operator == "600/minute"
    assert settings.license_previous_key_files == ()
    assert settings.rate_limit_storage_url == "memory://"
    assert settings.validate_responses is False
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_values_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://a@h/db",
            "DATABASE_POOL_SIZE": "7",
            "CODITECT_VALIDATE_RESPONSES": "true",
            "LICENSE_PREVIOUS_KEY_FILES": "/keys/license-2025.pem:/keys/license-2024.pem",
            "RATE_LIMIT_OPERATOR": "50/minute",
        }
    )
    assert settings.database_url == "postgresql://a@h/db"
    assert settings.license_previous_key_files == (
        Path("/keys/license-2025.pem"),
        Path("/keys/license-2024.pem"),
    )
    assert settings.rate_limit_operator == "50/minute"
    assert settings.pool_size == 7
    assert settings.validate_responses is True
    with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE"):
        Settings.from_env({"DATABASE_POOL_SIZE": "0"})
    with pytest.raises(ConfigError, match="integer"):
        Settings.from_env({"MAX_BODY_BYTES": "lots"})
    with pytest.raises(ConfigError, match="true or false"):
        Settings.from_env({"CODITECT_VALIDATE_RESPONSES": "maybe"})


def test_host_and_port_come_from_the_platform() -> None:
    settings = Settings.from_env({"HOST": "0.0.0.0", "PORT": "8080"})  # noqa: S104
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)  # noqa: S104
    with pytest.raises(ConfigError, match="PORT must be between 1 and 65535"):
        Settings.from_env({"PORT": "0"})


def test_the_response_validator_is_in_the_stack_only_when_it_validates(tmp_path: Path) -> None:
    from connexion.middleware.response_validation import ResponseValidationMiddleware

    from app.edge.ratelimit import EdgeHeadersMiddleware
    from app.main import create_app

    def stack(validate: str) -> list[Any]:
        env = {"CODITECT_VALIDATE_RESPONSES": validate, "CODITECT_DATA_DIR": str(tmp_path)}
        return [
            getattr(m, "func", m) for m in create_app(Settings.from_env(env)).middleware.middlewares
        ]

    on, off = stack("true"), stack("false")
    assert ResponseValidationMiddleware in on
    assert ResponseValidationMiddleware not in off
    # The edge headers are stamped a second time inside the stack only for that validator.
    assert EdgeHeadersMiddleware in on
    assert EdgeHeadersMiddleware not in off
    assert len(on) == len(off) + 2


def test_mail_settings_default_to_the_log_and_local_links() -> None:
    settings = Settings.from_env({})
    assert settings.smtp_url is None
    assert settings.public_base_url == "http://127.0.0.1:8000"
    assert "@" in settings.mail_from


def test_mail_settings_are_read_and_the_smtp_password_is_never_shown() -> None:
    settings = Settings.from_env(
        {
            "SMTP_URL": "smtps://mailer:s3cret-pw@smtp.example:465",
            "MAIL_FROM": "CODITECT <no-reply@coditect.example>",
            "PUBLIC_BASE_URL": "https://app.coditect.example/",
        }
    )
    assert settings.smtp_url == "smtps://mailer:s3cret-pw@smtp.example:465"
    assert settings.public_base_url == "https://app.coditect.example"
    assert "s3cret-pw" not in repr(settings)
    with pytest.raises(ConfigError, match="MAIL_FROM") as missing:
        Settings.from_env({"SMTP_URL": "smtp://u:s3cret-pw@smtp.example"})
    assert "s3cret-pw" not in str(missing.value)
    with pytest.raises(ConfigError, match="SMTP_URL") as wrong:
        Settings.from_env({"SMTP_URL": "http://u:s3cret-pw@smtp.example", "MAIL_FROM": "a@b"})
    assert "s3cret-pw" not in str(wrong.value)
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        Settings.from_env({"PUBLIC_BASE_URL": "ftp://example"})


def test_logs_are_text_in_development_and_json_elsewhere() -> None:
    assert Settings.from_env({}).log_format == "text", "the embedded database: a developer"
    assert Settings.from_env({"DATABASE_URL": "postgresql://a@h/db"}).log_format == "json"
    assert Settings.from_env({"LOG_FORMAT": "JSON"}).log_format == "json"
    assert Settings.from_env({"LOG_LEVEL": "WARNING"}).log_level == "warning"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        Settings.from_env({"LOG_LEVEL": "loud"})


def test_forwarded_allow_ips_lists_addresses_or_networks() -> None:
    assert Settings.from_env({}).forwarded_allow_ips == "127.0.0.1"
    given = {"FORWARDED_ALLOW_IPS": "10.0.0.0/8, 192.168.1.1,::1"}
    assert Settings.from_env(given).forwarded_allow_ips == "10.0.0.0/8,192.168.1.1,::1"
    assert Settings.from_env({"FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == "*"
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
        Settings.from_env({"FORWARDED_ALLOW_IPS": "10.0.0.0/8,proxy.internal"})
