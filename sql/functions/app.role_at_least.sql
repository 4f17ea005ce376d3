-- requires: 0001
--
-- OWNER > ADMIN > MEMBER > GUEST; false when there is no role in the context.
-- Inlined like app.current_org_id: see app.current_org_id.sql for why its body is spelled
-- this way. (Its body calls app.current_role, created first: the file name sorts first.)

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

REVOKE ALL ON FUNCTION app.role_at_least(public.user_role) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.role_at_least(public.user_role) TO coditect_app, coditect_system;
