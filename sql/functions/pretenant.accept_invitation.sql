-- requires: 0013
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow).
--
-- Accepts an invitation: when p_token_digest is an unused, unrevoked, unexpired invitation
-- of a live INVITED user of a live, ACTIVE organization, spends it, sets the password, makes
-- the user ACTIVE, opens the first session and records 'user.invitation_accepted'. Returns
-- the user, organization and session ids, or no row (and changes nothing) otherwise.

CREATE OR REPLACE FUNCTION pretenant.accept_invitation(
    p_token_digest   bytea,
    p_password_hash  varchar,
    p_refresh_digest bytea,
    p_expires_at     timestamptz,
    p_user_agent     varchar,
    p_ip             inet,
    p_request_id     varchar)
    RETURNS TABLE (user_id uuid, organization_id uuid, session_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_org     uuid;
    v_user    uuid;
    v_session uuid;
BEGIN
    UPDATE public.account_tokens AS t
       SET used_at = now()
      FROM public.users AS u, public.organizations AS o
     WHERE t.token_digest = p_token_digest
       AND t.purpose = 'invitation'
       AND t.used_at IS NULL
       AND t.revoked_at IS NULL
       AND t.expires_at > now()
       AND u.organization_id = t.organization_id
       AND u.id = t.user_id
       AND u.status = 'INVITED'
       AND u.deleted_at IS NULL
       AND o.id = u.organization_id
       AND o.status = 'ACTIVE'
       AND o.deleted_at IS NULL
    RETURNING t.organization_id, t.user_id INTO v_org, v_user;
    IF v_user IS NULL THEN
        RETURN;
    END IF;

    UPDATE public.users AS u
       SET password_hash = p_password_hash, status = 'ACTIVE', last_login_at = now()
     WHERE u.organization_id = v_org AND u.id = v_user;
    INSERT INTO public.sessions (organization_id, user_id, refresh_digest, expires_at,
                                 user_agent, ip)
    VALUES (v_org, v_user, p_refresh_digest, p_expires_at, p_user_agent, p_ip)
    RETURNING id INTO v_session;
    INSERT INTO public.audit_log (organization_id, actor_id, action, target_type, target_id,
                                  request_id)
    VALUES (v_org, v_user, 'user.invitation_accepted', 'user', v_user, p_request_id);
    RETURN QUERY SELECT v_user, v_org, v_session;
END
$$;

REVOKE ALL ON FUNCTION pretenant.accept_invitation(bytea, varchar, bytea, timestamptz, varchar, inet, varchar) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.accept_invitation(bytea, varchar, bytea, timestamptz, varchar, inet, varchar) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.accept_invitation(bytea, varchar, bytea, timestamptz, varchar, inet, varchar) TO coditect_app;
