"""Operations of the `auth` tag (stubs until their issue lands)."""

from typing import Any, NoReturn

from handlers._stub import not_implemented


async def signup(**_: Any) -> NoReturn:
    not_implemented()


async def login(**_: Any) -> NoReturn:
    not_implemented()


async def logout(**_: Any) -> NoReturn:
    not_implemented()


async def refresh_tokens(**_: Any) -> NoReturn:
    not_implemented()


async def get_current_user(**_: Any) -> NoReturn:
    not_implemented()
