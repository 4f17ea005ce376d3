"""The migration runner: up, down, up again; status; the lock; file discovery."""

from __future__ import annotations

import hashlib
import re
import shutil
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
    assert before.stale_functions == ()  # none of their migrations is applied
    assert not before.is_current
    migrations.apply(db.admin_dsn)
    for dsn in (db.app_dsn, db.system_dsn, db.admin_dsn):
        after = migrations.status(dsn)
        assert (after.current, after.expected, after.pending) == (expected, expected, ())
        assert after.stale_functions == ()
        assert after.is_current
    with psycopg.connect(db.app_dsn) as conn:
        rows = conn.execute("select version, name from schema_migrations order by 1").fetchall()
        assert [r[0] for r in rows] == list(before.pending)
        assert rows[0][1] == migrations.discover()[0].name
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from schema_migrations")
    with psycopg.connect(db.app_dsn) as conn:
        assert dict(conn.execute("select name, checksum from schema_functions")) == (
            shipped_functions()
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from schema_functions")


def apply_concurrently(dsn: str, migrators: int = 3) -> list[list[str]]:
    """What each of several migrators started at once returned, shortest first."""
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(migrators)

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrations.apply(dsn))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(migrators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return sorted(results, key=len)


def test_concurrent_migrators_apply_each_migration_once(
    make_database: Callable[[], Any],
) -> None:
    db = make_database()
    versions = [m.version for m in migrations.discover()]
    assert apply_concurrently(db.admin_dsn) == [[], [], versions]


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
    (tmp_path / "migrations" / "2-typo.up.sql").unlink()

    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "app.f.sql").write_text("CREATE OR REPLACE FUNCTION app.f() ...;\n")
    with pytest.raises(migrations.MigrationError, match="requires: NNNN"):
        migrations.discover()
    (functions / "app.f.sql").write_text("-- requires: 0002\nCREATE OR REPLACE FUNCTION ...;\n")
    with pytest.raises(migrations.MigrationError, match="requires 0002, which is not a migration"):
        migrations.discover()
    (functions / "app.f.sql").write_text("-- requires: 0001\nCREATE OR REPLACE FUNCTION ...;\n")
    (first,) = migrations.discover()
    assert [(f.name, f.requires) for f in first.functions] == [("app.f", "0001")]
    (functions / "f.sql").write_text("-- requires: 0001\n")
    with pytest.raises(migrations.MigrationError, match=r"not named <schema>\.<function>\.sql"):
        migrations.discover()


def test_shipped_migrations_are_paired_and_numbered() -> None:
    found = migrations.discover()
    versions = [m.version for m in found]
    # Numbers may be reserved by work in progress (0019 was taken while 0012-0018 were
    # being written), so gaps are allowed; the order is the numbers' order.
    assert versions[0] == "0001"
    assert versions == sorted(set(versions))
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


def test_each_function_is_defined_once_in_its_own_file(database: Any) -> None:
    files = [f for m in migrations.discover() for f in m.functions]
    for m in migrations.discover():
        for text in (m.up_sql, m.down_sql):
            assert re.search(rb"create\s+(or\s+replace\s+)?function", text.lower()) is None
    for f in files:
        lowered = f.sql.lower()
        # Applied again over the function it created, so never a bare CREATE FUNCTION.
        creates = re.findall(rb"create\s+(?:or\s+replace\s+)?function\s+([a-z_.]+)\(", lowered)
        assert creates == [f.name.encode()], f.path.name
        assert re.search(rb"create\s+function", lowered) is None, f.path.name
        # The runner owns the transaction and the role, and drops the function on rollback.
        for forbidden in (b"commit;", b"begin;", b"set role", b"drop function"):
            assert forbidden not in lowered, (f.path.name, forbidden)
    # ... and every function of schemas app and pretenant comes from its file.
    with psycopg.connect(database.admin_dsn) as conn:
        found = conn.execute(
            "select n.nspname || '.' || p.proname from pg_proc p"
            " join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('app', 'pretenant')"
        ).fetchall()
    assert sorted(r[0] for r in found) == sorted(f.name for f in files)


