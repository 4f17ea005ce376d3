"""Operations of the `licenses` tag (stubs until their issue lands)."""

from typing import Any, NoReturn

from handlers._stub import not_implemented


async def list_licenses(**_: Any) -> NoReturn:
    not_implemented()


async def get_license(**_: Any) -> NoReturn:
    not_implemented()


async def update_license(**_: Any) -> NoReturn:
    not_implemented()


async def validate_license(**_: Any) -> NoReturn:
    not_implemented()
