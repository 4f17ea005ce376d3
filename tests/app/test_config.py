"""Settings from the environment."""

from pathlib import Path

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


def test_the_response_validator_is_in_the_stack_only_when_it_validates() -> None:
    from connexion.middleware.response_validation import ResponseValidationMiddleware

    from app.main import middlewares_for

    on = middlewares_for(Settings.from_env({"CODITECT_VALIDATE_RESPONSES": "true"}))
    off = middlewares_for(Settings.from_env({}))
    assert ResponseValidationMiddleware in on
    assert ResponseValidationMiddleware not in off
    assert len(on) == len(off) + 1
