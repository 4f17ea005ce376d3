"""Named SQL queries loaded from sql/queries/<tag>.sql (aiosql-style `-- name:` blocks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from db.resources import sql_dir

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# `:param` binds, but not `::type` casts or `:=`.
_BIND = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)\b(?!=)")


@dataclass(frozen=True)
class Query:
    name: str
    text: str  # as written, with :name binds
    sql: str  # psycopg form, with %(name)s binds


class Queries:
    """The queries of one file, as attributes: `queries("projects").list_projects`."""

    def __init__(self, tag: str, found: dict[str, Query]):
        self._tag = tag
        self._found = found

    def __getattr__(self, name: str) -> Query:
        try:
            return self._found[name]
        except KeyError:
            raise AttributeError(f"no query {name!r} in sql/queries/{self._tag}.sql") from None

    def names(self) -> list[str]:
        return sorted(self._found)


def parse(source: str) -> dict[str, Query]:
    found: dict[str, Query] = {}
    parts = _NAME.split(source)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        text = body.strip().rstrip(";").strip()
        if name in found:
            raise ValueError(f"query {name!r} defined twice")
        escaped = text.replace("%", "%%")
        found[name] = Query(name=name, text=text, sql=_BIND.sub(r"%(\1)s", escaped))
    return found


@cache
def queries(tag: str) -> Queries:
    path = sql_dir() / "queries" / f"{tag}.sql"
    return Queries(tag, parse(path.read_text(encoding="utf-8")))
