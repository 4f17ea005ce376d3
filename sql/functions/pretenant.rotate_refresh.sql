-- requires: 0012
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow).
--
-- Refresh-token rotation with reuse detection. Every token a session rotates away is kept in
-- public.spent_refresh_tokens for the life of the session, so reuse of any of them is seen.
-- The session row is locked (FOR UPDATE) so concurrent refreshes of one session serialize.
-- Outcomes:
--   'rotated'  p_old_digest is the session's current token and the session is live (not
--              revoked, not expired, user ACTIVE and not deleted, organization ACTIVE and
--              not deleted): the old token is spent, the current token becomes
--              p_new_digest, previous_refresh_digest = the old token, rotated_at = now().
--   'grace'    p_old_digest is the token rotated away last (previous_refresh_digest),
--              less than p_grace ago (a retry or a concurrent refresh), the session is
--              live, and the grace has not been used since that rotation: the current
--              token is spent too and replaced by p_new_digest; previous_refresh_digest and
--              rotated_at are cleared, so the previous token is honoured exactly once.
--   'reused'   p_old_digest is any other spent token of the session (older than the
--              previous one, the previous one outside the grace window or presented a
--              second time, or a token displaced by a grace rotation): the token was stolen
--              or replayed, so the session is revoked (revoked_reason 'refresh_reuse').
--   'invalid'  an unknown token, or the current or previous token of a session that is no
--              longer live.
-- session_id, user_id and organization_id are returned for every outcome but 'invalid'.

CREATE OR REPLACE FUNCTION pretenant.rotate_refresh(
    p_old_digest bytea,
    p_new_digest bytea,
    p_grace      interval)
    RETURNS TABLE (outcome text, session_id uuid, user_id uuid, organization_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_session public.sessions%ROWTYPE;
    v_spent   uuid;
    v_live    boolean;
BEGIN
    SELECT s.* INTO v_session
      FROM public.sessions AS s
     WHERE s.refresh_digest = p_old_digest
       FOR UPDATE;

    IF NOT FOUND THEN
        SELECT t.session_id INTO v_spent
          FROM public.spent_refresh_tokens AS t
         WHERE t.refresh_digest = p_old_digest;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
        -- Locked by id, so a concurrent rotation that committed meanwhile is seen as it is
        -- now (a second use of the previous token finds the grace already spent).
        SELECT s.* INTO v_session
          FROM public.sessions AS s
         WHERE s.id = v_spent
           FOR UPDATE;
    END IF;

    SELECT v_session.revoked_at IS NULL
       AND v_session.expires_at > now()
       AND EXISTS (SELECT 1
                     FROM public.users AS u
                     JOIN public.organizations AS o ON o.id = u.organization_id
                    WHERE u.organization_id = v_session.organization_id
                      AND u.id = v_session.user_id
                      AND u.status = 'ACTIVE'
                      AND u.deleted_at IS NULL
                      AND o.status = 'ACTIVE'
                      AND o.deleted_at IS NULL)
      INTO v_live;

    IF v_session.refresh_digest = p_old_digest THEN
        IF NOT v_live THEN
            RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
        INSERT INTO public.spent_refresh_tokens (organization_id, session_id, refresh_digest)
        VALUES (v_session.organization_id, v_session.id, p_old_digest);
        UPDATE public.sessions
           SET previous_refresh_digest = p_old_digest,
               refresh_digest = p_new_digest,
               rotated_at = now(),
               last_used_at = now()
         WHERE id = v_session.id;
        RETURN QUERY SELECT 'rotated'::text, v_session.id, v_session.user_id,
                            v_session.organization_id;
        RETURN;
    END IF;

    IF v_session.previous_refresh_digest = p_old_digest
       AND v_session.rotated_at > now() - p_grace THEN
        IF NOT v_live THEN
            RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
        -- The token this replaces was issued moments ago; presenting it later is reuse.
        INSERT INTO public.spent_refresh_tokens (organization_id, session_id, refresh_digest)
        VALUES (v_session.organization_id, v_session.id, v_session.refresh_digest);
        UPDATE public.sessions
           SET refresh_digest = p_new_digest,
               previous_refresh_digest = NULL,
               rotated_at = NULL,
               last_used_at = now()
         WHERE id = v_session.id;
        RETURN QUERY SELECT 'grace'::text, v_session.id, v_session.user_id,
                            v_session.organization_id;
        RETURN;
    END IF;

    UPDATE public.sessions
       SET revoked_at = now(),
           revoked_reason = 'refresh_reuse'
     WHERE id = v_session.id
       AND revoked_at IS NULL;
    RETURN QUERY SELECT 'reused'::text, v_session.id, v_session.user_id,
                        v_session.organization_id;
END
$$;

REVOKE ALL ON FUNCTION pretenant.rotate_refresh(bytea, bytea, interval) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.rotate_refresh(bytea, bytea, interval) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.rotate_refresh(bytea, bytea, interval) TO coditect_app;
