"""Operations of the `organizations` tag (stubs until their issue lands)."""

from typing import Any, NoReturn

from handlers._stub import not_implemented


async def get_organization(**_: Any) -> NoReturn:
    not_implemented()


async def update_organization(**_: Any) -> NoReturn:
    not_implemented()


async def delete_organization(**_: Any) -> NoReturn:
    not_implemented()
