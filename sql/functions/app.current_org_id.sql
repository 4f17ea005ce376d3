-- requires: 0001
--
-- The caller's organization (setting app.org_id), NULL when unset.
-- An RLS helper the policies of 0005 call as (SELECT app.current_org_id()).
--
-- It has no SET search_path, so PostgreSQL inlines it: a function with a SET clause is
-- never inlined, and every policy's (SELECT app.f()) then became an InitPlan calling it
-- through fmgr with a GUC save/restore around it, which cost about as much as the list
-- query itself. Without the SET clause (and being LANGUAGE sql, STABLE, SECURITY INVOKER,
-- one SELECT without FROM) the planner replaces the call by the function's expression.
-- An inlined body is parsed when the calling query is planned, under the caller's
-- search_path, so it resolves nothing through search_path: every function, type and
-- operator is schema-qualified (pg_catalog.*, public.user_role, app.*,
-- OPERATOR(pg_catalog.=)). nullif() is spelled as a CASE because NULLIF looks its "=" up
-- through search_path (the CASE reads the setting twice, which costs next to nothing);
-- coalesce and CASE themselves resolve nothing. (The temporary schema is searched first
-- for type names unless listed, so an unqualified ::uuid could be hijacked by a temporary
-- type; qualified, it cannot.) Every other function in schemas app and pretenant keeps a
-- pinned search_path.
-- (The tenant context and how the policies use it: 0005_rls_helpers_policies.up.sql.)

CREATE OR REPLACE FUNCTION app.current_org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('app.org_id', true) OPERATOR(pg_catalog.=) ''
                THEN NULL
                ELSE pg_catalog.current_setting('app.org_id', true)::pg_catalog.uuid
           END
$$;

REVOKE ALL ON FUNCTION app.current_org_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_org_id() TO coditect_app, coditect_system;
