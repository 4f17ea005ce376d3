"""The named-query loader."""

import pytest

from db.queries import parse, queries

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
