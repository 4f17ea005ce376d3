-- requires: 0001
--
-- Sets the tenant context without any check: for tests and jobs that already know who
-- acts. The API uses app.begin_request instead. Transaction-local (set_config(..., true)).

CREATE OR REPLACE FUNCTION app.set_tenant(p_org uuid, p_user uuid, p_role public.user_role)
    RETURNS void
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.set_config('app.org_id', coalesce(p_org::text, ''), true),
           pg_catalog.set_config('app.user_id', coalesce(p_user::text, ''), true),
           pg_catalog.set_config('app.role', coalesce(p_role::text, ''), true);
$$;

REVOKE ALL ON FUNCTION app.set_tenant(uuid, uuid, public.user_role) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.set_tenant(uuid, uuid, public.user_role)
    TO coditect_app, coditect_system;
