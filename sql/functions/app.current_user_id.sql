-- requires: 0001
--
-- The caller (setting app.user_id), NULL when unset. Inlined like app.current_org_id: see
-- app.current_org_id.sql for why its body is spelled this way.

CREATE OR REPLACE FUNCTION app.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('app.user_id', true) OPERATOR(pg_catalog.=) ''
                THEN NULL
                ELSE pg_catalog.current_setting('app.user_id', true)::pg_catalog.uuid
           END
$$;

REVOKE ALL ON FUNCTION app.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_user_id() TO coditect_app, coditect_system;
