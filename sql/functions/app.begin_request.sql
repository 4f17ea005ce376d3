-- requires: 0003
--
-- The first statement of every authenticated API transaction. Sets app.org_id and
-- app.user_id, then reads (through RLS, as the caller) the caller's current role and status
-- from their session, user and organization rows. When the session is revoked or expired,
-- the user is not ACTIVE or is deleted, or the organization is not ACTIVE or is deleted, it
-- clears the context again and returns no row; otherwise it sets app.role and returns one.

CREATE OR REPLACE FUNCTION app.begin_request(p_org uuid, p_user uuid, p_session uuid)
    RETURNS TABLE (role public.user_role, status public.user_status,
                   email varchar, full_name varchar)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role      public.user_role;
    v_status    public.user_status;
    v_email     varchar;
    v_full_name varchar;
BEGIN
    PERFORM pg_catalog.set_config('app.org_id', coalesce(p_org::text, ''), true),
            pg_catalog.set_config('app.user_id', coalesce(p_user::text, ''), true),
            pg_catalog.set_config('app.role', '', true);

    SELECT u.role, u.status, u.email, u.full_name
      INTO v_role, v_status, v_email, v_full_name
      FROM public.sessions AS s
      JOIN public.users AS u
        ON u.organization_id = s.organization_id AND u.id = s.user_id
      JOIN public.organizations AS o
        ON o.id = u.organization_id
     WHERE s.organization_id = p_org
       AND s.id = p_session
       AND s.user_id = p_user
       AND s.revoked_at IS NULL
       AND s.expires_at > pg_catalog.now()
       AND u.status = 'ACTIVE'
       AND u.deleted_at IS NULL
       AND o.status = 'ACTIVE'
       AND o.deleted_at IS NULL;

    IF NOT FOUND THEN
        PERFORM pg_catalog.set_config('app.org_id', '', true),
                pg_catalog.set_config('app.user_id', '', true),
                pg_catalog.set_config('app.role', '', true);
        RETURN;
    END IF;

    PERFORM pg_catalog.set_config('app.role', v_role::text, true);
    role := v_role;
    status := v_status;
    email := v_email;
    full_name := v_full_name;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION app.begin_request(uuid, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.begin_request(uuid, uuid, uuid) TO coditect_app, coditect_system;
