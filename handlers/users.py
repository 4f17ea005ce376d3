"""Operations of the `users` tag (stubs until their issue lands)."""

from typing import Any, NoReturn

from handlers._stub import not_implemented


async def list_users(**_: Any) -> NoReturn:
    not_implemented()


async def create_user(**_: Any) -> NoReturn:
    not_implemented()


async def get_user(**_: Any) -> NoReturn:
    not_implemented()


async def update_user(**_: Any) -> NoReturn:
    not_implemented()


async def delete_user(**_: Any) -> NoReturn:
    not_implemented()
