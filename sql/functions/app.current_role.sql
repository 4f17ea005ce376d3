-- requires: 0001
--
-- The caller's current role (setting app.role, loaded by app.begin_request),
-- NULL when unset. Inlined like app.current_org_id: see app.current_org_id.sql for why
-- its body is spelled this way.

CREATE OR REPLACE FUNCTION app.current_role() RETURNS public.user_role
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('app.role', true) OPERATOR(pg_catalog.=) ''
                THEN NULL
                ELSE pg_catalog.current_setting('app.role', true)::public.user_role
           END
$$;

REVOKE ALL ON FUNCTION app.current_role() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_role() TO coditect_app, coditect_system;
