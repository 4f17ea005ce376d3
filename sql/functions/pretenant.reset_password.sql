-- requires: 0013
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow).
--
-- Confirms a password reset: when p_token_digest is an unused, unrevoked, unexpired reset
-- token of a live ACTIVE user of a live, ACTIVE organization, spends it, sets the user's
-- password hash, ends every session of the user, revokes the user's other open reset
-- tokens and records 'user.password_reset' in the audit log. Returns the user and
-- organization ids, or no row (and changes nothing) otherwise.

CREATE OR REPLACE FUNCTION pretenant.reset_password(
    p_token_digest bytea,
    p_new_hash     varchar,
    p_request_id   varchar)
    RETURNS TABLE (user_id uuid, organization_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_org  uuid;
    v_user uuid;
BEGIN
    UPDATE public.account_tokens AS t
       SET used_at = now()
      FROM public.users AS u, public.organizations AS o
     WHERE t.token_digest = p_token_digest
       AND t.purpose = 'password_reset'
       AND t.used_at IS NULL
       AND t.revoked_at IS NULL
       AND t.expires_at > now()
       AND u.organization_id = t.organization_id
       AND u.id = t.user_id
       AND u.status = 'ACTIVE'
       AND u.deleted_at IS NULL
       AND o.id = u.organization_id
       AND o.status = 'ACTIVE'
       AND o.deleted_at IS NULL
    RETURNING t.organization_id, t.user_id INTO v_org, v_user;
    IF v_user IS NULL THEN
        RETURN;
    END IF;

    UPDATE public.users AS u
       SET password_hash = p_new_hash
     WHERE u.organization_id = v_org AND u.id = v_user;
    UPDATE public.sessions AS s
       SET revoked_at = now(), revoked_reason = 'password_reset'
     WHERE s.organization_id = v_org AND s.user_id = v_user AND s.revoked_at IS NULL;
    UPDATE public.account_tokens AS t
       SET revoked_at = now()
     WHERE t.organization_id = v_org AND t.user_id = v_user
       AND t.purpose = 'password_reset'
       AND t.used_at IS NULL AND t.revoked_at IS NULL;
    INSERT INTO public.audit_log (organization_id, actor_id, action, target_type, target_id,
                                  request_id)
    VALUES (v_org, v_user, 'user.password_reset', 'user', v_user, p_request_id);
    RETURN QUERY SELECT v_user, v_org;
END
$$;

REVOKE ALL ON FUNCTION pretenant.reset_password(bytea, varchar, varchar) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.reset_password(bytea, varchar, varchar) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.reset_password(bytea, varchar, varchar) TO coditect_app;
