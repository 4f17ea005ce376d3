-- Let PostgreSQL inline the RLS helpers, and drop an unused pretenant function.
--
-- 1. app.current_org_id, app.current_user_id, app.current_role and app.role_at_least lose
--    their SET search_path. A function with a SET clause is never inlined: every policy's
--    (SELECT app.current_org_id()) became an InitPlan calling the SQL function through
--    fmgr, with a GUC save/restore around it, which cost about as much as the list query
--    itself. Without the SET clause (and being LANGUAGE sql, STABLE, SECURITY INVOKER, one
--    SELECT without FROM), the planner replaces the call by the function's expression, so
--    the InitPlan just reads current_setting().
--
--    An inlined body is parsed when the calling query is planned, under the caller's
--    search_path, so the pinned path is replaced by bodies that resolve nothing through
--    search_path: every function, type and operator is schema-qualified (pg_catalog.*,
--    public.user_role, app.*, OPERATOR(pg_catalog.=)). nullif() is spelled as a CASE because
--    NULLIF looks its "=" up through search_path (the CASE reads the setting twice, which
--    costs next to nothing); coalesce and CASE themselves resolve nothing. (The temporary schema is searched first for type names unless listed, so an
--    unqualified ::uuid could be hijacked by a temporary type; qualified, it cannot.)
--    CREATE OR REPLACE keeps each function's owner (coditect_owner) and grants (0005, 0007);
--    every other function in schemas app and pretenant keeps its pinned search_path.
--
-- 2. pretenant.license_by_key (0006) is dropped: nothing calls it; license validation goes
--    through pretenant.validate_license (0008).

CREATE OR REPLACE FUNCTION app.current_org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('app.org_id', true) OPERATOR(pg_catalog.=) ''
                THEN NULL
                ELSE pg_catalog.current_setting('app.org_id', true)::pg_catalog.uuid
           END
$$;

CREATE OR REPLACE FUNCTION app.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('app.user_id', true) OPERATOR(pg_catalog.=) ''
                THEN NULL
                ELSE pg_catalog.current_setting('app.user_id', true)::pg_catalog.uuid
           END
$$;

CREATE OR REPLACE FUNCTION app.current_role() RETURNS public.user_role
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('app.role', true) OPERATOR(pg_catalog.=) ''
                THEN NULL
                ELSE pg_catalog.current_setting('app.role', true)::public.user_role
           END
$$;

-- OWNER > ADMIN > MEMBER > GUEST; false when there is no role in the context.
CREATE OR REPLACE FUNCTION app.role_at_least(p_role public.user_role) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT coalesce(
        pg_catalog.array_position('{GUEST,MEMBER,ADMIN,OWNER}'::public.user_role[],
                                  app.current_role())
        OPERATOR(pg_catalog.>=)
        pg_catalog.array_position('{GUEST,MEMBER,ADMIN,OWNER}'::public.user_role[], p_role),
        false)
$$;

DROP FUNCTION pretenant.license_by_key(bytea);
