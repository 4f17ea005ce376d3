"""Named SQL queries loaded from sql/queries/<tag>.sql (aiosql-style `-- name:` blocks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from db.resources import sql_dir

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# Tried only where the scanner is in plain SQL. Not after a name or a colon, so array
# slices (`a[lo:hi]`) and casts (`x::int`) stay; `:=` has no name after the colon.
_BIND = re.compile(r"(?<![\w:]):([A-Za-z_]\w*)")
# A keyword, identifier or number. PostgreSQL lets `$` continue an identifier, so `a$$b`
# is one name and not the start of a dollar quote.
_WORD = re.compile(r"\w[\w$]*")
# `$$` or `$tag$`. A tag cannot start with a digit, which is what keeps `$1` a parameter.
_DOLLAR_QUOTE = re.compile(r"\$(?:[^\W\d]\w*)?\$")


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
        found[name] = Query(name=name, text=text, sql=_to_psycopg(name, text))
    return found


def _to_psycopg(query: str, text: str) -> str:
    """`text` with its :name binds as %(name)s and every % doubled, in one pass.

    Binds are only looked for in plain SQL. Literals, quoted identifiers and comments are
    copied whole, but their % are doubled too: psycopg reads every % of a query it is given
    parameters for, without knowing where PostgreSQL's literals are.
    """
    out: list[str] = []
    at = 0
    while at < len(text):
        bind = _BIND.match(text, at)
        if bind:
            out.append(f"%({bind.group(1)})s")
            at = bind.end()
        else:
            end = _token_end(query, text, at)
            out.append(text[at:end].replace("%", "%%"))
            at = end
    return "".join(out)


def _token_end(query: str, text: str, at: int) -> int:
    """Where the token at `at` ends; literals, quoted identifiers and comments end whole."""
    if text.startswith("'", at):
        return _quoted_end(query, text, at, "quoted string")
    if text.startswith('"', at):
        return _quoted_end(query, text, at, "quoted identifier")
    if text.startswith("--", at):
        newline = text.find("\n", at)
        return len(text) if newline < 0 else newline
    if text.startswith("/*", at):
        return _block_comment_end(query, text, at)
    if dollar := _DOLLAR_QUOTE.match(text, at):
        close = text.find(dollar.group(), dollar.end())
        if close < 0:
            raise _unterminated(query, text, at, "dollar-quoted string")
        return close + len(dollar.group())
    if word := _WORD.match(text, at):
        # E'...' is the one literal whose quotes can be escaped with a backslash; only a
        # lone E makes one (`type'...'` is a name, then a plain literal).
        if word.group() in ("E", "e") and text.startswith("'", word.end()):
            return _quoted_end(query, text, word.end(), "quoted string", backslashes=True)
        return word.end()
    # Any other single character, `$` of `$1` included.
    return at + 1


def _quoted_end(query: str, text: str, at: int, what: str, *, backslashes: bool = False) -> int:
    """The end of the '...' or "..." opening at `at`, where a doubled quote is a quote."""
    quote = text[at]
    i = at + 1
    while i < len(text):
        if backslashes and text[i] == "\\":
            i += 2  # whatever is escaped, a quote included
        elif text[i] != quote:
            i += 1
        elif text.startswith(quote, i + 1):
            i += 2
        else:
            return i + 1
    raise _unterminated(query, text, at, what)


def _block_comment_end(query: str, text: str, at: int) -> int:
    """The end of the /* comment */ opening at `at`; PostgreSQL's block comments nest."""
    depth = 0
    i = at
    while i < len(text):
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise _unterminated(query, text, at, "/* comment")


def _unterminated(query: str, text: str, at: int, what: str) -> ValueError:
    line = text.count("\n", 0, at) + 1
    return ValueError(f"query {query!r}: unterminated {what} starting on line {line}")


@cache
def queries(tag: str) -> Queries:
    path = sql_dir() / "queries" / f"{tag}.sql"
    return Queries(tag, parse(path.read_text(encoding="utf-8")))
