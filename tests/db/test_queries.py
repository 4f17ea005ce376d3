"""The named-query loader."""

import re

import pytest

from db.queries import parse, queries
from db.resources import sql_dir

SOURCE = """
-- A file comment.

-- name: get_thing
-- Loads one thing.
select id, data::jsonb as data, '50%' as pct
  from things
 where organization_id = :organization_id and id = :id;

-- name: count_things
select count(*) from things where created_at > :since::timestamptz
"""


def test_blocks_are_named_and_binds_become_psycopg_style() -> None:
    found = parse(SOURCE)
    assert sorted(found) == ["count_things", "get_thing"]
    get = found["get_thing"]
    assert "%(organization_id)s" in get.sql
    assert "%(id)s" in get.sql
    assert "::jsonb" in get.sql
    assert ":id" in get.text
    assert "'50%%'" in get.sql, "literal percent signs must be escaped for psycopg"
    assert found["count_things"].sql.endswith("%(since)s::timestamptz")


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse("-- name: a\nselect 1;\n-- name: a\nselect 2;")


def test_unknown_query_names_fail_loudly() -> None:
    with pytest.raises(AttributeError, match="no query 'nope'"):
        _ = queries("session").nope


def test_shipped_files_parse() -> None:
    assert "begin_request" in queries("session").names()


def converted(text: str) -> str:
    """The psycopg form of `text`, loaded as a query of its own."""
    return parse(f"-- name: q\n{text}")["q"].sql


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        # The issue's own example: one bind, not three.
        ("select 'a :b', :c -- :d", "select 'a :b', %(c)s -- :d"),
        # Literals with doubled quotes hide their colons too.
        ("select 'it''s :x', :y", "select 'it''s :x', %(y)s"),
        # A backslash escapes nothing in a plain literal...
        ("select 'C:\\', :y", "select 'C:\\', %(y)s"),
        # ...but does in an E'' literal, either case of E...
        ("select e'it\\'s :x', :y", "select e'it\\'s :x', %(y)s"),
        ("select E'\\\\', :y", "select E'\\\\', %(y)s"),
        # ...and only a lone E makes one: here a name ends in e, then a plain literal.
        ("select some_type'C:\\', :y", "select some_type'C:\\', %(y)s"),
        # In an E'' literal '' is a quote too: this one ends after :x, not at it''s.
        ("select E'it''s \\' :x', :y", "select E'it''s \\' :x', %(y)s"),
        ('select "a:b", "say ""hi :x""", :y', 'select "a:b", "say ""hi :x""", %(y)s'),
        ("select $$ it's :x $$, :y", "select $$ it's :x $$, %(y)s"),
        # A tagged body may hold $$ and quotes of its own.
        ("select $fn$ :x $$ ' :z $fn$, :y", "select $fn$ :x $$ ' :z $fn$, %(y)s"),
        # Positional parameters and $ inside names are not dollar quotes.
        ("select $1, :y, $2", "select $1, %(y)s, $2"),
        ("select a$$b, :y, c$$", "select a$$b, %(y)s, c$$"),
        ("select :x -- it's :y\n, :z", "select %(x)s -- it's :y\n, %(z)s"),
        ("select /* it's :a */ :b", "select /* it's :a */ %(b)s"),
        ("select /* a /* :b */ :c */ :d", "select /* a /* :b */ :c */ %(d)s"),
        # `/*/` opens a comment without closing it; `/**/` is a whole one.
        ("select /*/ :x */ :y /**/ :z", "select /*/ :x */ %(y)s /**/ %(z)s"),
        (
            "select :x::int, f(a := :y), '1'::text, a[lo:hi], a[1:2]",
            "select %(x)s::int, f(a := %(y)s), '1'::text, a[lo:hi], a[1:2]",
        ),
        # A bind right before `=` is still one (the regex this replaced left `:id` as is).
        ("select 1 where :id=id", "select 1 where %(id)s=id"),
    ],
)
def test_binds_are_only_found_in_plain_sql(text: str, sql: str) -> None:
    assert converted(text) == sql