def test_role_bootstrap_repairs_drifted_attributes(database: Any) -> None:
    with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
        try:
            admin.execute("alter role coditect_app bypassrls inherit")
            admin.execute("alter role coditect_system bypassrls")
            assert migrations.apply(database.admin_dsn) == []
        finally:
            migrations.apply(database.admin_dsn)
        row = admin.execute(
            "select a.rolbypassrls, a.rolinherit, s.rolbypassrls from pg_roles a, pg_roles s"
            " where a.rolname = 'coditect_app' and s.rolname = 'coditect_system'"
        ).fetchone()
        assert row == (False, False, False)


def copy_of_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped sql/ folder that the runner reads instead."""
    copy = tmp_path / "sql"
    shutil.copytree(migrations.sql_dir(), copy)
    monkeypatch.setattr(migrations, "sql_dir", lambda: copy)
    return copy


def function_states(dsn: str) -> dict[str, tuple[Any, ...]]:
    """Per function of app and pretenant: its body's md5, its pg_proc row's xmin, and its
    recorded checksum with that row's xmin (equal xmins: written by one transaction)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select n.nspname || '.' || p.proname, md5(p.prosrc), p.xmin::text,"
            "       f.checksum, f.xmin::text"
            "  from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            "  left join schema_functions f on f.name = n.nspname || '.' || p.proname"
            " where n.nspname in ('app', 'pretenant')"
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_a_changed_function_file_is_applied_again_and_nothing_else(
    make_database: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    copy = copy_of_sql(tmp_path, monkeypatch)
    migrations.apply(db.admin_dsn)
    full = snapshot(db.admin_dsn)
    before = function_states(db.admin_dsn)
    path = copy / "functions" / "pretenant.organization_tier.sql"
    original = path.read_text()
    path.write_text(original.replace("SELECT max(l.tier)", "SELECT pg_catalog.max(l.tier)"))
    changed = hashlib.sha256(path.read_bytes()).hexdigest()

    state = migrations.status(db.app_dsn)
    assert state.stale_functions == ("pretenant.organization_tier",)
    assert not state.is_current
    assert migrations.apply(db.admin_dsn) == []
    after = function_states(db.admin_dsn)
    assert {name for name in after if after[name] != before[name]} == {
        "pretenant.organization_tier"
    }
    body, proc_xmin, checksum, recorded_xmin = after["pretenant.organization_tier"]
    assert body != before["pretenant.organization_tier"][0]
    assert checksum == changed
    assert proc_xmin == recorded_xmin  # the function and its checksum: one transaction
    assert migrations.status(db.app_dsn).is_current

    # Unchanged files are not run again.
    assert migrations.apply(db.admin_dsn) == []
    assert function_states(db.admin_dsn) == after

    # Back to the shipped file: back to the shipped function, owner and grants included.
    path.write_text(original)
    assert migrations.apply(db.admin_dsn) == []
    assert snapshot(db.admin_dsn) == full
    assert (
        function_states(db.admin_dsn)["pretenant.organization_tier"][0]
        == (before["pretenant.organization_tier"][0])
    )


def test_a_failing_function_file_changes_neither_the_function_nor_its_checksum(
    make_database: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    copy = copy_of_sql(tmp_path, monkeypatch)
    migrations.apply(db.admin_dsn)
    before = function_states(db.admin_dsn)
    path = copy / "functions" / "pretenant.organization_tier.sql"
    original = path.read_text()
    path.write_text(
        original.replace("SELECT max(l.tier)", "SELECT pg_catalog.max(l.tier)")
        + "SELECT no_such_function();\n"
    )
    with pytest.raises(migrations.MigrationError, match=r"pretenant\.organization_tier\.sql"):
        migrations.apply(db.admin_dsn)
    assert function_states(db.admin_dsn) == before
    assert migrations.status(db.app_dsn).stale_functions == ("pretenant.organization_tier",)

    path.write_text(original)
    assert migrations.apply(db.admin_dsn) == []
    assert function_states(db.admin_dsn) == before
    assert migrations.status(db.app_dsn).is_current


def test_a_function_file_must_create_the_function_it_is_named_for(
    make_database: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    copy = copy_of_sql(tmp_path, monkeypatch)
    (copy / "functions" / "app.nothing.sql").write_text(
        "-- requires: 0001\nCREATE OR REPLACE FUNCTION app.something() RETURNS int"
        " LANGUAGE sql AS $$ SELECT 1 $$;\n"
    )
    with pytest.raises(migrations.MigrationError, match=r"creates no function app\.nothing"):
        migrations.apply(db.admin_dsn)
    assert migrations.status(db.admin_dsn).current is None  # 0001 rolled back with it


def test_rolling_back_drops_every_overload_of_a_function_file(
    make_database: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    copy = copy_of_sql(tmp_path, monkeypatch)
    last = migrations.expected_version()
    probe = copy / "functions" / "app.probe.sql"
    template = (
        f"-- requires: {last}\n"
        "CREATE OR REPLACE FUNCTION app.probe(p {}) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
    )
    probe.write_text(template.format("integer"))
    migrations.apply(db.admin_dsn)
    # An argument list changed in the file creates a second function: both go on rollback.
    probe.write_text(template.format("text"))
    assert migrations.apply(db.admin_dsn) == []
    assert sorted(r[2] for r in snapshot(db.admin_dsn)["functions"] if r[1] == "probe") == [
        "p integer",
        "p text",
    ]
    assert migrations.rollback(db.admin_dsn) == last
    assert [r for r in snapshot(db.admin_dsn)["functions"] if r[1] == "probe"] == []
    assert "app.probe" not in recorded_functions(db.admin_dsn)
    assert migrations.apply(db.admin_dsn) == [last]
    assert [r[2] for r in snapshot(db.admin_dsn)["functions"] if r[1] == "probe"] == ["p text"]


def test_a_removed_function_file_is_forgotten(
    make_database: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    copy = copy_of_sql(tmp_path, monkeypatch)
    migrations.apply(db.admin_dsn)
    full = snapshot(db.admin_dsn)
    path = copy / "functions" / "pretenant.organization_tier.sql"
    original = path.read_bytes()
    path.unlink()
    assert migrations.apply(db.admin_dsn) == []
    assert "pretenant.organization_tier" not in recorded_functions(db.admin_dsn)
    # Dropping the function is a migration's business; here the admin does it. When the file
    # comes back, its function does too.
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        conn.execute("drop function pretenant.organization_tier(uuid)")
    path.write_bytes(original)
    assert migrations.apply(db.admin_dsn) == []
    assert snapshot(db.admin_dsn) == full


def test_a_database_migrated_before_function_files_gets_each_file_once(
    make_database: Callable[[], Any],
) -> None:
    db = make_database()
    migrations.apply(db.admin_dsn)
    full = snapshot(db.admin_dsn)
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        conn.execute("drop table schema_functions")
    state = migrations.status(db.app_dsn)
    assert state.pending == ()
    assert sorted(state.stale_functions) == sorted(shipped_functions())
    # CREATE OR REPLACE over each existing function, with its privileges: the same catalog.
    assert migrations.apply(db.admin_dsn) == []
    assert snapshot(db.admin_dsn) == full
    assert recorded_functions(db.admin_dsn) == shipped_functions()
    assert migrations.status(db.app_dsn).is_current


def test_concurrent_migrators_apply_each_function_file_once(
    make_database: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_database()
    copy = copy_of_sql(tmp_path, monkeypatch)
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        conn.execute("create sequence public.probe_runs")
        conn.execute("grant usage on sequence public.probe_runs to public")
    probe = copy / "functions" / "app.probe.sql"
    template = (
        "-- requires: 0001\n"
        "CREATE OR REPLACE FUNCTION app.probe() RETURNS int LANGUAGE sql AS $$ SELECT {} $$;\n"
        "SELECT pg_catalog.nextval('public.probe_runs');\n"
    )

    def runs() -> int:
        with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
            row = conn.execute("select last_value, is_called from public.probe_runs").fetchone()
        assert row is not None
        return int(row[0]) if row[1] else 0

    probe.write_text(template.format(1))
    versions = [m.version for m in migrations.discover()]
    assert apply_concurrently(db.admin_dsn) == [[], [], versions]
    assert runs() == 1
    probe.write_text(template.format(2))
    assert apply_concurrently(db.admin_dsn) == [[], [], []]
    assert runs() == 2
