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
    assert settings.rate_limit_storage_url == "memory://"
    assert settings.validate_responses is False
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_values_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://a@h/db",
            "DATABASE_POOL_SIZE": "7",
            "CODITECT_VALIDATE_RESPONSES": "true",
        }
    )
    assert settings.database_url == "postgresql://a@h/db"
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