def test_every_percent_sign_is_doubled_for_psycopg() -> None:
    # psycopg reads every % of a query it gets parameters for, literals and comments too.
    text = "select '5%', E'%\\'', \"a%b\", $$%$$, 10 % :x -- 100%\n/* % */"
    sql = "select '5%%', E'%%\\'', \"a%%b\", $$%%$$, 10 %% %(x)s -- 100%%\n/* %% */"
    assert converted(text) == sql


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("'abc", "quoted string"),
        ("'it''s", "quoted string"),
        ("E'abc\\'", "quoted string"),
        ('"abc', "quoted identifier"),
        ("$$abc", "dollar-quoted string"),
        ("$a$ abc $b$", "dollar-quoted string"),
        ("/* a /* b */", "/* comment"),
    ],
)
def test_unterminated_literals_and_comments_name_the_query(text: str, what: str) -> None:
    source = f"-- name: fine\nselect 1;\n-- name: broken\nselect 1,\n{text}"
    message = f"query 'broken': unterminated {what} starting on line 2"
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(source)


# An independent reading of what a shipped query binds: the :names outside literals,
# quoted identifiers and comments, found with regular expressions rather than the loader's
# scanner (block comments are taken as not nesting, which the shipped files do not need).
_OPAQUE = re.compile(
    r"""
      (?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'       # E'...', with backslash escapes
    | '(?:[^']|'')*'                        # '...'
    | "(?:[^"]|"")*"                        # "quoted identifier"
    | (?<![\w$])(\$(?:[^\W\d]\w*)?\$).*?\1   # $$...$$ and $tag$...$tag$
    | --[^\n]*                              # -- line comment
    | /\*.*?\*/                             # /* block comment */
    """,
    re.VERBOSE | re.DOTALL,
)
_COLON_NAME = re.compile(r"(?<![\w:]):([A-Za-z_]\w*)")
_PSYCOPG = re.compile(r"%%|%\((\w+)\)s|%")


def _binds_in_text(text: str) -> list[tuple[int, str]]:
    """(offset, name) of every :name in `text` outside literals and comments."""
    masked = _OPAQUE.sub(lambda m: " " * len(m.group()), text)
    return [(m.start(), m.group(1)) for m in _COLON_NAME.finditer(masked)]


def _undo_psycopg(sql: str) -> tuple[str, list[tuple[int, str]]]:
    """`sql` with %(name)s back to :name and %% back to %, and where each bind landed."""
    text = ""
    binds: list[tuple[int, str]] = []
    at = 0
    for m in _PSYCOPG.finditer(sql):
        text += sql[at : m.start()]
        if m.group() == "%%":
            text += "%"
        elif m.group(1) is not None:
            binds.append((len(text), m.group(1)))
            text += ":" + m.group(1)
        else:
            pytest.fail(f"a lone % at {m.start()} in {sql!r}: psycopg would reject it")
        at = m.end()
    return text + sql[at:], binds


SHIPPED = [
    (path.stem, name)
    for path in sorted((sql_dir() / "queries").glob("*.sql"))
    for name in queries(path.stem).names()
]


def test_the_independent_reading_skips_literals_and_comments() -> None:
    text = "select 'a :b', E'\\' :x', \"y:z\", $t$ :u $t$, :c /* :d */ -- :e"
    assert _binds_in_text(text) == [(text.index(":c"), "c")]


def test_every_shipped_file_is_checked() -> None:
    assert {tag for tag, _ in SHIPPED} == {p.stem for p in (sql_dir() / "queries").glob("*.sql")}


@pytest.mark.parametrize(("tag", "name"), SHIPPED, ids=[f"{t}.{n}" for t, n in SHIPPED])
def test_shipped_queries_bind_their_names_outside_literals(tag: str, name: str) -> None:
    query = getattr(queries(tag), name)
    text, binds = _undo_psycopg(query.sql)
    # Nothing but the binds and the doubled % differs from the query as written...
    assert text == query.text
    # ...and the binds are exactly the :names outside literals and comments, in place.
    assert binds == _binds_in_text(query.text)
