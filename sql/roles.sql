-- Cluster bootstrap for CODITECT Cloud: the three database roles and the owner's rights.
--
-- Run by the admin connection before the migrations on every `migrate`; idempotent. Roles
-- are cluster-wide, so this also repairs attributes that drifted. The admin is either a
-- superuser or, on managed PostgreSQL (Cloud SQL, RDS, Azure), a login with only CREATEROLE
-- and CREATEDB that owns the database: nothing here needs more (tests/db/test_managed.py).
-- Never put passwords here: set them out of band (ALTER ROLE ... PASSWORD, IAM, etc.).
--
--   coditect_owner   owns every schema object and runs the migrations (SET ROLE);
--                    subject to RLS like anyone else (tables use FORCE ROW LEVEL SECURITY).
--   coditect_app     the API server's login: no superuser, no BYPASSRLS, owns nothing;
--                    only SELECT/INSERT/UPDATE/DELETE through RLS policies.
--   coditect_system  background jobs and the CLI: no BYPASSRLS (a managed service cannot
--                    grant it); crosses tenants only through the policies TO coditect_system
--                    (migration 0019), one per table and command it uses. Also owns the
--                    SECURITY DEFINER functions of schema pretenant.

DO $roles$
BEGIN
    -- Create the roles that are missing. A concurrent bootstrap on another database of the
    -- same cluster may create a role first: that is fine.
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'coditect_owner') THEN
            CREATE ROLE coditect_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                INHERIT;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'coditect_app') THEN
            CREATE ROLE coditect_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                NOINHERIT;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'coditect_system') THEN
            CREATE ROLE coditect_system LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                INHERIT;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;

    -- Repair drifted attributes, touching only what differs (ALTER ROLE ... NOSUPERUSER
    -- needs a true superuser even when nothing would change).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'coditect_app'
               AND (rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolinherit
                    OR NOT rolcanlogin)) THEN
        ALTER ROLE coditect_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'coditect_owner'
               AND (rolsuper OR rolbypassrls OR NOT rolcanlogin)) THEN
        ALTER ROLE coditect_owner LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'coditect_system'
               AND (rolsuper OR rolbypassrls OR NOT rolcanlogin)) THEN
        -- Databases set up before 0019 gave it BYPASSRLS; their admin is a superuser, the
        -- only one who may take it away.
        ALTER ROLE coditect_system LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;

    -- The admin runs the migrations as coditect_owner (SET LOCAL ROLE), which a superuser
    -- may always do. A CREATEROLE admin needs membership with SET: PostgreSQL 16+ gives the
    -- creator of a role only ADMIN OPTION on it (createrole_self_grant is empty by default),
    -- with which it may grant itself SET (not INHERIT: it acts as the owner only when it
    -- says so); PostgreSQL 15's CREATEROLE may grant any non-superuser role, with no options.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        IF pg_catalog.current_setting('server_version_num')::int >= 160000 THEN
            IF NOT pg_catalog.pg_has_role(current_user, 'coditect_owner', 'SET') THEN
                -- EXECUTE: PostgreSQL 15 could not parse the WITH options.
                EXECUTE format('GRANT coditect_owner TO %I WITH INHERIT FALSE, SET TRUE',
                               current_user);
            END IF;
        ELSIF NOT pg_catalog.pg_has_role(current_user, 'coditect_owner', 'MEMBER') THEN
            EXECUTE format('GRANT coditect_owner TO %I', current_user);
        END IF;
    END IF;

    -- The owner must be able to hand the SECURITY DEFINER functions to coditect_system
    -- (ALTER FUNCTION ... OWNER TO needs membership with SET; GRANT's default gives it) and
    -- to replace them (CREATE OR REPLACE needs the owner's privileges: INHERIT). The
    -- policies TO coditect_system test current_user, so they still never apply to the owner.
    IF NOT pg_catalog.pg_has_role('coditect_owner', 'coditect_system', 'MEMBER') THEN
        BEGIN
            GRANT coditect_system TO coditect_owner;
        EXCEPTION WHEN unique_violation THEN  -- granted concurrently
            NULL;
        END;
    END IF;

    -- Defense in depth: the app role must never be a member of a more powerful role.
    IF pg_catalog.pg_has_role('coditect_app', 'coditect_owner', 'MEMBER')
       OR pg_catalog.pg_has_role('coditect_app', 'coditect_system', 'MEMBER') THEN
        RAISE EXCEPTION 'coditect_app must not be a member of coditect_owner or coditect_system';
    END IF;
END
$roles$;

-- Database-level rights: the owner creates the schemas app and pretenant (CREATE on the
-- database) and the tables in public (CREATE on schema public). Nobody else creates in
-- public (the PostgreSQL 15+ default, restated for databases upgraded from older versions).
DO $grants$
BEGIN
    EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO coditect_owner',
                   pg_catalog.current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO coditect_app, coditect_system',
                   pg_catalog.current_database());
END
$grants$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO coditect_owner;
GRANT USAGE ON SCHEMA public TO coditect_app, coditect_system;

-- PostgreSQL logs no row data for the app's and the system's sessions. A failing constraint
-- logs "DETAIL: Failing row contains (...)", the whole row (a user's row holds its password
-- hash), and a logged statement logs its bound parameters. For these two roles: terse error
-- entries (no DETAIL, HINT, QUERY or CONTEXT: the message still names the constraint) and no
-- parameter values. Every one of these is superuser-only (pg_settings.context) but the last,
-- and SET for a session when the role logs in, so only the admin can make them stick: a
-- superuser, or one granted SET ON PARAMETER (PostgreSQL 15+). A managed database's admin is
-- neither: it warns, and the operator sets them in the server's flags or parameter group.
DO $logging$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['coditect_app', 'coditect_system'] LOOP
        -- Only when they differ: every migrate runs this, on any database of the cluster.
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_db_role_setting s
            JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
            WHERE r.rolname = role_name AND s.setdatabase = 0
              AND s.setconfig @> ARRAY['log_error_verbosity=terse', 'log_parameter_max_length=0',
                                       'log_parameter_max_length_on_error=0']);
        EXECUTE format('ALTER ROLE %I SET log_error_verbosity = terse', role_name);
        EXECUTE format('ALTER ROLE %I SET log_parameter_max_length = 0', role_name);
        EXECUTE format('ALTER ROLE %I SET log_parameter_max_length_on_error = 0', role_name);
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'cannot set log_error_verbosity = terse and log_parameter_max_length = 0 for'
        ' coditect_app and coditect_system: set them in the server''s configuration, or'
        ' PostgreSQL may log row data (a failing row, with its password hash)';
END
$logging$;
