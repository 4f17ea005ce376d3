"""The migration runner: up, down, up again; status; the lock; file discovery."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from db import migrations

# Everything the migrations and function files create, as comparable text. The runner's own
# tables (schema_migrations, schema_functions) outlive a full rollback.
RUNNER_TABLES = ("schema_migrations", "schema_functions")

SNAPSHOT = {
    "schemas": """
        select nspname, nspowner::regrole::text, coalesce(nspacl::text, '') from pg_namespace
         where nspname not like 'pg\\_%' and nspname <> 'information_schema'""",
    "relations": """
        select n.nspname, c.relname, c.relkind, c.relowner::regrole::text,
               coalesce(c.relacl::text, ''), c.relrowsecurity, c.relforcerowsecurity
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('public', 'app', 'pretenant')""",
    "columns": """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), '')
          from pg_attribute a join pg_class c on c.oid = a.attrelid
          left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where c.relnamespace = 'public'::regnamespace and a.attnum > 0
           and not a.attisdropped and c.relkind = 'r'""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint
         where connamespace = 'public'::regnamespace""",
    "indexes": "select indexname, indexdef from pg_indexes where schemaname = 'public'",
    "policies": """
        select tablename, policyname, cmd, coalesce(qual, ''), coalesce(with_check, '')
          from pg_policies""",
    "triggers": """
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) from pg_trigger
         where not tgisinternal""",
    "functions": """
        select n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               p.proowner::regrole::text, coalesce(p.proacl::text, ''), p.prosecdef,
               coalesce(p.proconfig::text, ''), p.provolatile, p.proparallel,
               pg_get_function_result(p.oid), md5(p.prosrc)
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('public', 'app', 'pretenant')""",
    "types": """
        select t.typname, t.typtype, t.typowner::regrole::text from pg_type t
         where t.typnamespace in ('public'::regnamespace) and t.typtype in ('e', 'd', 'c')
           and not exists (select 1 from pg_class c where c.oid = t.typrelid
                           and c.relkind <> 'c')""",
}


# The same, with a relation's absent ACL spelled as the default it stands for: a REVOKE of
# every grant (0007's rollback) leaves the owner's default privileges written out.
EFFECTIVE_SNAPSHOT = {
    **SNAPSHOT,
    "relations": """
        select n.nspname, c.relname, c.relkind, c.relowner::regrole::text,
               coalesce(c.relacl,
                        acldefault(case c.relkind when 'S' then 's' else 'r' end::"char",
                                   c.relowner))::text,
               c.relrowsecurity, c.relforcerowsecurity
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('public', 'app', 'pretenant')""",
}


def snapshot(dsn: str, queries: dict[str, str] = SNAPSHOT) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {name: sorted(conn.execute(query).fetchall()) for name, query in queries.items()}


def recorded_functions(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return dict(conn.execute("select name, checksum from schema_functions").fetchall())


def shipped_functions() -> dict[str, str]:
    return {f.name: f.checksum for m in migrations.discover() for f in m.functions}


def test_up_down_up(make_database: Callable[[], Any]) -> None:
    db = make_database()
    versions = [m.version for m in migrations.discover()]
    assert len(versions) >= 7
    empty = snapshot(db.admin_dsn)
    assert migrations.rollback(db.admin_dsn) is None

    assert migrations.apply(db.admin_dsn) == versions
    full = snapshot(db.admin_dsn)
    assert recorded_functions(db.admin_dsn) == shipped_functions()
    assert migrations.apply(db.admin_dsn) == []
    assert snapshot(db.admin_dsn) == full

    # Each depth of rollback, then up again, lands exactly on the full schema.
    for depth in range(1, len(versions) + 1):
        rolled = [migrations.rollback(db.admin_dsn) for _ in range(depth)]
        assert rolled == versions[::-1][:depth]
        state = migrations.status(db.admin_dsn)
        assert state.pending == tuple(versions[-depth:])
        assert not state.is_current
        assert migrations.apply(db.admin_dsn) == versions[-depth:]
        assert snapshot(db.admin_dsn) == full

    # All the way down: nothing of ours is left but the runner's own tables, and they are empty.
    for _ in versions:
        migrations.rollback(db.admin_dsn)
    assert migrations.rollback(db.admin_dsn) is None
    bare = snapshot(db.admin_dsn)
    ours = [r for r in bare["relations"] if not r[1].startswith(RUNNER_TABLES)]
    assert ours == []
    assert recorded_functions(db.admin_dsn) == {}
    assert bare["functions"] == []
    assert bare["types"] == []
    assert bare["policies"] == []
    assert {r[0] for r in bare["schemas"]} == {r[0] for r in empty["schemas"]} == {"public"}

    assert migrations.apply(db.admin_dsn) == versions
    assert snapshot(db.admin_dsn) == full
    assert migrations.status(db.app_dsn).is_current


def test_each_rollback_restores_the_schema_its_migration_started_from(
    make_database: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    shipped = migrations.discover()
    # before[n]: the schema with the first n migrations applied (n = 0: the runner's table).
    before: list[dict[str, list[tuple[Any, ...]]]] = []
    for n in range(len(shipped) + 1):
        monkeypatch.setattr(migrations, "discover", lambda n=n: shipped[:n])
        assert migrations.apply(db.admin_dsn) == [m.version for m in shipped[n - 1 : n]]
        before.append(snapshot(db.admin_dsn, EFFECTIVE_SNAPSHOT))
    monkeypatch.undo()
    for n in range(len(shipped), 0, -1):
        migration = shipped[n - 1]
        assert migrations.rollback(db.admin_dsn) == migration.version
        after = snapshot(db.admin_dsn, EFFECTIVE_SNAPSHOT)
        assert after == before[n - 1], migration.down_path.name


def test_status(make_database: Callable[[], Any]) -> None:
    db = make_database()
    expected = migrations.expected_version()
    before = migrations.status(db.admin_dsn)
    assert before.current is None
    assert before.expected == expected
    assert before.pending == tuple(m.version for m in migrations.discover())
    assert not before.is_current
    migrations.apply(db.admin_dsn)
    for dsn in (db.app_dsn, db.system_dsn, db.admin_dsn):
        after = migrations.status(dsn)
        assert (after.current, after.expected, after.pending) == (expected, expected, ())
        assert after.is_current
    with psycopg.connect(db.app_dsn) as conn:
        rows = conn.execute("select version, name from schema_migrations order by 1").fetchall()
        assert [r[0] for r in rows] == list(before.pending)
        assert rows[0][1] == migrations.discover()[0].name
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from schema_migrations")


def test_concurrent_migrators_apply_each_migration_once(
    make_database: Callable[[], Any],
) -> None:
    db = make_database()
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrations.apply(db.admin_dsn))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    versions = [m.version for m in migrations.discover()]
    assert sorted(results, key=len) == [[], [], versions]


def test_a_failing_migration_leaves_nothing_behind(
    make_database: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    copy = tmp_path / "sql"
    (copy / "migrations").mkdir(parents=True)
    real = migrations.sql_dir()
    (copy / "roles.sql").write_bytes((real / "roles.sql").read_bytes())
    for m in migrations.discover()[:1]:
        for path in (m.up_path, m.down_path):
            (copy / "migrations" / path.name).write_bytes(path.read_bytes())
    (copy / "migrations" / "0002_broken.up.sql").write_text(
        "CREATE TABLE public.half_done (id int);\nSELECT no_such_function();\n"
    )
    (copy / "migrations" / "0002_broken.down.sql").write_text("DROP TABLE public.half_done;\n")
    monkeypatch.setattr(migrations, "sql_dir", lambda: copy)

    with pytest.raises(migrations.MigrationError, match=r"0002_broken\.up\.sql"):
        migrations.apply(db.admin_dsn)
    state = migrations.status(db.admin_dsn)
    assert (state.current, state.pending) == ("0001", ("0002",))
    with psycopg.connect(db.admin_dsn) as conn:
        assert conn.execute("select to_regclass('public.half_done')").fetchone() == (None,)
    assert migrations.rollback(db.admin_dsn) == "0001"


def test_discover_rejects_inconsistent_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "migrations").mkdir()
    monkeypatch.setattr(migrations, "sql_dir", lambda: tmp_path)
    with pytest.raises(migrations.MigrationError, match="no migrations"):
        migrations.discover()
    (tmp_path / "migrations" / "0001_first.up.sql").write_text("select 1;")
    with pytest.raises(migrations.MigrationError, match="no down file"):
        migrations.discover()
    (tmp_path / "migrations" / "0001_first.down.sql").write_text("select 1;")
    assert [m.version for m in migrations.discover()] == ["0001"]
    (tmp_path / "migrations" / "2-typo.up.sql").write_text("select 1;")
    with pytest.raises(migrations.MigrationError, match="not named"):
        migrations.discover()


def test_shipped_migrations_are_paired_and_numbered() -> None:
    found = migrations.discover()
    assert [m.version for m in found] == [f"{i:04d}" for i in range(1, len(found) + 1)]
    for m in found:
        assert m.up_sql.strip()
        assert m.down_sql.strip()
        for text in (m.up_sql, m.down_sql):
            lowered = text.lower()
            # The runner owns the transaction and the role.
            assert b"commit;" not in lowered
            assert b"begin;" not in lowered
            assert b"set role" not in lowered
            assert re.search(rb"password\s+'", lowered) is None  # never passwords in SQL
    roles = (migrations.sql_dir() / "roles.sql").read_bytes().lower()
    assert re.search(rb"password\s+'", roles) is None


def test_role_bootstrap_repairs_drifted_attributes(database: Any) -> None:
    with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
        try:
            admin.execute("alter role coditect_app bypassrls inherit")
            admin.execute("alter role coditect_system nobypassrls")
            assert migrations.apply(database.admin_dsn) == []
        finally:
            migrations.apply(database.admin_dsn)
        row = admin.execute(
            "select a.rolbypassrls, a.rolinherit, s.rolbypassrls from pg_roles a, pg_roles s"
            " where a.rolname = 'coditect_app' and s.rolname = 'coditect_system'"
        ).fetchone()
        assert row == (False, False, True)
