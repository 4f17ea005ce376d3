"""What `serve` sets up before the workers start: the metrics directory, the log configuration."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.edge.ratelimit import without_password
from app.ops import cli, logs


def test_the_cli_does_not_import_prometheus_client_before_serve_sets_its_directory() -> None:
    # prometheus_client chooses in-process or multiprocess values once, when imported.
    probe = "import sys, app.ops.cli; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_an_operators_metrics_directory_is_emptied_of_earlier_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "counter_4242.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv(cli.MULTIPROCESS_DIR, str(tmp_path))
    with cli.metrics_directory() as path:
        assert path == tmp_path
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert tmp_path.exists(), "the operator's directory is kept"


def test_without_one_a_temporary_metrics_directory_lives_as_long_as_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(cli.MULTIPROCESS_DIR, raising=False)
    with cli.metrics_directory() as path:
        assert os.environ[cli.MULTIPROCESS_DIR] == str(path)
        assert path.is_dir()
    assert not path.exists()
    assert cli.MULTIPROCESS_DIR not in os.environ


def test_uvicorn_access_log_is_silenced_and_its_loggers_share_the_format() -> None:
    config = logs.config("info", "json")
    assert config["loggers"]["uvicorn.access"]["level"] == "CRITICAL"
    assert config["loggers"]["uvicorn.error"]["handlers"] == []
    assert config["formatters"]["default"]["log_format"] == "json"
    assert config["loggers"]["coditect.access"]["level"] == "INFO"
    assert logs.config("info", "json", access_log=False)["loggers"]["coditect.access"] == {
        "level": "WARNING"
    }
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "hello", None, None)
    record.color_message = "\x1b[36mhello\x1b[0m"
    line = json.loads(logs.formatter("json").format(record))
    assert list(line)[:4] == ["timestamp", "level", "logger", "message"]
    assert "color_message" not in line


def test_a_redis_url_is_logged_without_its_password() -> None:
    assert without_password("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert without_password("redis://user:s3cret@cache/1") == "redis://user:***@cache/1"
    assert without_password("memory://") == "memory://"


def test_serve_hands_uvicorn_the_proxies_the_drain_and_the_logging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    from app.adapter import workers

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _factory, **options: seen.update(options))
    log_config = logs.config("info", "json")
    workers.serve(
        "app.main:create_app",
        host="127.0.0.1",
        port=0,
        workers=1,
        log_level="info",
        log_config=log_config,
        forwarded_allow_ips="10.0.0.0/8",
        shutdown_grace_s=7,
    )
    assert seen["forwarded_allow_ips"] == "10.0.0.0/8"
    assert seen["proxy_headers"] is True
    assert seen["timeout_graceful_shutdown"] == 7
    assert seen["log_config"] is log_config
    assert seen["access_log"] is False, "uvicorn's line holds the raw path and query string"


@pytest.mark.parametrize("command", ["migrate", "rollback", "seed"])
def test_an_unreachable_database_is_one_line_not_a_traceback(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1; the password must not appear in what is printed.
    dsn = "postgresql://coditect:s3cret-pw@127.0.0.1:1/coditect?connect_timeout=2"
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("DATABASE_ADMIN_URL", dsn)
    assert cli.main([command]) == 1
    error = capsys.readouterr().err
    assert error.startswith("coditect-cloud: cannot use the database: ")
    assert "Traceback" not in error
    assert "s3cret-pw" not in error
    assert len(error.strip().splitlines()) == 1
