"""Where the shipped SQL lives: next to the package in a wheel, at the repo root in a checkout."""

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def sql_dir() -> Path:
    for candidate in (_HERE / "sql", _HERE.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError("sql/ directory not found next to the db package")
