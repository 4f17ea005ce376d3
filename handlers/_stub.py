"""Placeholder for operations whose issue has not landed: a documented 501 problem."""

from typing import NoReturn

from app.problems import Problem


def not_implemented() -> NoReturn:
    raise Problem("not-implemented", "This operation is specified but not implemented yet.")
