"""Operations of the `projects` tag (stubs until their issue lands)."""

from typing import Any, NoReturn

from handlers._stub import not_implemented


async def list_projects(**_: Any) -> NoReturn:
    not_implemented()


async def create_project(**_: Any) -> NoReturn:
    not_implemented()


async def get_project(**_: Any) -> NoReturn:
    not_implemented()


async def update_project(**_: Any) -> NoReturn:
    not_implemented()


async def delete_project(**_: Any) -> NoReturn:
    not_implemented()
