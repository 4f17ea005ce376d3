-- requires: 0003
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow).
--
-- Opens a session (after the caller verified the password) for an ACTIVE, live user of a
-- live, ACTIVE organization, and records the login time. Returns the session id, or NULL
-- when the user may not log in.

CREATE OR REPLACE FUNCTION pretenant.open_session(
    p_user_id        uuid,
    p_refresh_digest bytea,
    p_expires_at     timestamptz,
    p_user_agent     varchar,
    p_ip             inet)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_org     uuid;
    v_session uuid;
BEGIN
    UPDATE public.users AS u
       SET last_login_at = now()
      FROM public.organizations AS o
     WHERE u.id = p_user_id
       AND u.status = 'ACTIVE'
       AND u.deleted_at IS NULL
       AND o.id = u.organization_id
       AND o.status = 'ACTIVE'
       AND o.deleted_at IS NULL
    RETURNING u.organization_id INTO v_org;

    IF v_org IS NULL THEN
        RETURN NULL;
    END IF;

    INSERT INTO public.sessions (organization_id, user_id, refresh_digest, expires_at,
                                 user_agent, ip)
    VALUES (v_org, p_user_id, p_refresh_digest, p_expires_at, p_user_agent, p_ip)
    RETURNING id INTO v_session;
    RETURN v_session;
END
$$;

REVOKE ALL ON FUNCTION pretenant.open_session(uuid, bytea, timestamptz, varchar, inet) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.open_session(uuid, bytea, timestamptz, varchar, inet)
    OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.open_session(uuid, bytea, timestamptz, varchar, inet)
    TO coditect_app;
